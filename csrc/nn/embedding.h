// embedding.h: the scatter-add of an embedding's backward. Plain C++: no Python, no ISA code.
//
// Letters: V rows of the table (vocabulary), D features per row, N looked-up ids.
// Conventions as in fastrnn.h: dense row-major arrays, std::invalid_argument on bad input.
#pragma once

#include <cstdint>

namespace fastrnn {

// dweight[ids[n], :] += dout[n, :] for every n with ids[n] != padding_idx (pass -1 for none).
// Rows are accumulated in the order of n, so the result is bitwise the same for any thread count:
// each thread owns a range of rows and scans all ids. Throws std::invalid_argument (naming the
// position) if an id is outside [0, V); nothing is written in that case.
template <typename T>
void embedding_backward(T* dweight,          // [V, D] accumulated into
                        const int64_t* ids,  // [N]
                        const T* dout,       // [N, D]
                        int64_t V, int64_t D, int64_t N, int64_t padding_idx, int num_threads);

}  // namespace fastrnn
