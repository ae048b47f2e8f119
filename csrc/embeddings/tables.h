// tables.h: the word2vec tables that need containers (baseline code only; simd.cpp never
// includes this file).
#pragma once

#include <cstdint>
#include <vector>

namespace fastrnn {

// Huffman tree over counts (V >= 1), as in word2vec.c: word w's path from the root visits inner
// nodes points[k] (in [0, V-1)) and turns codes[k] (0/1) there, k in [code_start[w],
// code_start[w+1]). Ties are broken by node id, so the tree is a function of the counts.
struct HuffmanCodes {
  std::vector<uint8_t> codes;
  std::vector<int32_t> points;
  std::vector<int64_t> code_start;  // [V+1]
};
HuffmanCodes huffman(const int64_t* counts, int64_t V);

}  // namespace fastrnn
