// word2vec.cpp: word2vec's tables (subsampling, noise distribution, Huffman tree), the choice of
// the per-ISA kernels and the threaded training driver. Baseline-compiled: no SIMD here; the inner
// loops are in simd.cpp.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <queue>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cpu/dispatch.h"
#include "embeddings/embeddings.h"
#include "embeddings/tables.h"

namespace fastrnn {
namespace scalar {
EmbeddingKernels embedding_kernels();
}
namespace avx2 {
EmbeddingKernels embedding_kernels();
}
namespace avx512 {
EmbeddingKernels embedding_kernels();
}

EmbeddingKernels embedding_kernels() {
  // Only the active ISA's function is called: it was checked against this CPU by dispatch.cpp.
  const std::string isa = active_isa();
  if (isa.rfind("avx512", 0) == 0 || isa == "amx_bf16") return avx512::embedding_kernels();
  if (isa == "avx2") return avx2::embedding_kernels();
  return scalar::embedding_kernels();
}

void subsample_table(const int64_t* counts, int64_t V, double sample, uint32_t* keep) {
  double total = 0.0;
  for (int64_t w = 0; w < V; ++w) total += double(counts[w]);
  const double t = sample * total;
  for (int64_t w = 0; w < V; ++w) {
    double p = 1.0;
    if (sample > 0.0 && counts[w] > 0) {
      const double c = double(counts[w]);
      p = (std::sqrt(c / t) + 1.0) * t / c;
    }
    keep[w] = p >= 1.0 ? 0xFFFFFFFFu : uint32_t(std::llround(p * 4294967296.0));
  }
}

void alias_table(const double* weights, int64_t V, uint32_t* prob, int32_t* idx) {
  double total = 0.0;
  for (int64_t w = 0; w < V; ++w) {
    if (!(weights[w] >= 0.0) || !std::isfinite(weights[w]))
      throw std::invalid_argument("noise weights must be finite and >= 0, got " +
                                  std::to_string(weights[w]) + " at " + std::to_string(w));
    total += weights[w];
  }
  if (!(total > 0.0)) throw std::invalid_argument("noise weights: every weight is zero");
  std::vector<double> p(V);
  std::vector<int64_t> small, large;
  for (int64_t w = 0; w < V; ++w) {
    p[w] = weights[w] * double(V) / total;
    (p[w] < 1.0 ? small : large).push_back(w);
  }
  while (!small.empty() && !large.empty()) {
    const int64_t s = small.back(), l = large.back();
    small.pop_back();
    prob[s] = uint32_t(std::min(4294967295.0, std::floor(p[s] * 4294967296.0)));
    idx[s] = int32_t(l);
    p[l] -= 1.0 - p[s];
    if (p[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // What is left holds probability 1 up to rounding: either branch draws the word itself.
  for (int64_t w : small) prob[w] = 0xFFFFFFFFu, idx[w] = int32_t(w);
  for (int64_t w : large) prob[w] = 0xFFFFFFFFu, idx[w] = int32_t(w);
}

HuffmanCodes huffman(const int64_t* counts, int64_t V) {
  HuffmanCodes h;
  h.code_start.assign(V + 1, 0);
  if (V < 2) return h;
  // nodes: leaves [0, V), inner nodes [V, 2V-1); the root is 2V-2
  std::vector<int64_t> parent(2 * V - 1, -1);
  std::vector<uint8_t> branch(2 * V - 1, 0);
  using Item = std::pair<int64_t, int64_t>;  // (count, node): ties go to the lower node id
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
  for (int64_t w = 0; w < V; ++w) heap.push({counts[w], w});
  for (int64_t node = V; node < 2 * V - 1; ++node) {
    const Item a = heap.top();
    heap.pop();
    const Item b = heap.top();
    heap.pop();
    parent[a.second] = node;
    parent[b.second] = node;
    branch[b.second] = 1;
    heap.push({a.first + b.first, node});
  }
  std::vector<uint8_t> code;
  std::vector<int32_t> path;
  for (int64_t w = 0; w < V; ++w) {
    code.clear();
    path.clear();
    for (int64_t n = w; parent[n] >= 0; n = parent[n]) {
      code.push_back(branch[n]);
      path.push_back(int32_t(parent[n] - V));
    }
    h.codes.insert(h.codes.end(), code.rbegin(), code.rend());
    h.points.insert(h.points.end(), path.rbegin(), path.rend());
    h.code_start[w + 1] = int64_t(h.codes.size());
  }
  return h;
}

namespace {
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

W2VStats w2v_train(const W2VArgs& a, const int32_t* ids, const int64_t* sent_start,
                   const int64_t* job_sent, int64_t job_begin, int64_t job_end, double alpha0,
                   double alpha1, double words_before, double words_total, uint64_t seed,
                   int64_t epoch, int workers) {
  const EmbeddingKernels k = embedding_kernels();
  std::atomic<int64_t> next(job_begin);
  double loss = 0.0;
  int64_t words = 0, effective = 0;
  const int64_t jobs = job_end - job_begin;
  const int threads = cap_threads(std::min<int64_t>(workers, jobs));  // dispatch.h: the one cap
#pragma omp parallel num_threads(threads) reduction(+ : loss, words, effective)
  {
    std::vector<float> work(3 * a.dim);
    std::vector<int32_t> kept;
    for (;;) {
      const int64_t j = next.fetch_add(1);
      if (j >= job_end) break;
      const double done = words_before + double(sent_start[job_sent[j]]);
      const double alpha =
          std::max(alpha1, alpha0 - (alpha0 - alpha1) * done / std::max(1.0, words_total));
      uint64_t rng = mix64(seed ^ mix64(uint64_t(epoch) * 0x100000001B3ull + uint64_t(j) + 1));
      for (int64_t s = job_sent[j]; s < job_sent[j + 1]; ++s) {
        const int64_t n = sent_start[s + 1] - sent_start[s];
        if (int64_t(kept.size()) < n) kept.resize(n);
        effective += k.w2v_sentence(a, ids + sent_start[s], n, float(alpha), &rng, work.data(),
                                    kept.data(), &loss);
        words += n;
      }
    }
  }
  W2VStats st;
  st.loss = loss;
  st.words = words;
  st.effective = effective;
  return st;
}

}  // namespace fastrnn
