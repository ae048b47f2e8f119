// resample.cpp: the inner loops of paired significance tests (see chrf.h): sums of per-segment
// statistics over resamples or randomized pseudo-systems, and their scores.
//
// The random draws are NumPy's (made in Python exactly as sacrebleu makes them); this file only
// adds. Bootstrap sums are float32, accumulated segment by segment in resample order, which is
// what NumPy's .sum(0) of a (N, W) float32 array does (W > 1: the reduction runs row by row), so
// the sums, rounding included, are the ones sacrebleu scores. Randomization sums are int64
// (sacrebleu's boolean-by-integer matrix products), exact in any order.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "bleu/chrf.h"

namespace fastrnn::bleu {
namespace {

// Below this much work (additions) a single thread is faster than waking others.
constexpr int64_t kParallelWork = int64_t(1) << 20;

int threads_for(int64_t work, int threads) {
  return work < kParallelWork ? 1 : std::max(1, threads);
}

}  // namespace

void bootstrap_scores(const float* stats, int64_t n, int64_t s, const int64_t* idx, int64_t b,
                      const MetricSpec& m, double* scores, uint8_t* f32, int threads) {
  const int64_t W = m.width(), K = s * W;
  const int nt = threads_for(b * n * K, threads);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<float> acc(static_cast<size_t>(K));
#pragma omp for schedule(static)
    for (int64_t j = 0; j < b; ++j) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      float* a = acc.data();
      const int64_t* rows = idx + j * n;
      for (int64_t i = 0; i < n; ++i) {
        const float* row = stats + rows[i] * K;
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) a[k] += row[k];  // lanes are columns: order kept
      }
      for (int64_t q = 0; q < s; ++q) {
        const float* st = a + q * W;
        if (m.is_chrf) {
          const Typed t = chrf_score_f32(st, m.chrf);
          scores[q * b + j] = t.value;
          f32[q * b + j] = t.f32;
        } else {
          scores[q * b + j] = bleu_score_f32(st, m.order, m.smooth, m.smooth_value,
                                             m.effective_order, m.compensated_sum);
          f32[q * b + j] = 0;  // compute_bleu returns Python floats
        }
      }
    }
  }
}

void randomization_scores(const int64_t* base, const int64_t* systems, int64_t n, int64_t s,
                          const uint8_t* sel, int64_t b, const MetricSpec& m, double* scores_a,
                          double* scores_b, int threads) {
  const int64_t W = m.width(), K = s * W;
  // A = sum over segments of (sel ? base : system) = system total + sum over sel of (base - sys);
  // B = base total + system total - A.
  std::vector<int64_t> diff(static_cast<size_t>(n * K)), sys_total(static_cast<size_t>(K), 0),
      base_total(static_cast<size_t>(W), 0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t w = 0; w < W; ++w) base_total[size_t(w)] += base[i * W + w];
    for (int64_t k = 0; k < K; ++k) {
      sys_total[size_t(k)] += systems[i * K + k];
      diff[size_t(i * K + k)] = base[i * W + k % W] - systems[i * K + k];
    }
  }
  auto score = [&](const int64_t* st) {
    return m.is_chrf ? chrf_score(st, m.chrf)
                     : bleu::score(st, m.order, m.smooth, m.smooth_value, m.effective_order,
                                   m.compensated_sum);
  };
  const int nt = threads_for(b * n * K / 2, threads);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<int64_t> acc(static_cast<size_t>(K)), other(static_cast<size_t>(W));
#pragma omp for schedule(static)
    for (int64_t j = 0; j < b; ++j) {
      std::copy(sys_total.begin(), sys_total.end(), acc.begin());
      int64_t* a = acc.data();
      const uint8_t* pick = sel + j * n;
      for (int64_t i = 0; i < n; ++i) {
        if (!pick[i]) continue;
        const int64_t* d = diff.data() + i * K;
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) a[k] += d[k];
      }
      for (int64_t q = 0; q < s; ++q) {
        const int64_t* st = a + q * W;
        for (int64_t w = 0; w < W; ++w)
          other[size_t(w)] = base_total[size_t(w)] + sys_total[size_t(q * W + w)] - st[w];
        scores_a[q * b + j] = score(st);
        scores_b[q * b + j] = score(other.data());
      }
    }
  }
}

}  // namespace fastrnn::bleu
