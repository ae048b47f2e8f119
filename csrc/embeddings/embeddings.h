// embeddings.h: word2vec (skip-gram / CBOW, negative sampling / hierarchical softmax) and GloVe.
//
// Letters: V vocabulary size, D vector size, N corpus tokens, S sentences, J jobs, R co-occurrence
// records. Words are ids in [0, V), sorted by descending count (id 0 is the most frequent).
// Conventions as in fastrnn.h: dense row-major float32 arrays, std::invalid_argument on bad input.
//
// Split: the per-ISA file (simd.cpp, compiled once per instruction set) holds the inner loops over
// one sentence or one slice of co-occurrence records and sees only the plain structs below; the
// baseline files (word2vec.cpp, glove.cpp) build the tables, split the work into jobs and run the
// threads. Nothing here includes a std template, so nothing can be merged across ISA builds.
#pragma once

#include <cstdint>

namespace fastrnn {

// Everything one word2vec thread reads while training; the weights are updated in place without
// locks (Hogwild, as word2vec.c and gensim do).
struct W2VArgs {
  float* syn0;        // [V, D] input vectors (the embeddings)
  float* syn1;        // [V-1, D] hierarchical softmax inner nodes, or null
  float* syn1neg;     // [V, D] negative-sampling output vectors, or null
  int64_t vocab;      // V
  int64_t dim;        // D
  int32_t sg;         // 1 skip-gram, 0 CBOW
  int32_t hs;         // 1: hierarchical softmax update
  int32_t negative;   // k noise words per positive (0: none)
  int32_t window;     // maximal window; each position draws its own in [1, window]
  int32_t cbow_mean;  // CBOW: 1 average of the context vectors, 0 their sum
  int32_t compute_loss;
  const uint32_t* keep;        // [V] keep word w unless 32 random bits > keep[w]; null: keep all
  const uint32_t* alias_prob;  // [V] Walker alias table of the noise distribution
  const int32_t* alias_idx;    // [V]
  const uint8_t* codes;        // Huffman codes of word w: codes[code_start[w] .. code_start[w+1])
  const int32_t* points;       // inner nodes on its path, same positions
  const int64_t* code_start;   // [V+1]
};

// Counters of one call, summed over threads.
struct W2VStats {
  double loss = 0.0;      // summed negative log-likelihood (compute_loss only)
  int64_t words = 0;      // tokens read
  int64_t effective = 0;  // tokens left after subsampling
};

// One GloVe call: AdaGrad over records [begin, end) (Pennington et al., the reference glove.c).
struct GloveArgs {
  float* w;            // [V, D] word vectors
  float* wc;           // [V, D] context vectors
  float* b;            // [V] word biases
  float* bc;           // [V] context biases
  float* gw;           // [V, D] AdaGrad sums of squared gradients, w
  float* gwc;          // [V, D] same, wc
  float* gb;           // [V]
  float* gbc;          // [V]
  const int32_t* row;  // [R] word i
  const int32_t* col;  // [R] context j
  const float* val;    // [R] X_ij
  int64_t dim;         // D
  float x_max, alpha, eta;
};

// The kernels of one instruction set (simd.cpp fills one per ISA).
struct EmbeddingKernels {
  const char* isa;
  // Trains on one sentence (ids [n]); subsamples it first. work holds 3*D floats. Returns the
  // number of tokens kept; adds the loss into *loss when compute_loss.
  int64_t (*w2v_sentence)(const W2VArgs& a, const int32_t* ids, int64_t n, float alpha,
                          uint64_t* rng, float* work, int32_t* kept, double* loss);
  // AdaGrad updates for records [begin, end); returns their summed cost 1/2 f(X)(...)^2.
  double (*glove_records)(const GloveArgs& a, int64_t begin, int64_t end, float* work);
  float (*dot)(const float* x, const float* y, int64_t n);
};

// The kernels of the active ISA (fastrnn::active_isa()); only that ISA's code is ever called.
EmbeddingKernels embedding_kernels();

// ---- word2vec tables (word2vec.cpp) -----------------------------------------------------------

// keep[w] = P(keep w) * 2^32 (capped at 2^32-1) with gensim's formula: threshold t = sample * N,
// P = (sqrt(c/t) + 1) t / c; all ones when sample <= 0.
void subsample_table(const int64_t* counts, int64_t V, double sample, uint32_t* keep);

// Walker's alias table for P(w) proportional to weights[w]: draw u (32 bits) and i uniform in
// [0, V); the sample is i if u < prob[i], else idx[i]. Throws if every weight is zero.
void alias_table(const double* weights, int64_t V, uint32_t* prob, int32_t* idx);

// (huffman(): see tables.h, it returns std::vectors.)

// Trains jobs [job_begin, job_end) of one epoch. Job j covers sentences
// [job_sent[j], job_sent[j+1]) of the corpus (ids [N], sent_start [S+1]); its learning rate is
// alpha0 - (alpha0 - alpha1) * (words_before + sent_start[job_sent[j]]) / words_total and its
// random stream is seeded from (seed, epoch, j), so workers = 1 is bitwise reproducible.
W2VStats w2v_train(const W2VArgs& a, const int32_t* ids, const int64_t* sent_start,
                   const int64_t* job_sent, int64_t job_begin, int64_t job_end, double alpha0,
                   double alpha1, double words_before, double words_total, uint64_t seed,
                   int64_t epoch, int workers);

// ---- GloVe (glove.cpp) -------------------------------------------------------------------------

struct CoocRecord {
  int32_t i, j;
  float x;
};

// Symmetric co-occurrence counts X_ij += 1/distance within `window` of each other, sentences
// never crossed, accumulated in at most memory_bytes: frequent pairs in a dense table, the rest
// in a record buffer that is sorted, merged and spilled to temporary files under tmp_dir when
// full, then merged. Calls emit(records, count) with sorted, unique (i, j) blocks.
struct CoocResult {
  int64_t records = 0;  // nonzero pairs
  int64_t spills = 0;   // runs written to disk
};
typedef void (*CoocEmit)(void* ctx, const CoocRecord* recs, int64_t n);
CoocResult cooccurrence(const int32_t* ids, const int64_t* sent_start, int64_t S, int64_t V,
                        int window, bool distance_weighting, int64_t memory_bytes,
                        const char* tmp_dir, CoocEmit emit, void* ctx);

// One epoch over records (already shuffled): thread t takes a contiguous slice. Returns the cost.
double glove_epoch(const GloveArgs& a, int64_t R, int workers);

}  // namespace fastrnn
