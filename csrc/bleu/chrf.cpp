// chrf.cpp: chrF / chrF++ statistics and scores, sacrebleu's definitions (see chrf.h).
//
// A segment's characters (code points) and words (interned per segment) become id sequences, and
// NgramCounter (ngram.cpp) does the counting: with a single reference, its clipped matches are
// exactly chrF's sum over n-grams of min(hyp count, ref count), and its n-gram totals are chrF's
// hypothesis counts. Nothing here builds a string per n-gram.
#include "bleu/chrf.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastrnn::bleu {
namespace {

// --- scores ----------------------------------------------------------------------------------

// A number as sacrebleu's arithmetic sees it: a Python float/int (double arithmetic) or a
// numpy.float32. Mixing the two gives a float32 with the Python number cast to float32 first
// (NumPy 2's "weak" Python scalars, NEP 50).
struct Num {
  double v;
  bool f32;
};
inline Num py(double v) { return Num{v, false}; }
inline Num mix(Num a, Num b, double (*op)(double, double), float (*opf)(float, float)) {
  if (a.f32 || b.f32) return Num{double(opf(float(a.v), float(b.v))), true};
  return Num{op(a.v, b.v), false};
}
inline Num operator+(Num a, Num b) {
  return mix(a, b, [](double x, double y) { return x + y; }, [](float x, float y) { return x + y; });
}
inline Num operator*(Num a, Num b) {
  return mix(a, b, [](double x, double y) { return x * y; }, [](float x, float y) { return x * y; });
}
inline Num operator/(Num a, Num b) {
  return mix(a, b, [](double x, double y) { return x / y; }, [](float x, float y) { return x / y; });
}

// sacrebleu's CHRF._compute_f_score, line for line (st: [3 * order] hyp, ref, match triples).
Num f_score(const Num* st, const ChrfConfig& c) {
  const int order = c.char_order + c.word_order;
  const Num eps = py(1e-16);
  const Num factor = py(c.beta * c.beta);
  const Num one_plus_factor = py(1 + c.beta * c.beta);
  Num score = py(0.0), avg_prec = py(0.0), avg_rec = py(0.0);
  int effective_order = 0;
  for (int i = 0; i < order; ++i) {
    const Num n_hyp = st[3 * i], n_ref = st[3 * i + 1], n_match = st[3 * i + 2];
    const Num prec = n_hyp.v > 0 ? n_match / n_hyp : eps;
    const Num rec = n_ref.v > 0 ? n_match / n_ref : eps;
    const Num denom = factor * prec + rec;
    score = score + (denom.v > 0 ? one_plus_factor * prec * rec / denom : eps);
    if (n_hyp.v > 0 && n_ref.v > 0) {
      avg_prec = avg_prec + prec;
      avg_rec = avg_rec + rec;
      ++effective_order;
    }
  }
  if (c.eps_smoothing) return py(100) * score / py(order);
  if (effective_order == 0) {
    avg_prec = avg_rec = py(0.0);
  } else {
    avg_prec = avg_prec / py(effective_order);
    avg_rec = avg_rec / py(effective_order);
  }
  if ((avg_prec + avg_rec).v != 0) {
    score = one_plus_factor * avg_prec * avg_rec;
    score = score / (factor * avg_prec + avg_rec);
    return py(100) * score;
  }
  return py(0.0);
}

// --- statistics ------------------------------------------------------------------------------

bool is_chrf_punct(unsigned char b) {  // Python's string.punctuation
  return (b >= 0x21 && b <= 0x2F) || (b >= 0x3A && b <= 0x40) || (b >= 0x5B && b <= 0x60) ||
         (b >= 0x7B && b <= 0x7E);
}

// One line as chrF sees it: character ids (code points) and word ids.
struct Prepared {
  std::vector<int64_t> chars, words;
};

class Preparer {
 public:
  explicit Preparer(const ChrfConfig& c) : c_(c), split_(Tokenizer::kNone, nullptr) {}

  // Characters of `line`; its words are appended to words_ (bytes) and word_ends_.
  void chars(std::string_view line, std::vector<int64_t>& out) {
    decode_utf8(line, cps_);
    out.clear();
    out.reserve(cps_.size());
    for (const char32_t cp : cps_)
      if (c_.whitespace || !is_python_space(cp)) out.push_back(int64_t(cp));
  }

  // Words of `line` after sacrebleu's punctuation split, as byte ranges of `text`.
  void words(std::string_view line, std::string& text, std::vector<int64_t>& ends) {
    tok_.clear();
    tok_ends_.clear();
    split_(line, tok_, tok_ends_);  // str.split() (after rstrip, which changes nothing here)
    int64_t start = 0;
    for (const int64_t end : tok_ends_) {
      const std::string_view w(tok_.data() + start, size_t(end - start));
      start = end;
      auto emit = [&](std::string_view piece) {
        text.append(piece.data(), piece.size());
        ends.push_back(int64_t(text.size()));
      };
      // Multi-byte characters are never ASCII punctuation, so the one-character test of
      // sacrebleu only matters for single-byte words.
      if (w.size() == 1) {
        emit(w);
      } else if (is_chrf_punct(static_cast<unsigned char>(w.back()))) {
        emit(w.substr(0, w.size() - 1));
        emit(w.substr(w.size() - 1));
      } else if (is_chrf_punct(static_cast<unsigned char>(w.front()))) {
        emit(w.substr(0, 1));
        emit(w.substr(1));
      } else {
        emit(w);
      }
    }
  }

 private:
  const ChrfConfig& c_;
  LineTokenizer split_;
  std::u32string cps_;
  std::string tok_;
  std::vector<int64_t> tok_ends_;
};

// Counts of one side against one reference, for orders 1..order into out [3 * order].
void triples(const int64_t* counter_row, int order, int64_t hyp_len, int64_t ref_len,
             int64_t* out) {
  for (int n = 1; n <= order; ++n) {
    const int64_t ref_count = std::max<int64_t>(0, ref_len - n + 1);
    out[3 * (n - 1)] = ref_count > 0 ? std::max<int64_t>(0, hyp_len - n + 1) : 0;
    out[3 * (n - 1) + 1] = ref_count;
    out[3 * (n - 1) + 2] = counter_row[2 + n - 1];
  }
}

// Matches hypotheses against one reference at a time (the counters hold the reference).
class SegmentScorer {
 public:
  explicit SegmentScorer(const ChrfConfig& c)
      : c_(c),
        chars_(c.char_order),
        words_(std::max(1, c.word_order)),
        row_(size_t(2 + 2 * std::max(c.char_order, c.word_order))) {}

  void set_reference(const Prepared& ref) {
    ref_chars_ = int64_t(ref.chars.size());
    ref_words_ = int64_t(ref.words.size());
    const Span cs{ref.chars.data(), ref_chars_};
    chars_.set_references(&cs, 1);
    if (c_.word_order > 0) {
      const Span ws{ref.words.data(), ref_words_};
      words_.set_references(&ws, 1);
    }
  }

  void match(const Prepared& hyp, int64_t* out /* [W] */) {
    const int64_t hc = int64_t(hyp.chars.size()), hw = int64_t(hyp.words.size());
    chars_.match(Span{hyp.chars.data(), hc}, row_.data());
    triples(row_.data(), c_.char_order, hc, ref_chars_, out);
    if (c_.word_order > 0) {
      words_.match(Span{hyp.words.data(), hw}, row_.data());
      triples(row_.data(), c_.word_order, hw, ref_words_, out + 3 * c_.char_order);
    }
  }

 private:
  const ChrfConfig& c_;
  NgramCounter chars_, words_;
  std::vector<int64_t> row_;
  int64_t ref_chars_ = 0, ref_words_ = 0;
};

// Lines to Prepared, with word ids shared by every line given to one batch.
class Batch {
 public:
  explicit Batch(const ChrfConfig& c) : c_(c), prep_(c) {}
  void clear() {
    text_.clear();
    ends_.clear();
    bounds_.assign(1, 0);
    n_ = 0;
  }
  // Adds a line; its words are interned at finish().
  void add(std::string_view line, Prepared& p) {
    prep_.chars(line, p.chars);
    if (c_.word_order > 0) prep_.words(line, text_, ends_);
    bounds_.push_back(int64_t(ends_.size()));
    ++n_;
  }
  // Word ids of the lines added since clear(), in order.
  template <class Get>
  void finish(Get&& prepared) {
    if (c_.word_order == 0) return;
    vocab_.reset(int64_t(ends_.size()));
    int64_t start = 0;
    for (int64_t k = 0; k < n_; ++k) {
      Prepared& p = prepared(k);
      p.words.clear();
      for (int64_t t = bounds_[size_t(k)]; t < bounds_[size_t(k + 1)]; ++t) {
        p.words.push_back(vocab_.id(std::string_view(text_.data() + start, size_t(ends_[t] - start))));
        start = ends_[size_t(t)];
      }
    }
  }

 private:
  const ChrfConfig& c_;
  Preparer prep_;
  Vocab vocab_;
  std::string text_;
  std::vector<int64_t> ends_, bounds_{0};
  int64_t n_ = 0;
};

void check(const ChrfConfig& c) {
  if (c.char_order < 1 || c.word_order < 0)
    throw std::invalid_argument("chrF: expected char_order >= 1 and word_order >= 0");
}

}  // namespace

double chrf_score(const int64_t* stats, const ChrfConfig& c) {
  std::vector<Num> st(size_t(c.width()));
  for (size_t k = 0; k < st.size(); ++k) st[k] = py(double(stats[k]));
  return f_score(st.data(), c).v;
}

Typed chrf_score_f32(const float* stats, const ChrfConfig& c) {
  Num small[64];
  std::vector<Num> big(c.width() > 64 ? size_t(c.width()) : 0);
  Num* st = c.width() > 64 ? big.data() : small;
  for (int k = 0; k < c.width(); ++k) st[k] = Num{double(stats[k]), true};
  const Num r = f_score(st, c);
  return Typed{r.v, r.f32};
}

double bleu_score_f32(const float* stats, int order, Smooth smooth, double smooth_value,
                      bool effective_order, bool compensated_sum) {
  // int(np.float32) of the lengths; the counts stay float32 (compute_bleu gets array slices).
  const int64_t sys_len = int64_t(stats[0]), ref_len = int64_t(stats[1]);
  double bp = 1.0;
  if (sys_len < ref_len) bp = sys_len > 0 ? std::exp(1.0 - double(ref_len) / double(sys_len)) : 0.0;
  bool any_match = false;
  for (int n = 0; n < order; ++n) any_match |= stats[2 + n] != 0;
  if (!any_match) return 0.0;
  double small[16];
  std::vector<double> big(order > 16 ? size_t(order) : 0);
  double* logs = order > 16 ? big.data() : small;
  std::fill(logs, logs + order, -9999999999.0);
  double mteval = 1.0;
  int used = order;
  const float sv = float(smooth_value);
  for (int n = 1; n <= order; ++n) {
    float c = stats[2 + n - 1], t = stats[2 + order + n - 1];
    if (smooth == Smooth::kAddK && n > 1) {  // correct[n - 1] += smooth_value, in float32
      c = c + sv;
      t = t + sv;
    }
    if (t == 0) break;
    if (effective_order) used = n;
    float p = 0.0f;
    if (c == 0) {
      if (smooth == Smooth::kExp) {
        mteval *= 2;
        p = 100.0f / (float(mteval) * t);
      } else if (smooth == Smooth::kFloor) {
        p = float(100.0 * smooth_value) / t;
      }
    } else {
      p = 100.0f * c / t;
    }
    logs[n - 1] = p == 0.0f ? -9999999999.0 : std::log(double(p));
  }
  return finish_bleu(bp, logs, used, compensated_sum);
}

void chrf_stats(const std::string_view* hyps, int64_t n, const std::string_view* refs,
                const uint8_t* present, int64_t nrefs, const ChrfConfig& c, int64_t* stats) {
  check(c);
  const int64_t W = c.width();
  Batch batch(c);
  SegmentScorer scorer(c);
  std::vector<Prepared> lines(size_t(nrefs + 1));
  std::vector<int64_t> cand(static_cast<size_t>(W));
  for (int64_t i = 0; i < n; ++i) {
    batch.clear();
    int64_t k = 0;
    for (int64_t r = 0; r < nrefs; ++r)
      if (present[r * n + i]) batch.add(refs[r * n + i], lines[size_t(k++)]);
    if (k == 0)
      throw std::invalid_argument("refs: segment " + std::to_string(i) + " has no reference");
    Prepared& hyp = lines[size_t(k)];
    batch.add(hyps[i], hyp);
    batch.finish([&](int64_t j) -> Prepared& { return lines[size_t(j)]; });
    int64_t* out = stats + i * W;
    double best = -1.0;
    for (int64_t r = 0; r < k; ++r) {
      scorer.set_reference(lines[size_t(r)]);
      if (k == 1) {
        scorer.match(hyp, out);
        break;
      }
      scorer.match(hyp, cand.data());
      const double f = chrf_score(cand.data(), c);
      if (f > best) {  // the first of equally good references, as sacrebleu
        best = f;
        std::copy(cand.begin(), cand.end(), out);
      }
    }
  }
}

void chrf_pairwise(const std::string_view* hyps, int64_t n, const std::string_view* refs,
                   int64_t m, const ChrfConfig& c, double* scores) {
  check(c);
  Batch batch(c);  // one vocabulary for all, so that every hypothesis and reference agree
  SegmentScorer scorer(c);
  std::vector<Prepared> h(static_cast<size_t>(n)), r(static_cast<size_t>(m));
  batch.clear();
  for (int64_t i = 0; i < n; ++i) batch.add(hyps[i], h[size_t(i)]);
  for (int64_t j = 0; j < m; ++j) batch.add(refs[j], r[size_t(j)]);
  batch.finish([&](int64_t k) -> Prepared& { return k < n ? h[size_t(k)] : r[size_t(k - n)]; });
  std::vector<int64_t> st(static_cast<size_t>(c.width()));
  for (int64_t j = 0; j < m; ++j) {
    scorer.set_reference(r[size_t(j)]);
    for (int64_t i = 0; i < n; ++i) {
      scorer.match(h[size_t(i)], st.data());
      scores[i * m + j] = chrf_score(st.data(), c);
    }
  }
}

}  // namespace fastrnn::bleu
