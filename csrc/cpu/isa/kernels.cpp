// kernels.cpp: whole-sequence forward and backward through time for every cell, and the single
// streaming step. Compiled once per ISA (scalar, avx2, avx512, amx) into namespace fastrnn::<isa>:
// the one translation unit per ISA, made of the parts it includes inside that namespace:
//   vec.h, gemm.h     vectors, the matrix kernels and the large GEMM
//   cell_math.h       the cells' math for Vec<T>, then the cells (cells/all.h) in <isa>::cells
//   sequence.h        shapes, sorted rows, vector chunks      schedule.h   Stages and waits
//   products.h        the recurrence's small products         packing.h    packed weights
//   forward.h         forward pass and step, per cell         backward.h   backward pass, per cell
//   amx.h             (amx only) bfloat16 products on AMX tiles, for the autocast mode
// and, below, the entry points: one switch from the Cell to the drivers' cell type, per call.
//
// Forward, per sequence:   XP[T*B, G*H] = X W_ih^T + biases        (one GEMM for all steps)
//   per step s:            for each nr-block of hidden units owned by this thread:
//                            tile = h_{s-1} W_hh^T (its G gate panels) -> gates -> h_s, c_s
//                          wait for the step's other blocks         (h_s is the next product's A)
// Backward, per step s from the last: gate gradients dG_s (pointwise), wait for the step,
//   dh_{s-1} = dG_s W_hh + carried terms (own units), and the pointwise of step s-1 for those units
//   right away. After the loop: dX = dG W_ih, dW_ih = dG^T X, dW_hh = dG^T H_prev, db = sum dG.
//
// Threads take blocks of hidden units stage by stage (see Stages); products never split the
// reduction, so results do not depend on the thread count or on who computed a block. Rows are the
// sorted batch (see fastrnn.h), so the rows still running at step s are rows [0, active[s]).
#include <omp.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>
#if !defined(FASTRNN_ISA_IS_scalar)
#include <immintrin.h>
#endif

#include <new>
#include <type_traits>

#include "cells/hd.h"
#include "fastrnn.h"

namespace fastrnn {
namespace FASTRNN_ISA_NS {

// clang-format off: the order matters (gemm.h's Vec is cell_math.h's)
#include "cpu/isa/gemm.h"
#include "cpu/isa/cell_math.h"
// clang-format on

#if defined(FASTRNN_ISA_AMX)
#include "cpu/isa/amx.h"  // the autocast products on AMX tiles
#endif

namespace cells {
#include "cells/all.h"
}  // namespace cells

namespace {

// clang-format off
#include "cpu/isa/sequence.h"
#include "cpu/isa/schedule.h"
#include "cpu/isa/products.h"
#include "cpu/isa/forward.h"
#include "cpu/isa/backward.h"
#include "cpu/isa/packing.h"
// clang-format on

// which: 0 exp, 1 expm1, 2 sigmoid, 3 tanh, 4 and 5 autocast's sigmoid and tanh (AutocastVec's
// on the amx table, float32; the exact ones elsewhere)
template <typename T>
void math(int which, const T* x, T* y, int64_t n) {
  using V = Vec<T>;
  for (int64_t i = 0; i < n; i += V::W) {
    const int cnt = int(imin(V::W, n - i));
    V v = ld(x + i, cnt);
    V r = which == 0 ? vexp(v) : which == 1 ? vexpm1(v) : which % 2 == 0 ? vsigmoid(v) : vtanh(v);
#if defined(FASTRNN_ISA_AMX)
    if constexpr (sizeof(T) == 4)
      if (which >= 4) r = vec_of(which == 4 ? vsigmoid(AutocastVec(v)) : vtanh(AutocastVec(v)));
#endif
    st(y + i, r, cnt);
  }
}

// The sum of x, read with vector loads on `threads` threads, each taking a contiguous share (as
// each thread owns the weight panels of its hidden-unit blocks in the recurrence).
template <typename T>
T stream_read(const T* x, int64_t n, int threads) {
  using V = Vec<T>;
  T total = T(0);
#pragma omp parallel num_threads(threads) if (threads > 1) reduction(+ : total)
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    const int64_t i0 = n * tid / nth / (4 * V::W) * (4 * V::W);
    const int64_t i1 = tid == nth - 1 ? n : n * (tid + 1) / nth / (4 * V::W) * (4 * V::W);
    V s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
    int64_t i = i0;
    for (; i + 4 * V::W <= i1; i += 4 * V::W) {
      s0 = s0 + V::loadu(x + i);
      s1 = s1 + V::loadu(x + i + V::W);
      s2 = s2 + V::loadu(x + i + 2 * V::W);
      s3 = s3 + V::loadu(x + i + 3 * V::W);
    }
    T lanes[V::W];
    ((s0 + s1) + (s2 + s3)).storeu(lanes);
    T part = T(0);
    for (int l = 0; l < V::W; ++l) part += lanes[l];
    for (; i < i1; ++i) part += x[i];
    total += part;
  }
  return total;
}

// The entry points of the table: the cell's type, chosen once per call.
template <typename T>
size_t forward_work_entry(const SeqArgs<T>& a) {
  return forward_work(a);
}
template <typename T>
size_t backward_work_entry(const SeqArgs<T>& a) {
  return backward_work(a);
}
template <typename T>
void forward_entry(const SeqArgs<T>& a) {
  cells::with_cell(a.cell, [&](auto c) { forward<decltype(c)>(a); });
}
template <typename T>
void backward_entry(const SeqArgs<T>& a) {
  cells::with_cell(a.cell, [&](auto c) { backward<decltype(c)>(a); });
}
template <typename T>
void step_entry(const SeqArgs<T>& a) {
  cells::with_cell(a.cell, [&](auto c) { step<decltype(c)>(a); });
}

template <typename T>
void gemm_entry(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
                const T* b, int64_t ldb, T beta, T* c, int64_t ldc, int threads) {
  gemm<T>(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, threads);
}

#if defined(FASTRNN_ISA_AMX)
void gemm_bf16_entry(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                     const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads) {
  amx_gemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, threads);
}
#endif

template <typename T, bool kBf16Dot = false>
Kernels<T> make_kernels() {
  Kernels<T> k;
  k.tiling = Tiling{Tile<T>::MR, Tile<T>::NR};
  k.packed_size = &packed_size<T>;
  k.pack = &pack<T>;
  if constexpr (sizeof(T) == 4) {
    k.packed_bf16_size = &packed_bf16_size<T>;
    k.pack_bf16 = &pack_bf16<T, kBf16Dot>;
    k.packed_i8_size = &packed_i8_size<T>;
    k.pack_i8 = &pack_i8<T>;
  } else {
    k.packed_i8_size = nullptr;
    k.pack_i8 = nullptr;
    k.packed_bf16_size = nullptr;
    k.pack_bf16 = nullptr;
  }
  k.packed_amx_size = nullptr;
  k.pack_amx = nullptr;
  k.gemm_bf16 = nullptr;
#if defined(FASTRNN_ISA_AMX)
  if constexpr (sizeof(T) == 4) {
    k.packed_amx_size = &packed_amx_size<T>;
    k.pack_amx = &pack_amx<T>;
    k.gemm_bf16 = &gemm_bf16_entry;
  }
#endif
  k.forward_work = &forward_work_entry<T>;
  k.backward_work = &backward_work_entry<T>;
  k.forward = &forward_entry<T>;
  k.backward = &backward_entry<T>;
  k.step = &step_entry<T>;
  k.gemm = &gemm_entry<T>;
  k.math = &math<T>;
  k.stream_read = &stream_read<T>;
  return k;
}

}  // namespace

#define FASTRNN_STR2(x) #x
#define FASTRNN_STR(x) FASTRNN_STR2(x)

#if defined(FASTRNN_ISA_AMX)
// The avx512_bf16 table's kernels, plus the autocast products on AMX tiles.
KernelTable table() {
  return KernelTable{"amx_bf16", make_kernels<float, true>(), make_kernels<double>()};
}
#else
KernelTable table() {
  return KernelTable{FASTRNN_STR(FASTRNN_ISA_NS), make_kernels<float>(), make_kernels<double>()};
}
#endif

#if defined(FASTRNN_ISA_IS_avx512) && !defined(FASTRNN_ISA_AMX)
// The same kernels; the reduced-precision inference uses bfloat16 dot products (AVX512_BF16) at
// one or two rows.
KernelTable table_bf16() {
  return KernelTable{"avx512_bf16", make_kernels<float, true>(), make_kernels<double>()};
}
#endif

}  // namespace FASTRNN_ISA_NS
}  // namespace fastrnn
