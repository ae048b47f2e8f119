// chrf.h: chrF / chrF++ sufficient statistics (Popović 2015, 2017) as sacrebleu 2.x defines them,
// their score, and the resampling behind paired significance tests (bootstrap and approximate
// randomization). Plain C++17, no Python; arguments are checked by the bindings and by
// fastrnn/bleu/.
//
// Conventions:
//   A chrF statistics row has W = 3 * (char_order + word_order) int64 values, one triple per
//   order, character orders first: [hyp n-grams, ref n-grams, matched n-grams]. Hypothesis
//   n-grams count as 0 for an order the reference has none of (sacrebleu's rule). With several
//   references, a segment keeps the triples of the first reference with the best F-score.
//   Characters are Unicode code points; unless `whitespace`, Python's whitespace is dropped
//   first. Words: str.split(), then one leading or trailing ASCII punctuation mark split off.
//   Lowercasing happens in Python (str.lower()).
//
//   Scores are reproduced operation for operation, in the number types sacrebleu computes them
//   in: doubles for summed integer statistics, and, for bootstrap resamples (which sacrebleu sums
//   as float32 NumPy arrays), NumPy 2's promotion of float32 scalars with Python numbers.
#pragma once

#include <cstdint>
#include <string_view>

#include "bleu/bleu.h"

namespace fastrnn::bleu {

struct ChrfConfig {
  int char_order = 6;  // >= 1
  int word_order = 0;  // >= 0; 2 gives chrF++
  double beta = 2;
  bool whitespace = false;
  bool eps_smoothing = false;
  int width() const { return 3 * (char_order + word_order); }
};

// Statistics of N segments against R reference streams (refs[r * N + i], present as in
// text_stats). stats: [N, W].
void chrf_stats(const std::string_view* hyps, int64_t n, const std::string_view* refs,
                const uint8_t* present, int64_t nrefs, const ChrfConfig& c, int64_t* stats);

// Sentence chrF of every hypothesis against every single reference: scores [N, M].
void chrf_pairwise(const std::string_view* hyps, int64_t n, const std::string_view* refs,
                   int64_t m, const ChrfConfig& c, double* scores);

// sacrebleu's CHRF._compute_f_score of summed integer statistics (double arithmetic).
double chrf_score(const int64_t* stats /* [W] */, const ChrfConfig& c);

// A score as NumPy would hold it: `f32` when the value is a numpy.float32.
struct Typed {
  double value;
  bool f32;
};
// The same of float32 statistics (a bootstrap resample's sums), in NumPy's types.
Typed chrf_score_f32(const float* stats /* [W] */, const ChrfConfig& c);
// sacrebleu's BLEU of float32 statistics [2 + 2 * order] (precisions in float32 arithmetic).
double bleu_score_f32(const float* stats, int order, Smooth smooth, double smooth_value,
                      bool effective_order, bool compensated_sum);

// The metric a significance test scores resamples with.
struct MetricSpec {
  bool is_chrf = false;
  ChrfConfig chrf;
  int order = 4;  // BLEU
  Smooth smooth = Smooth::kExp;
  double smooth_value = 0;
  bool effective_order = false;
  bool compensated_sum = false;
  int width() const { return is_chrf ? chrf.width() : 2 + 2 * order; }
};

// Paired bootstrap: stats [N, S, W] float32 (S systems' segment statistics), idx [B, N] (row i of
// resample b is segment idx[b, i]). Each resample is summed over its rows in order in float32, as
// NumPy's .sum(0) does, then scored: scores [S, B], f32 [S, B] (1 where the score is a float32).
void bootstrap_scores(const float* stats, int64_t n, int64_t s, const int64_t* idx, int64_t b,
                      const MetricSpec& m, double* scores, uint8_t* f32, int threads);

// Paired approximate randomization: base [N, W] and systems [N, S, W] int64; sel [B, N] (1: the
// trial takes the baseline's segment into pseudo-system A and the system's into B, 0: swapped).
// Scores of A and of B: [S, B] each.
void randomization_scores(const int64_t* base, const int64_t* systems, int64_t n, int64_t s,
                          const uint8_t* sel, int64_t b, const MetricSpec& m, double* scores_a,
                          double* scores_b, int threads);

}  // namespace fastrnn::bleu
