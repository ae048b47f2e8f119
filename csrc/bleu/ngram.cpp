// ngram.cpp: n-gram extraction, clipped counting and the BLEU of one statistics row.
//
// Counting follows sacrebleu's definition (reference n-gram counts merged by maximum over the
// references, hypothesis counts clipped by them) but never builds a Counter of tuples: n-grams are
// spans of token ids found through a hash table keyed by a rolling hash of the span, with exact
// comparison of the ids on a hash hit, so no collision can change a count. The table is stamped
// rather than cleared between segments, and only sized to the segment at hand.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bleu/bleu.h"

namespace fastrnn::bleu {
namespace {

uint64_t fmix(uint64_t x) {  // MurmurHash3's 64-bit finalizer
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// Hash of the n-gram ending in `id`, given the hash of its (n-1)-gram prefix.
uint64_t extend(uint64_t prefix, int64_t id) {
  return fmix((prefix ^ uint64_t(id)) * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
}
constexpr uint64_t kSeed = 0x243f6a8885a308d3ULL;

uint64_t hash_bytes(std::string_view s) {
  uint64_t h = kSeed ^ (uint64_t(s.size()) * 0x9e3779b97f4a7c15ULL);
  const char* p = s.data();
  size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  return fmix(h ^ w);
}

bool same_ids(const int64_t* a, const int64_t* b, int n) {
  for (int i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

uint64_t next_pow2(uint64_t x) {
  uint64_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

int64_t count_ngrams(int64_t len, int order) {
  int64_t c = 0;
  for (int n = 1; n <= order && n <= len; ++n) c += len - n + 1;
  return c;
}

}  // namespace

// --- Vocab ---------------------------------------------------------------------------------

constexpr uint64_t kInitialSlots = uint64_t(1) << 16;  // beyond this, grow with what is seen

void Vocab::reset(int64_t max_tokens) {
  const uint64_t cap =
      std::min(kInitialSlots, next_pow2(uint64_t(std::max<int64_t>(64, 2 * max_tokens))));
  if (cap > slots_.size() || stamp_ == UINT32_MAX) {
    slots_.assign(std::max<size_t>(cap, slots_.size()), Slot{0, 0, 0, 0, 0});
    stamp_ = 0;
  }
  ++stamp_;
  mask_ = cap - 1;
  chars_.clear();
  size_ = 0;
}

void Vocab::grow() {
  std::vector<Slot> live;
  live.reserve(size_t(size_));
  for (uint64_t i = 0; i <= mask_; ++i)
    if (slots_[i].stamp == stamp_) live.push_back(slots_[i]);
  const uint64_t cap = 2 * (mask_ + 1);
  if (cap > slots_.size()) {
    slots_.clear();
    slots_.shrink_to_fit();  // the old table goes before the new one comes
    slots_.assign(cap, Slot{0, 0, 0, 0, 0});
    stamp_ = 1;
    for (Slot& s : live) s.stamp = 1;
  } else {
    for (uint64_t i = 0; i <= mask_; ++i) slots_[i].stamp = 0;
  }
  mask_ = cap - 1;
  for (const Slot& s : live) {
    uint64_t i = s.hash & mask_;
    while (slots_[i].stamp == stamp_) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

inline int64_t Vocab::id(std::string_view token) {
  if (token.size() > size_t(INT32_MAX))
    throw std::invalid_argument("a token is longer than 2 GiB");
  const uint64_t h = hash_bytes(token);
  for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.stamp != stamp_) {
      if (uint64_t(size_ + 1) * 4 > (mask_ + 1) * 3) {  // keep the load at most 3/4
        grow();
        return id(token);
      }
      s = Slot{h, int64_t(chars_.size()), int32_t(token.size()), stamp_, size_};
      chars_.append(token.data(), token.size());
      return size_++;
    }
    if (s.hash == h && s.len == int32_t(token.size()) &&
        std::memcmp(chars_.data() + s.offset, token.data(), token.size()) == 0)
      return s.id;
  }
}

// --- NgramCounter --------------------------------------------------------------------------

constexpr uint64_t kHashBits = (uint64_t(1) << 48) - 1;

inline uint64_t make_key(uint64_t hash, int n) { return (hash & kHashBits) | (uint64_t(n) << 48); }

NgramCounter::NgramCounter(int order) : order_(order) {
  if (order < 1 || order > 0xFFFF)
    throw std::invalid_argument("max_ngram_order: expected an integer in [1, 65535]");
}

inline NgramCounter::Entry* NgramCounter::find(uint64_t key, const int64_t* ids, int n) {
  for (uint64_t i = key & kHashBits & mask_;; i = (i + 1) & mask_) {
    Entry& e = table_[i];
    if (e.live != live_) return nullptr;
    if (e.key == key && same_ids(e.ids, ids, n)) return &e;
  }
}

inline NgramCounter::Entry* NgramCounter::insert(uint64_t key, const int64_t* ids, int n) {
  for (uint64_t i = key & kHashBits & mask_;; i = (i + 1) & mask_) {
    Entry& e = table_[i];
    if (e.live != live_) {
      if (uint64_t(size_ + 1) * 4 > (mask_ + 1) * 3) {  // keep the load at most 3/4
        grow();
        return insert(key, ids, n);
      }
      ++size_;
      e = Entry{key, ids, live_, 0, 0, 0};
      return &e;
    }
    if (e.key == key && same_ids(e.ids, ids, n)) return &e;
  }
}

void NgramCounter::grow() {
  std::vector<Entry> live;
  live.reserve(size_t(size_));
  for (uint64_t i = 0; i <= mask_; ++i)
    if (table_[i].live == live_) live.push_back(table_[i]);
  const uint64_t cap = 2 * (mask_ + 1);
  if (cap > table_.size()) {
    table_.clear();
    table_.shrink_to_fit();  // the old table goes before the new one comes
    table_.assign(cap, Entry{});
    live_ = 1;
    for (Entry& e : live) e.live = 1;
  } else {
    for (uint64_t i = 0; i <= mask_; ++i) table_[i].live = 0;
  }
  mask_ = cap - 1;
  for (const Entry& e : live) {
    uint64_t i = e.key & kHashBits & mask_;
    while (table_[i].live == live_) i = (i + 1) & mask_;
    table_[i] = e;
  }
}

// A new pass: `cur` of every entry becomes stale.
void NgramCounter::next_mark() {
  if (mark_ == UINT32_MAX) {
    for (Entry& e : table_) e.mark = 0;
    mark_ = 0;
  }
  ++mark_;
}

void NgramCounter::set_references(const Span* refs, int64_t nrefs) {
  int64_t needed = 0;
  ref_lens_.clear();
  for (int64_t r = 0; r < nrefs; ++r) {
    needed += count_ngrams(refs[r].len, order_);
    ref_lens_.push_back(refs[r].len);
  }
  const uint64_t cap =
      std::min(kInitialSlots, next_pow2(uint64_t(std::max<int64_t>(64, 2 * needed))));
  if (cap > table_.size() || live_ == UINT32_MAX) {
    table_.assign(std::max<size_t>(cap, table_.size()), Entry{});  // every stamp back to 0
    live_ = 0;
    mark_ = 0;
  }
  mask_ = cap - 1;
  size_ = 0;
  ++live_;
  for (int64_t r = 0; r < nrefs; ++r) {
    next_mark();
    const int64_t* ids = refs[r].ids;
    const int64_t len = refs[r].len;
    for (int64_t i = 0; i < len; ++i) {
      uint64_t h = kSeed;
      const int top = int(std::min<int64_t>(order_, len - i));
      for (int n = 1; n <= top; ++n) {
        h = extend(h, ids[i + n - 1]);
        Entry* e = insert(make_key(h, n), ids + i, n);
        if (e->mark != mark_) {  // first occurrence in this reference
          e->mark = mark_;
          e->cur = 0;
        }
        e->ref_max = std::max(e->ref_max, ++e->cur);
      }
    }
  }
}

void NgramCounter::match(Span hyp, int64_t* stats) {
  if (ref_lens_.empty()) throw std::invalid_argument("refs: a segment has no reference");
  next_mark();
  const int64_t len = hyp.len;
  int64_t best = ref_lens_[0];  // closest reference length, the shorter one on ties
  for (int64_t r : ref_lens_) {
    const int64_t d = std::llabs(len - r), db = std::llabs(len - best);
    if (d < db || (d == db && r < best)) best = r;
  }
  stats[0] = len;
  stats[1] = best;
  int64_t* correct = stats + 2;
  int64_t* total = stats + 2 + order_;
  for (int n = 1; n <= order_; ++n) {
    correct[n - 1] = 0;
    total[n - 1] = std::max<int64_t>(0, len - n + 1);
  }
  for (int64_t i = 0; i < len; ++i) {
    uint64_t h = kSeed;
    const int top = int(std::min<int64_t>(order_, len - i));
    for (int n = 1; n <= top; ++n) {
      h = extend(h, hyp.ids[i + n - 1]);
      Entry* e = find(make_key(h, n), hyp.ids + i, n);
      if (!e) break;  // no reference has this n-gram, so none has its extensions either
      if (e->mark != mark_) {
        e->mark = mark_;
        e->cur = 0;
      }
      if (++e->cur <= e->ref_max) ++correct[n - 1];
    }
  }
}

// --- score ---------------------------------------------------------------------------------

Smooth parse_smooth(std::string_view name) {
  if (name == "none") return Smooth::kNone;
  if (name == "floor") return Smooth::kFloor;
  if (name == "add-k") return Smooth::kAddK;
  if (name == "exp") return Smooth::kExp;
  throw std::invalid_argument(
      "smooth_method: expected one of 'exp', 'floor', 'add-k', 'none', got '" + std::string(name) +
      "'");
}

double finish_bleu(double bp, const double* logs, int used, bool compensated_sum) {
  double sum = 0.0, comp = 0.0;
  for (int n = 0; n < used; ++n) {
    const double x = logs[n];
    if (!compensated_sum) {
      sum += x;
      continue;
    }
    const double t = sum + x;  // Neumaier's step, as CPython >= 3.12's sum() takes it
    comp += std::fabs(sum) >= std::fabs(x) ? (sum - t) + x : (x - t) + sum;
    sum = t;
  }
  if (compensated_sum && comp != 0.0 && std::isfinite(comp)) sum += comp;
  return bp * std::exp(sum / double(used));
}

double score(const int64_t* stats, int order, Smooth smooth, double smooth_value,
             bool effective_order, bool compensated_sum) {
  const int64_t sys_len = stats[0], ref_len = stats[1];
  const int64_t* correct = stats + 2;
  const int64_t* total = stats + 2 + order;
  double bp = 1.0;
  if (sys_len < ref_len) bp = sys_len > 0 ? std::exp(1.0 - double(ref_len) / double(sys_len)) : 0.0;
  bool any_match = false;
  for (int n = 0; n < order; ++n) any_match |= correct[n] != 0;
  if (!any_match) return 0.0;

  // The log-precisions, in order, and how many of them count.
  double small[16];  // no allocation for the usual orders
  std::vector<double> big(order > 16 ? size_t(order) : 0);
  double* logs = order > 16 ? big.data() : small;
  std::fill(logs, logs + order, -9999999999.0);  // orders after a break keep precision 0
  double mteval = 1.0;
  int used = order;
  for (int n = 1; n <= order; ++n) {
    double c = double(correct[n - 1]), t = double(total[n - 1]);
    if (smooth == Smooth::kAddK && n > 1) {
      c += smooth_value;
      t += smooth_value;
    }
    if (t == 0) break;
    if (effective_order) used = n;
    double p = 0.0;
    if (c == 0) {
      if (smooth == Smooth::kExp) {
        mteval *= 2;
        p = 100. / (mteval * t);
      } else if (smooth == Smooth::kFloor) {
        p = 100. * smooth_value / t;
      }
    } else {
      p = 100. * c / t;
    }
    logs[n - 1] = p == 0.0 ? -9999999999.0 : std::log(p);
  }
  return finish_bleu(bp, logs, used, compensated_sum);
}

// --- whole calls ---------------------------------------------------------------------------

void text_stats(const std::string_view* hyps, int64_t n, const std::string_view* refs,
                const uint8_t* present, int64_t nrefs, Tokenizer kind, const uint8_t* flags,
                int order, int64_t* stats) {
  const int64_t W = 2 + 2 * int64_t(order);
  NgramCounter counter(order);
  LineTokenizer tokenize(kind, flags);
  Vocab vocab;  // per segment: ids only need to agree within one
  std::string chars;
  std::vector<int64_t> ends, ids, bounds;  // bounds: [lines + 1] into ends (and ids)
  std::vector<Span> spans;
  for (int64_t i = 0; i < n; ++i) {
    chars.clear();
    ends.clear();
    bounds.assign(1, 0);
    for (int64_t r = 0; r < nrefs; ++r) {
      if (!present[r * n + i]) continue;
      tokenize(refs[r * n + i], chars, ends);
      bounds.push_back(int64_t(ends.size()));
    }
    const int64_t k = int64_t(bounds.size()) - 1;  // references present
    if (k == 0)
      throw std::invalid_argument("refs: segment " + std::to_string(i) + " has no reference");
    tokenize(hyps[i], chars, ends);
    bounds.push_back(int64_t(ends.size()));
    vocab.reset(int64_t(ends.size()));
    ids.resize(ends.size());
    int64_t start = 0;
    for (size_t t = 0; t < ends.size(); ++t) {
      ids[t] = vocab.id(std::string_view(chars.data() + start, size_t(ends[t] - start)));
      start = ends[t];
    }
    spans.clear();
    for (int64_t j = 0; j <= k; ++j)
      spans.push_back(Span{ids.data() + bounds[j], bounds[j + 1] - bounds[j]});
    counter.set_references(spans.data(), k);
    counter.match(spans[k], stats + i * W);
  }
}

void id_stats(const int64_t* hyp_ids, const int64_t* hyp_off, int64_t n, const int64_t* ref_ids,
              const int64_t* ref_off, const uint8_t* present, int64_t nrefs, int order,
              int64_t* stats) {
  const int64_t W = 2 + 2 * int64_t(order);
  NgramCounter counter(order);
  std::vector<Span> spans;
  for (int64_t i = 0; i < n; ++i) {
    spans.clear();
    for (int64_t r = 0; r < nrefs; ++r) {
      const int64_t j = r * n + i;
      if (present[j]) spans.push_back(Span{ref_ids + ref_off[j], ref_off[j + 1] - ref_off[j]});
    }
    if (spans.empty())
      throw std::invalid_argument("refs: segment " + std::to_string(i) + " has no reference");
    counter.set_references(spans.data(), int64_t(spans.size()));
    counter.match(Span{hyp_ids + hyp_off[i], hyp_off[i + 1] - hyp_off[i]}, stats + i * W);
  }
}

void pairwise_ids(const int64_t* hyp_ids, const int64_t* hyp_off, int64_t n, const int64_t* ref_ids,
                  const int64_t* ref_off, int64_t m, int order, Smooth smooth, double smooth_value,
                  bool effective_order, bool compensated_sum, double* scores) {
  NgramCounter counter(order);
  std::vector<int64_t> st(size_t(2 + 2 * order));
  for (int64_t j = 0; j < m; ++j) {
    const Span ref{ref_ids + ref_off[j], ref_off[j + 1] - ref_off[j]};
    counter.set_references(&ref, 1);
    for (int64_t i = 0; i < n; ++i) {
      counter.match(Span{hyp_ids + hyp_off[i], hyp_off[i + 1] - hyp_off[i]}, st.data());
      scores[i * m + j] =
          score(st.data(), order, smooth, smooth_value, effective_order, compensated_sum);
    }
  }
}

void pairwise_text(const std::string_view* hyps, int64_t n, const std::string_view* refs, int64_t m,
                   Tokenizer kind, const uint8_t* flags, int order, Smooth smooth,
                   double smooth_value, bool effective_order, bool compensated_sum,
                   double* scores) {
  LineTokenizer tokenize(kind, flags);
  std::string chars;
  std::vector<int64_t> ends, hyp_off(1, 0), ref_off(1, 0);
  for (int64_t i = 0; i < n; ++i) {
    tokenize(hyps[i], chars, ends);
    hyp_off.push_back(int64_t(ends.size()));
  }
  for (int64_t j = 0; j < m; ++j) {
    tokenize(refs[j], chars, ends);
    ref_off.push_back(int64_t(ends.size()) - hyp_off.back());
  }
  Vocab vocab;  // one for all, so that hypothesis and reference ids agree
  vocab.reset(int64_t(ends.size()));
  std::vector<int64_t> ids(ends.size());
  int64_t start = 0;
  for (size_t t = 0; t < ends.size(); ++t) {
    ids[t] = vocab.id(std::string_view(chars.data() + start, size_t(ends[t] - start)));
    start = ends[t];
  }
  pairwise_ids(ids.data(), hyp_off.data(), n, ids.data() + hyp_off.back(), ref_off.data(), m, order,
               smooth, smooth_value, effective_order, compensated_sum, scores);
}

}  // namespace fastrnn::bleu
