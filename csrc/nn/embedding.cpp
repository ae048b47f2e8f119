// embedding.cpp: embedding_backward, the scatter-add dweight[ids[n]] += dout[n].
//
// Why C++: NumPy's formulations either serialize per element (np.add.at) or sort and copy the
// whole (N, D) gradient (argsort + add.reduceat); this loop reads dout once and touches only the
// rows that occur. See bench/train.py's embedding line for the measured ratio.
#include "nn/embedding.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace fastrnn {

template <typename T>
void embedding_backward(T* dweight, const int64_t* ids, const T* dout, int64_t V, int64_t D,
                        int64_t N, int64_t padding_idx, int num_threads) {
  for (int64_t n = 0; n < N; ++n) {
    if (ids[n] < 0 || ids[n] >= V)
      throw std::invalid_argument("input: id " + std::to_string(ids[n]) + " at position " +
                                  std::to_string(n) + " is out of range [0, " + std::to_string(V) +
                                  ")");
  }
  // Threads own disjoint row ranges; below ~64K updated values one thread is faster.
  const int threads = (N * D < (int64_t(1) << 16)) ? 1 : std::max(1, num_threads);
#pragma omp parallel num_threads(threads)
  {
    const int nt = omp_get_num_threads();
    const int tid = omp_get_thread_num();
    const int64_t lo = V * tid / nt, hi = V * (tid + 1) / nt;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t v = ids[n];
      if (v < lo || v >= hi || v == padding_idx) continue;
      T* __restrict row = dweight + v * D;   // [D]
      const T* __restrict g = dout + n * D;  // [D]
      for (int64_t d = 0; d < D; ++d) row[d] += g[d];
    }
  }
}

template void embedding_backward<float>(float*, const int64_t*, const float*, int64_t, int64_t,
                                        int64_t, int64_t, int);
template void embedding_backward<double>(double*, const int64_t*, const double*, int64_t, int64_t,
                                         int64_t, int64_t, int);

}  // namespace fastrnn
