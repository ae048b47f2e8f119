// count.h: n-gram counting for fastrnn.models.ngram.KneserNeyLM (Kneser-Ney needs, per order,
// every distinct k-gram with its count and its number of distinct left extensions).
//
// Input: one stream of token ids in [0, V) holding S sentences back to back (sentence s spans
// [offsets[s], offsets[s+1])), already padded by the caller. No n-gram crosses a sentence border.
// Output per order k = 1..n: the distinct k-grams in lexicographic order of their ids, and for
// each one its count, its left-extension count N1+(. g) (distinct v with "v g" seen; 0 at k = n),
// and for k >= 2 the row of its prefix (first k-1 ids) and of its suffix (last k-1 ids) in the
// table of order k-1. Everything else (discounts, probabilities) is NumPy on these tables.
#pragma once

#include <cstdint>
#include <vector>

namespace fastrnn {
namespace ngram_lm {

struct OrderTable {
  int order = 0;
  std::vector<int32_t> grams;   // [M, order] token ids, rows in lexicographic order
  std::vector<int64_t> count;   // [M] occurrences
  std::vector<int64_t> left;    // [M] distinct left extensions (zeros at the highest order)
  std::vector<int64_t> prefix;  // [M] row of grams[:, :-1] in the order-1 table (order >= 2)
  std::vector<int64_t> suffix;  // [M] row of grams[:, 1:] in the order-1 table (order >= 2)
};

// Requires: ids in [0, 2^31), total length < 2^32 (ranks fit 32 bits), offsets non-decreasing
// from 0 to n_ids, order >= 1. The binding checks all of these before calling.
std::vector<OrderTable> count_ngrams(const int32_t* ids, int64_t n_ids, const int64_t* offsets,
                                     int64_t n_sentences, int order);

}  // namespace ngram_lm
}  // namespace fastrnn
