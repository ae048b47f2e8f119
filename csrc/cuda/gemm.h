// gemm.h: the matrix product of the CUDA path, written as the work of one thread of one block so
// that the same code runs in the GPU kernel (runtime_cuda.cu) and, one simulated thread at a time,
// in the host build (runtime_host.cpp) that the CPU test suite runs. No cuBLAS: a classic
// shared-memory tiling, correctness first (no tensor cores, no TF32, no double buffering).
//
//   C[M, N] = op(A) op(B) (+ C if accumulate) (+ bias[n] on every row), op(X) = X or X^T
//
// A block computes a BM x BN tile of C, walking K in steps of BK: all threads load the BK-deep
// slices of op(A) and op(B) into shared memory (load), synchronize, each thread accumulates its
// TM x TN entries (compute), synchronize; at the end each thread writes its entries (store). A
// thread's entries are strided by the thread-grid size so that stores are coalesced and shared-
// memory reads conflict-free. Every entry sums over k in the same order whatever the tile, so
// results are deterministic.
#pragma once

#include <stdint.h>

#include "cells/hd.h"
#include "cuda/half.h"

#if defined(__CUDA_ARCH__)
#define FASTRNN_UNROLL _Pragma("unroll")
#else
#define FASTRNN_UNROLL
#endif

namespace fastrnn {
namespace gpu_kernels {

// T: C, A, the bias and the sums. TB: the right operand, which may be a 16-bit storage type
// (the weights of a bfloat16 / float16 layer), widened to T as it is loaded.
template <typename T, typename TB = T>
struct GemmArgs {
  T* c;           // [M, ldc]
  const T* a;     // [M, lda] or, trans_a, [K, lda]
  const TB* b;    // [K, ldb] or, trans_b, [N, ldb]
  const T* bias;  // [N] or null
  int64_t m, n, k;
  int64_t lda, ldb, ldc;
  bool trans_a, trans_b;
  bool accumulate;  // C += op(A) op(B); otherwise C's old contents are not read
};

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct GemmConfig {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int TX = BN / TN, TY = BM / TM;  // thread grid of a block
  static constexpr int NT = TX * TY;                // threads per block
};

// Large tiles for the big products (input projection, weight and input gradients).
using GemmLarge = GemmConfig<64, 64, 16, 4, 4>;  // 256 threads, 16 entries each
// Short tiles for the per-step recurrent products, whose M is the number of running sequences.
using GemmSmall = GemmConfig<16, 64, 16, 1, 4>;  // 256 threads, 4 entries each

template <typename T, class Cfg, typename TB = T>
struct GemmTile {
  struct Acc {
    T v[Cfg::TM][Cfg::TN];
  };

  // The block's tiles of op(A) (As[kk * BM + mm]) and op(B) (Bs[kk * BN + nn]) for depth k0,
  // zero-padded past M, N, K. Consecutive threads read consecutive addresses in each layout.
  FASTRNN_HD static void load(const GemmArgs<T, TB>& g, int64_t m0, int64_t n0, int64_t k0, int tid,
                              T* As, T* Bs) {
    constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, NT = Cfg::NT;
    for (int e = tid; e < BK * BM; e += NT) {
      int mm, kk;
      if (g.trans_a) {  // stored [K, M]: m contiguous
        mm = e % BM;
        kk = e / BM;
      } else {  // stored [M, K]: k contiguous
        kk = e % BK;
        mm = e / BK;
      }
      const int64_t r = m0 + mm, q = k0 + kk;
      T v = T(0);
      if (r < g.m && q < g.k) v = g.trans_a ? g.a[q * g.lda + r] : g.a[r * g.lda + q];
      As[kk * BM + mm] = v;
    }
    for (int e = tid; e < BK * BN; e += NT) {
      int nn, kk;
      if (g.trans_b) {  // stored [N, K]: k contiguous
        kk = e % BK;
        nn = e / BK;
      } else {  // stored [K, N]: n contiguous
        nn = e % BN;
        kk = e / BN;
      }
      const int64_t cidx = n0 + nn, q = k0 + kk;
      T v = T(0);
      if (cidx < g.n && q < g.k)
        v = T(widen(g.trans_b ? g.b[cidx * g.ldb + q] : g.b[q * g.ldb + cidx]));
      Bs[kk * BN + nn] = v;
    }
  }

  FASTRNN_HD static void compute(int tid, const T* As, const T* Bs, Acc& acc) {
    constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, TM = Cfg::TM, TN = Cfg::TN;
    const int tx = tid % Cfg::TX, ty = tid / Cfg::TX;
    FASTRNN_UNROLL
    for (int kk = 0; kk < BK; ++kk) {
      T av[TM], bv[TN];
      FASTRNN_UNROLL
      for (int i = 0; i < TM; ++i) av[i] = As[kk * BM + ty + i * Cfg::TY];
      FASTRNN_UNROLL
      for (int j = 0; j < TN; ++j) bv[j] = Bs[kk * BN + tx + j * Cfg::TX];
      FASTRNN_UNROLL
      for (int i = 0; i < TM; ++i) FASTRNN_UNROLL
      for (int j = 0; j < TN; ++j) acc.v[i][j] += av[i] * bv[j];
    }
  }

  FASTRNN_HD static void store(const GemmArgs<T, TB>& g, int64_t m0, int64_t n0, int tid,
                               const Acc& acc) {
    const int tx = tid % Cfg::TX, ty = tid / Cfg::TX;
    for (int i = 0; i < Cfg::TM; ++i) {
      const int64_t r = m0 + ty + i * Cfg::TY;
      if (r >= g.m) continue;
      for (int j = 0; j < Cfg::TN; ++j) {
        const int64_t cidx = n0 + tx + j * Cfg::TX;
        if (cidx >= g.n) continue;
        T v = acc.v[i][j];
        if (g.bias) v += g.bias[cidx];
        T* dst = g.c + r * g.ldc + cidx;
        *dst = g.accumulate ? *dst + v : v;
      }
    }
  }

  // Tiles of C: blocks are numbered with M fastest (M can be T*B rows).
  static int64_t blocks_m(const GemmArgs<T, TB>& g) { return (g.m + Cfg::BM - 1) / Cfg::BM; }
  static int64_t blocks(const GemmArgs<T, TB>& g) {
    return blocks_m(g) * ((g.n + Cfg::BN - 1) / Cfg::BN);
  }
};

}  // namespace gpu_kernels
}  // namespace fastrnn
