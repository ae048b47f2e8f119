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

namespace {

// Randomization sums with accumulators of type Acc (int32 where every partial sum fits, which
// halves the memory traffic, else int64). Segments go in blocks of `bits` (4, or 1 where the
// table would pass kMaxTable): the 2**bits subset sums of each block's differences are tabulated
// once, so a trial adds one row per block instead of one per selected segment.
constexpr int64_t kMaxTable = int64_t(1) << 29;  // bytes

template <class Acc>
void randomization_blocks(const std::vector<int64_t>& diff, const std::vector<int64_t>& sys_total,
                          const std::vector<int64_t>& base_total, int64_t n, int64_t s,
                          int64_t W, const uint8_t* sel, int64_t b, const MetricSpec& m,
                          double* scores_a, double* scores_b, int threads) {
  const int64_t K = s * W;
  const int bits = (n + 3) / 4 * 16 * K * int64_t(sizeof(Acc)) <= kMaxTable ? 4 : 1;
  const int64_t masks = int64_t(1) << bits, blocks = (n + bits - 1) / bits;
  std::vector<Acc> table(static_cast<size_t>(blocks * masks * K), Acc(0));  // [blocks, masks, K]
  for (int64_t blk = 0; blk < blocks; ++blk) {
    Acc* t = table.data() + blk * masks * K;
    for (int mask = 1; mask < masks; ++mask) {
      const int low = mask & -mask, j = __builtin_ctz(unsigned(mask));
      const int64_t i = blk * bits + j;
      const Acc* prev = t + (mask ^ low) * K;
      Acc* row = t + mask * K;
      for (int64_t k = 0; k < K; ++k)
        row[k] = prev[k] + (i < n ? Acc(diff[size_t(i * K + k)]) : Acc(0));
    }
  }
  auto score = [&](const int64_t* st) {
    return m.is_chrf ? chrf_score(st, m.chrf)
                     : bleu::score(st, m.order, m.smooth, m.smooth_value, m.effective_order,
                                   m.compensated_sum);
  };
  const int nt = threads_for(b * blocks * K, threads);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<Acc> acc(static_cast<size_t>(K));
    std::vector<int64_t> st(static_cast<size_t>(W)), other(static_cast<size_t>(W));
#pragma omp for schedule(static)
    for (int64_t j = 0; j < b; ++j) {
      std::fill(acc.begin(), acc.end(), Acc(0));
      Acc* a = acc.data();
      const uint8_t* pick = sel + j * n;
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t i = blk * bits;
        int mask = 0;
        for (int q = 0; q < bits && i + q < n; ++q) mask |= (pick[i + q] ? 1 : 0) << q;
        if (!mask) continue;
        const Acc* row = table.data() + (blk * masks + mask) * K;
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) a[k] += row[k];
      }
      for (int64_t q = 0; q < s; ++q) {
        for (int64_t w = 0; w < W; ++w) {
          st[size_t(w)] = sys_total[size_t(q * W + w)] + int64_t(a[q * W + w]);
          other[size_t(w)] = base_total[size_t(w)] + sys_total[size_t(q * W + w)] - st[size_t(w)];
        }
        scores_a[q * b + j] = score(st.data());
        scores_b[q * b + j] = score(other.data());
      }
    }
  }
}

}  // namespace

void randomization_scores(const int64_t* base, const int64_t* systems, int64_t n, int64_t s,
                          const uint8_t* sel, int64_t b, const MetricSpec& m, double* scores_a,
                          double* scores_b, int threads) {
  const int64_t W = m.width(), K = s * W;
  if (K == 0 || b == 0) return;
  // A = sum over segments of (sel ? base : system) = system total + sum over sel of (base - sys);
  // B = base total + system total - A.
  std::vector<int64_t> diff(static_cast<size_t>(n * K)), sys_total(static_cast<size_t>(K), 0),
      base_total(static_cast<size_t>(W), 0), spread(static_cast<size_t>(K), 0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t w = 0; w < W; ++w) base_total[size_t(w)] += base[i * W + w];
    for (int64_t k = 0; k < K; ++k) {
      sys_total[size_t(k)] += systems[i * K + k];
      const int64_t d = base[i * W + k % W] - systems[i * K + k];
      diff[size_t(i * K + k)] = d;
      spread[size_t(k)] += d < 0 ? -d : d;  // bounds every partial sum of differences
    }
  }
  const bool narrow = *std::max_element(spread.begin(), spread.end()) < (int64_t(1) << 31);
  if (narrow)
    randomization_blocks<int32_t>(diff, sys_total, base_total, n, s, W, sel, b, m, scores_a,
                                  scores_b, threads);
  else
    randomization_blocks<int64_t>(diff, sys_total, base_total, n, s, W, sel, b, m, scores_a,
                                  scores_b, threads);
}

}  // namespace fastrnn::bleu
