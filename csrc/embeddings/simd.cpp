// simd.cpp: the inner loops of word2vec and GloVe, compiled once per instruction set (scalar,
// AVX2+FMA, AVX-512) into fastrnn::<isa>. Only plain structs and raw pointers cross this file's
// border, and every helper here is static: no inline function or template of this file can be
// merged by the linker into another ISA's code (see CMakeLists.txt, FASTRNN_ISA_SOURCES).
//
// Not here: tables, job splitting and threads (word2vec.cpp, glove.cpp, baseline-compiled).
#include <math.h>
#include <stdint.h>

#include "embeddings/embeddings.h"

#if defined(FASTRNN_ISA_IS_avx2) || defined(FASTRNN_ISA_IS_avx512)
#include <immintrin.h>
#endif

namespace fastrnn {
namespace FASTRNN_ISA_NS {
namespace {

// splitmix64: one multiply-xorshift step per draw, a full-period 64-bit stream per seed.
inline uint64_t next_random(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// x . y over n floats.
inline float dot(const float* __restrict x, const float* __restrict y, int64_t n) {
  int64_t i = 0;
#if defined(FASTRNN_ISA_IS_avx512)
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), s1);
  }
  for (; i + 16 <= n; i += 16)
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1u);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
#elif defined(FASTRNN_ISA_IS_avx2)
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
  const __m256 s = _mm256_add_ps(s0, s1);
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  float r = _mm_cvtss_f32(q);
  for (; i < n; ++i) r += x[i] * y[i];
  return r;
#else
  float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i] * y[i];
    s1 += x[i + 1] * y[i + 1];
    s2 += x[i + 2] * y[i + 2];
    s3 += x[i + 3] * y[i + 3];
  }
  for (; i < n; ++i) s0 += x[i] * y[i];
  return (s0 + s1) + (s2 + s3);
#endif
}

// One binary logistic unit: e += g w; w += g l1 (one pass over w).
inline void output_update(float* __restrict e, float* __restrict w, const float* __restrict l1,
                          float g, int64_t n) {
  for (int64_t d = 0; d < n; ++d) {
    const float wd = w[d];
    e[d] += g * wd;
    w[d] = wd + g * l1[d];
  }
}

inline void add_to(float* __restrict y, const float* __restrict x, int64_t n) {
  for (int64_t d = 0; d < n; ++d) y[d] += x[d];
}

// -log(sigmoid(x)), stable for either sign.
inline float softplus_neg(float x) { return x > 0.f ? log1pf(expf(-x)) : -x + log1pf(expf(x)); }

inline float sigmoid(float f) { return 1.f / (1.f + expf(-f)); }

// As word2vec.c and gensim, an output unit this sure of itself (|f| >= 6: the gradient is at most
// 0.0025 alpha, either way) is not updated; late in training that skips much of the work.
constexpr float kSaturated = 6.f;

// The output layer for one input vector l1 [D] predicting `word`: hierarchical softmax along its
// Huffman path and/or `negative` noise words. The gradient with respect to l1 (times alpha) is
// added into e [D]; the output vectors are updated on the way, as in word2vec.c.
inline void train_output(const W2VArgs& a, const float* l1, int32_t word, float alpha, float* e,
                         uint64_t* rng, double* loss) {
  const int64_t D = a.dim;
  if (a.hs) {
    // The nodes of a path are distinct rows and l1 does not change until the end, so every dot
    // product can be taken before any row is updated (the same numbers as one node at a time,
    // but independent products overlap in the CPU instead of waiting on each other).
    const int64_t kChunk = 32;
    float fs[kChunk];
    for (int64_t k0 = a.code_start[word]; k0 < a.code_start[word + 1]; k0 += kChunk) {
      const int64_t n = a.code_start[word + 1] - k0 < kChunk ? a.code_start[word + 1] - k0 : kChunk;
      for (int64_t t = 0; t < n; ++t) fs[t] = dot(l1, a.syn1 + int64_t(a.points[k0 + t]) * D, D);
      for (int64_t t = 0; t < n; ++t) {
        const float f = fs[t];
        const float label = 1.f - float(a.codes[k0 + t]);
        if (a.compute_loss) *loss += softplus_neg(label > 0.f ? f : -f);
        if (f <= -kSaturated || f >= kSaturated) continue;
        const float g = (label - sigmoid(f)) * alpha;
        output_update(e, a.syn1 + int64_t(a.points[k0 + t]) * D, l1, g, D);
      }
    }
  }
  if (a.negative <= 0) return;
  // Noise words are drawn in blocks (the same random stream, in the same order) so that their
  // rows can be prefetched while the previous ones are updated: they are scattered over the
  // whole table and a miss costs more than the arithmetic on a row.
  const int32_t kBlock = 16;
  int32_t targets[kBlock + 1];
  for (int32_t d0 = 0; d0 <= a.negative; d0 += kBlock + 1) {
    const int32_t n = a.negative + 1 - d0 < kBlock + 1 ? a.negative + 1 - d0 : kBlock + 1;
    for (int32_t t = 0; t < n; ++t) {
      int32_t target = word;
      if (d0 + t > 0) {
        const uint64_t r = next_random(rng);
        const uint64_t i = ((r >> 32) * uint64_t(a.vocab)) >> 32;
        target = uint32_t(r) < a.alias_prob[i] ? int32_t(i) : a.alias_idx[i];
        const char* row = reinterpret_cast<const char*>(a.syn1neg + int64_t(target) * D);
        for (int64_t b = 0; b < D * 4; b += 64) __builtin_prefetch(row + b, 1, 3);
      }
      targets[t] = target;
    }
    // Dot products first, as for the Huffman path; a row drawn twice in a block is taken again
    // at its turn, after the earlier update, so the result is that of one target at a time.
    float fs[kBlock + 1];
    for (int32_t t = 0; t < n; ++t) fs[t] = dot(l1, a.syn1neg + int64_t(targets[t]) * D, D);
    for (int32_t t = 0; t < n; ++t) {
      const bool positive = d0 + t == 0;
      const int32_t target = targets[t];
      if (!positive && target == word) continue;
      const float label = positive ? 1.f : 0.f;
      float* w = a.syn1neg + int64_t(target) * D;
      bool again = false;
      for (int32_t u = 0; u < t; ++u) again |= targets[u] == target;
      const float f = again ? dot(l1, w, D) : fs[t];
      if (a.compute_loss) *loss += softplus_neg(positive ? f : -f);
      if (f <= -kSaturated || f >= kSaturated) continue;
      const float g = (label - sigmoid(f)) * alpha;
      output_update(e, w, l1, g, D);
    }
  }
}

int64_t w2v_sentence(const W2VArgs& a, const int32_t* ids, int64_t n, float alpha, uint64_t* rng,
                     float* work, int32_t* kept, double* loss) {
  int64_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t w = ids[i];
    if (a.keep && uint32_t(next_random(rng)) > a.keep[w]) continue;
    kept[m++] = w;
  }
  const int64_t D = a.dim;
  float* neu1 = work;       // [D] CBOW input
  float* neu1e = work + D;  // [D] gradient of the input vector
  for (int64_t pos = 0; pos < m; ++pos) {
    const int64_t b = a.window > 1 ? int64_t(next_random(rng) % uint64_t(a.window)) : 0;
    const int64_t reach = a.window - b;
    const int64_t lo = pos - reach < 0 ? 0 : pos - reach;
    const int64_t hi = pos + reach + 1 > m ? m : pos + reach + 1;
    const int32_t word = kept[pos];
    if (a.sg) {
      for (int64_t c = lo; c < hi; ++c) {
        if (c == pos) continue;
        float* l1 = a.syn0 + int64_t(kept[c]) * D;
        for (int64_t d = 0; d < D; ++d) neu1e[d] = 0.f;
        train_output(a, l1, word, alpha, neu1e, rng, loss);
        add_to(l1, neu1e, D);
      }
    } else {
      for (int64_t d = 0; d < D; ++d) neu1[d] = 0.f;
      int64_t count = 0;
      for (int64_t c = lo; c < hi; ++c) {
        if (c == pos) continue;
        add_to(neu1, a.syn0 + int64_t(kept[c]) * D, D);
        ++count;
      }
      if (count == 0) continue;
      if (a.cbow_mean) {
        const float inv = 1.f / float(count);
        for (int64_t d = 0; d < D; ++d) neu1[d] *= inv;
      }
      for (int64_t d = 0; d < D; ++d) neu1e[d] = 0.f;
      train_output(a, neu1, word, alpha, neu1e, rng, loss);
      // As gensim: the gradient of the mean goes whole to every context vector; that of the sum
      // (cbow_mean=0) is divided among them.
      if (!a.cbow_mean) {
        const float inv = 1.f / float(count);
        for (int64_t d = 0; d < D; ++d) neu1e[d] *= inv;
      }
      for (int64_t c = lo; c < hi; ++c)
        if (c != pos) add_to(a.syn0 + int64_t(kept[c]) * D, neu1e, D);
    }
  }
  return m;
}

double glove_records(const GloveArgs& a, int64_t begin, int64_t end, float* work) {
  (void)work;
  const int64_t D = a.dim;
  double cost = 0.0;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t i = a.row[r], j = a.col[r];
    const float x = a.val[r];
    float* __restrict wi = a.w + i * D;
    float* __restrict wj = a.wc + j * D;
    float* __restrict gi = a.gw + i * D;
    float* __restrict gj = a.gwc + j * D;
    const float diff = dot(wi, wj, D) + a.b[i] + a.bc[j] - logf(x);
    float fdiff = x > a.x_max ? diff : powf(x / a.x_max, a.alpha) * diff;
    if (!__builtin_isfinite(fdiff))
      continue;  // as glove.c: never let one record poison the weights
    cost += 0.5 * double(fdiff) * double(diff);
    fdiff *= a.eta;
    for (int64_t d = 0; d < D; ++d) {
      const float t1 = fdiff * wj[d], t2 = fdiff * wi[d];
      wi[d] -= t1 / sqrtf(gi[d]);
      wj[d] -= t2 / sqrtf(gj[d]);
      gi[d] += t1 * t1;
      gj[d] += t2 * t2;
    }
    a.b[i] -= fdiff / sqrtf(a.gb[i]);
    a.bc[j] -= fdiff / sqrtf(a.gbc[j]);
    a.gb[i] += fdiff * fdiff;
    a.gbc[j] += fdiff * fdiff;
  }
  return cost;
}

float dot_n(const float* x, const float* y, int64_t n) { return dot(x, y, n); }

}  // namespace

EmbeddingKernels embedding_kernels() {
  EmbeddingKernels k;
#define FASTRNN_STR2(x) #x
#define FASTRNN_STR(x) FASTRNN_STR2(x)
  k.isa = FASTRNN_STR(FASTRNN_ISA_NS);
  k.w2v_sentence = &w2v_sentence;
  k.glove_records = &glove_records;
  k.dot = &dot_n;
  return k;
}

}  // namespace FASTRNN_ISA_NS
}  // namespace fastrnn
