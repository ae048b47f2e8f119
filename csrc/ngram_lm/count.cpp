// count.cpp: distinct k-grams by rank doubling. The rank of the k-gram starting at position p is
// the rank of the pair (rank of the (k-1)-gram at p, id at p+k-1): one 64-bit key per position,
// one sort per order. Sorting by that key is lexicographic order of the k-grams, so each table's
// rows come out sorted, a row's prefix row is the high half of its key, and its suffix row is the
// previous order's rank at the next position.
#include "ngram_lm/count.h"

#include <algorithm>
#include <utility>

namespace fastrnn {
namespace ngram_lm {

std::vector<OrderTable> count_ngrams(const int32_t* ids, int64_t n_ids, const int64_t* offsets,
                                     int64_t n_sentences, int order) {
  // end[p]: one past the last position of p's sentence
  std::vector<int64_t> end(size_t(n_ids), 0);
  for (int64_t s = 0; s < n_sentences; ++s)
    for (int64_t p = offsets[s]; p < offsets[s + 1]; ++p) end[size_t(p)] = offsets[s + 1];

  std::vector<OrderTable> tables;
  std::vector<uint32_t> prev(size_t(n_ids), 0), cur(size_t(n_ids), 0);  // ranks by start position
  std::vector<std::pair<uint64_t, int64_t>> keyed;                      // (key, start position)
  keyed.reserve(size_t(n_ids));
  for (int k = 1; k <= order; ++k) {
    keyed.clear();
    for (int64_t p = 0; p < n_ids; ++p) {
      if (p + k > end[size_t(p)]) continue;  // the k-gram would cross its sentence's end
      const uint64_t hi = k == 1 ? 0 : uint64_t(prev[size_t(p)]);
      keyed.emplace_back((hi << 32) | uint64_t(uint32_t(ids[p + k - 1])), p);
    }
    std::sort(keyed.begin(), keyed.end());
    OrderTable t;
    t.order = k;
    std::vector<int64_t> first;  // one start position of each distinct k-gram
    for (size_t i = 0; i < keyed.size(); ++i) {
      if (i == 0 || keyed[i].first != keyed[i - 1].first) {
        first.push_back(keyed[i].second);
        t.count.push_back(0);
      }
      ++t.count.back();
      cur[size_t(keyed[i].second)] = uint32_t(first.size() - 1);
    }
    const size_t m = first.size();
    t.grams.resize(m * size_t(k));
    t.left.assign(m, 0);
    for (size_t r = 0; r < m; ++r)
      for (int j = 0; j < k; ++j) t.grams[r * size_t(k) + size_t(j)] = ids[first[r] + j];
    if (k >= 2) {
      t.prefix.resize(m);
      t.suffix.resize(m);
      OrderTable& low = tables.back();
      for (size_t r = 0; r < m; ++r) {
        t.prefix[r] = int64_t(prev[size_t(first[r])]);
        t.suffix[r] = int64_t(prev[size_t(first[r] + 1)]);
        ++low.left[size_t(t.suffix[r])];  // each distinct "v g" is one left extension of g
      }
    }
    tables.push_back(std::move(t));
    std::swap(prev, cur);
  }
  return tables;
}

}  // namespace ngram_lm
}  // namespace fastrnn
