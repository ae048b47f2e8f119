// gemm.h: the register-tile matrix kernel and the blocked GEMM built on it. ISA-compiled only.
//
// The kernel computes an m x (np*NR) tile, m <= MR rows, from rows of A given as pointers
// (element k of row i at arow[i][k*cs]) and np column panels of B packed K x NR (panel p at
// b + p*pstride). Each output element is one chain of fused multiply-adds over k in order, so its
// value does not depend on m, np, the tile it falls in or the thread that computes it: that is
// what makes results bitwise independent of batch composition and thread count.
#pragma once

#include <omp.h>

#include "cpu/isa/vec.h"

template <typename T>
struct Tile {
  static constexpr int W = Vec<T>::W;
#if defined(FASTRNN_ISA_IS_scalar)
  static constexpr int NV = 4;  // vectors per panel row
  static constexpr int MR = 4;
#elif defined(FASTRNN_ISA_IS_avx2)
  static constexpr int NV = 2;
  static constexpr int MR = 6;  // 12 accumulators + 2 panel loads + 1 broadcast of 16 registers
#else
  static constexpr int NV = 2;
  static constexpr int MR = 12;  // 24 accumulators + 2 panel loads + 1 broadcast of 32 registers
#endif
  static constexpr int NR = NV * W;
  static constexpr int KC = 256;  // k block of the large GEMM: a kc x NR panel stays in L1
  static constexpr int MC = MR * 16;
  static constexpr int NC = 2048;
  static constexpr int NPC = 8;  // panels per tile in the large GEMM
};

// Uninitialized scratch aligned to 64 bytes, defined inside this ISA's namespace. No standard
// container may be instantiated in an ISA-compiled source: its members are weak symbols outside
// fastrnn::<isa>, and the linker may keep this ISA's copy for the baseline code (an AVX-512
// std::vector member once ran on every CPU). cmake/check_isa_objects.cmake enforces it.
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n) { grow(n); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { release(); }
  // at least n elements; the contents are not kept
  void grow(size_t n) {
    if (n <= n_) return;
    release();
    p_ = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64}));
    n_ = n;
  }
  T* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  void release() {
    if (p_) ::operator delete(p_, std::align_val_t{64});
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  size_t n_ = 0;
};

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// tile[i][p*NR + j] (+)= sum_k A[i][k] * B_p[k][j]. B's elements are T, or bfloat16 (uint16_t)
// widened to float on load: the products and sums are float32 either way.
template <typename T, int M, int NP, typename BT>
inline void ukernel(int64_t K, const T* const* arow, int64_t cs, const BT* b, int64_t pstride,
                    T* tile, int64_t ldt, bool accumulate) {
  using V = Vec<T>;
  constexpr int W = Tile<T>::W, NV = Tile<T>::NV, NR = Tile<T>::NR;
  V acc[M][NP][NV];
  for (int i = 0; i < M; ++i)
    for (int p = 0; p < NP; ++p)
      for (int v = 0; v < NV; ++v)
        acc[i][p][v] = accumulate ? V::loadu(tile + i * ldt + p * NR + v * W) : V::zero();
  const T* ap[M];
  for (int i = 0; i < M; ++i) ap[i] = arow[i];
  for (int64_t k = 0; k < K; ++k) {
    V bv[NP][NV];
    for (int p = 0; p < NP; ++p)
      for (int v = 0; v < NV; ++v) bv[p][v] = V::loadu(b + p * pstride + k * NR + v * W);
    for (int i = 0; i < M; ++i) {
      V av = V::set1(ap[i][k * cs]);
      for (int p = 0; p < NP; ++p)
        for (int v = 0; v < NV; ++v) acc[i][p][v] = V::fmadd(av, bv[p][v], acc[i][p][v]);
    }
  }
  for (int i = 0; i < M; ++i)
    for (int p = 0; p < NP; ++p)
      for (int v = 0; v < NV; ++v) acc[i][p][v].storeu(tile + i * ldt + p * NR + v * W);
}

// Panels per kernel call for m rows: fewer rows leave registers for more panels.
template <typename T, int M>
constexpr int panels_for_rows() {
#if defined(FASTRNN_ISA_IS_scalar)
  return 1;
#elif defined(FASTRNN_ISA_IS_avx2)
  return M == 1 ? 4 : (M == 2 ? 2 : 1);
#else
  return M <= 2 ? 4 : (M <= 4 ? 2 : 1);
#endif
}

template <typename T, int M, typename BT>
inline void rows_times_panels(int64_t K, const T* const* arow, int64_t cs, const BT* b,
                              int64_t pstride, int npanels, T* tile, int64_t ldt, bool accumulate) {
  constexpr int NP = panels_for_rows<T, M>();
  constexpr int NR = Tile<T>::NR;
  int p = 0;
  for (; p + NP <= npanels; p += NP)
    ukernel<T, M, NP, BT>(K, arow, cs, b + p * pstride, pstride, tile + p * NR, ldt, accumulate);
  // the rest as wide as it goes: one panel alone is a 2-chain dependency, latency-bound
  if constexpr (NP >= 4) {
    if (p + 3 <= npanels) {
      ukernel<T, M, 3, BT>(K, arow, cs, b + p * pstride, pstride, tile + p * NR, ldt, accumulate);
      p += 3;
    }
  }
  if constexpr (NP >= 2) {
    for (; p + 2 <= npanels; p += 2)
      ukernel<T, M, 2, BT>(K, arow, cs, b + p * pstride, pstride, tile + p * NR, ldt, accumulate);
  }
  for (; p < npanels; ++p)
    ukernel<T, M, 1, BT>(K, arow, cs, b + p * pstride, pstride, tile + p * NR, ldt, accumulate);
}

// tile [m, npanels*NR] (+)= A[m, K] * panels; m in [1, MR]. (The bfloat16 pair kernels below
// repeat this switch: one generic dispatcher taking a lambda measured 3-7% slower end to end.)
template <typename T, typename BT>
inline void matmul_tile(int m, int64_t K, const T* const* arow, int64_t cs, const BT* b,
                        int64_t pstride, int npanels, T* tile, int64_t ldt, bool accumulate) {
#define FASTRNN_ROWS(MM)                                                                     \
  case MM:                                                                                   \
    if constexpr (MM <= Tile<T>::MR)                                                         \
      rows_times_panels<T, MM, BT>(K, arow, cs, b, pstride, npanels, tile, ldt, accumulate); \
    break;
  switch (m) {
    FASTRNN_ROWS(1)
    FASTRNN_ROWS(2)
    FASTRNN_ROWS(3)
    FASTRNN_ROWS(4)
    FASTRNN_ROWS(5)
    FASTRNN_ROWS(6)
    FASTRNN_ROWS(7)
    FASTRNN_ROWS(8)
    FASTRNN_ROWS(9)
    FASTRNN_ROWS(10)
    FASTRNN_ROWS(11)
    FASTRNN_ROWS(12)
    default:
      break;
  }
#undef FASTRNN_ROWS
}

#if defined(FASTRNN_ISA_IS_avx512)
// Products over bfloat16 panels in the pair layout (reduced-precision inference on AVX-512):
// panel element (k, j) at (k/2 * NR + j) * 2 + k%2, K rounded up to even, so one 32-bit lane
// holds column j's pair (k, k+1). tile[i][p*NR + j] (+)= sum_k A[i][k] B_p[k][j], float32 sums.
// Two ways through the same panels, chosen by the type of A's rows:
//   AT = float      a 64-byte load gives columns' k and k+1 as two float vectors (a shift and a
//                   mask), each a fused multiply-add with a broadcast of A[i][k] or A[i][k+1]
//   AT = uint32_t   A's rows are in bfloat16 too, read as pairs: one vdpbf16ps adds both products
//                   (AVX512_BF16). Half the instructions per weight, but this CPU issues it at
//                   half the FMA rate: it pays where the panels' bytes, not arithmetic, bound the
//                   product, i.e. with one or two rows (measured).
#define FASTRNN_BF16_DOT __attribute__((target("avx512bf16")))

template <int M, int NP>
inline void load_tile(__m512 (&acc)[M][NP][2], const float* tile, int64_t ldt, bool accumulate) {
  for (int i = 0; i < M; ++i)
    for (int p = 0; p < NP; ++p)
      for (int v = 0; v < 2; ++v)
        acc[i][p][v] = accumulate ? _mm512_loadu_ps(tile + i * ldt + p * Tile<float>::NR + v * 16)
                                  : _mm512_setzero_ps();
}

template <int M, int NP>
inline void store_tile(__m512 (&acc)[M][NP][2], float* tile, int64_t ldt) {
  for (int i = 0; i < M; ++i)
    for (int p = 0; p < NP; ++p)
      for (int v = 0; v < 2; ++v)
        _mm512_storeu_ps(tile + i * ldt + p * Tile<float>::NR + v * 16, acc[i][p][v]);
}

// One k-pair row of NP panels in the pair layout, widened: the even k's and the odd k's weights.
template <int NP>
inline void load_pair_panels(const uint16_t* b, int64_t pstride, __m512 (&even_k)[NP][2],
                             __m512 (&odd_k)[NP][2]) {
  const __m512i high = _mm512_set1_epi32(int(0xffff0000u));
  for (int p = 0; p < NP; ++p)
    for (int v = 0; v < 2; ++v) {
      const __m512i w = _mm512_loadu_si512(b + p * pstride + v * 32);
      even_k[p][v] = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
      odd_k[p][v] = _mm512_castsi512_ps(_mm512_and_si512(w, high));
    }
}

template <int M, int NP>
inline void ukernel_bf16_pairs(int64_t K2, const float* const* arow, const uint16_t* b,
                               int64_t pstride, float* tile, int64_t ldt, bool accumulate) {
  constexpr int NR = Tile<float>::NR;  // two vectors of 16 column pairs
  __m512 acc[M][NP][2];
  load_tile<M, NP>(acc, tile, ldt, accumulate);
  for (int64_t k2 = 0; k2 < K2; ++k2) {
    __m512 even_k[NP][2], odd_k[NP][2];
    load_pair_panels<NP>(b + k2 * NR * 2, pstride, even_k, odd_k);
    for (int i = 0; i < M; ++i) {
      const __m512 a0 = _mm512_set1_ps(arow[i][2 * k2]), a1 = _mm512_set1_ps(arow[i][2 * k2 + 1]);
      for (int p = 0; p < NP; ++p)
        for (int v = 0; v < 2; ++v) {
          acc[i][p][v] = _mm512_fmadd_ps(a0, even_k[p][v], acc[i][p][v]);
          acc[i][p][v] = _mm512_fmadd_ps(a1, odd_k[p][v], acc[i][p][v]);
        }
    }
  }
  store_tile<M, NP>(acc, tile, ldt);
}

// Only this overload and row_to_bf16_pairs carry the AVX512_BF16 target; they are called (never
// inlined) from code that runs on any AVX-512 CPU, and only by the avx512_bf16 table.
template <int M, int NP>
FASTRNN_BF16_DOT void ukernel_bf16_pairs(int64_t K2, const uint32_t* const* arow, const uint16_t* b,
                                         int64_t pstride, float* tile, int64_t ldt,
                                         bool accumulate) {
  constexpr int NR = Tile<float>::NR;
  __m512 acc[M][NP][2];
  load_tile<M, NP>(acc, tile, ldt, accumulate);
  for (int64_t k2 = 0; k2 < K2; ++k2) {
    __m512bh bv[NP][2];
    for (int p = 0; p < NP; ++p)
      for (int v = 0; v < 2; ++v)
        bv[p][v] = (__m512bh)_mm512_loadu_si512(b + p * pstride + (k2 * NR + v * 16) * 2);
    for (int i = 0; i < M; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(arow[i][k2]));
      for (int p = 0; p < NP; ++p)
        for (int v = 0; v < 2; ++v) acc[i][p][v] = _mm512_dpbf16_ps(acc[i][p][v], av, bv[p][v]);
    }
  }
  store_tile<M, NP>(acc, tile, ldt);
}

// The same products as the vdpbf16ps overload above, with FMAs: rows given as bfloat16 pairs,
// each lane adding the odd pair's product, then the even one's (the instruction's order; the
// products of two bfloat16 values are exact in float32, so each fused add rounds as it does).
// Run under MXCSR's DAZ and FTZ (see Bf16DotMode) it gives bitwise vdpbf16ps's results, so a
// row's result does not depend on which of the two its batch size picked.
struct Bf16Pair {
  uint32_t bits;  // two bfloat16 values: element 2k in the low half, 2k + 1 in the high half
};

template <int M, int NP>
inline void ukernel_bf16_pairs(int64_t K2, const Bf16Pair* const* arow, const uint16_t* b,
                               int64_t pstride, float* tile, int64_t ldt, bool accumulate) {
  constexpr int NR = Tile<float>::NR;
  __m512 acc[M][NP][2];
  load_tile<M, NP>(acc, tile, ldt, accumulate);
  const __m512i high = _mm512_set1_epi32(int(0xffff0000u));
  for (int64_t k2 = 0; k2 < K2; ++k2) {
    __m512 even_k[NP][2], odd_k[NP][2];
    load_pair_panels<NP>(b + k2 * NR * 2, pstride, even_k, odd_k);
    for (int i = 0; i < M; ++i) {
      const __m512i pair = _mm512_set1_epi32(int(arow[i][k2].bits));
      const __m512 a0 = _mm512_castsi512_ps(_mm512_slli_epi32(pair, 16));
      const __m512 a1 = _mm512_castsi512_ps(_mm512_and_si512(pair, high));
      for (int p = 0; p < NP; ++p)
        for (int v = 0; v < 2; ++v) {
          acc[i][p][v] = _mm512_fmadd_ps(a1, odd_k[p][v], acc[i][p][v]);
          acc[i][p][v] = _mm512_fmadd_ps(a0, even_k[p][v], acc[i][p][v]);
        }
    }
  }
  store_tile<M, NP>(acc, tile, ldt);
}

// vdpbf16ps treats denormal inputs and results as zero whatever MXCSR says; FMAs do so under
// MXCSR's DAZ and FTZ bits, set for the scope of this object on the calling thread.
class Bf16DotMode {
 public:
  Bf16DotMode() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
  ~Bf16DotMode() { _mm_setcsr(saved_); }
  Bf16DotMode(const Bf16DotMode&) = delete;
  Bf16DotMode& operator=(const Bf16DotMode&) = delete;

 private:
  unsigned saved_;
};

// m rows (1 <= m <= MR) times npanels panels, as wide as the registers allow, then the rest as
// wide as it goes (one panel alone is a 2-chain dependency, latency-bound)
template <typename AT, int M>
void rows_times_panels_bf16_pairs(int64_t K2, const AT* const* arow, const uint16_t* b,
                                  int64_t pstride, int npanels, float* tile, int64_t ldt,
                                  bool accumulate) {
  constexpr int NP = panels_for_rows<float, M>(), NR = Tile<float>::NR;
  int p = 0;
  for (; p + NP <= npanels; p += NP)
    ukernel_bf16_pairs<M, NP>(K2, arow, b + p * pstride, pstride, tile + p * NR, ldt, accumulate);
  if constexpr (NP >= 4) {
    if (p + 3 <= npanels) {
      ukernel_bf16_pairs<M, 3>(K2, arow, b + p * pstride, pstride, tile + p * NR, ldt, accumulate);
      p += 3;
    }
  }
  if constexpr (NP >= 2) {
    for (; p + 2 <= npanels; p += 2)
      ukernel_bf16_pairs<M, 2>(K2, arow, b + p * pstride, pstride, tile + p * NR, ldt, accumulate);
  }
  for (; p < npanels; ++p)
    ukernel_bf16_pairs<M, 1>(K2, arow, b + p * pstride, pstride, tile + p * NR, ldt, accumulate);
}

template <typename AT>
inline void matmul_tile_bf16_pairs(int m, int64_t K2, const AT* const* arow, const uint16_t* b,
                                   int64_t pstride, int npanels, float* tile, int64_t ldt,
                                   bool accumulate) {
  switch (m) {
#define FASTRNN_ROWS(MM)                                                                        \
  case MM:                                                                                      \
    rows_times_panels_bf16_pairs<AT, MM>(K2, arow, b, pstride, npanels, tile, ldt, accumulate); \
    break;
    FASTRNN_ROWS(1)
    FASTRNN_ROWS(2)
    FASTRNN_ROWS(3)
    FASTRNN_ROWS(4)
    FASTRNN_ROWS(5)
    FASTRNN_ROWS(6)
    FASTRNN_ROWS(7)
    FASTRNN_ROWS(8)
    FASTRNN_ROWS(9)
    FASTRNN_ROWS(10)
    FASTRNN_ROWS(11)
    FASTRNN_ROWS(12)
#undef FASTRNN_ROWS
    default:
      break;
  }
}

// n floats -> bfloat16 (round to nearest even), zero-padded to an even count: a row of A for the
// kernels above.
FASTRNN_BF16_DOT void row_to_bf16_pairs(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    _mm512_storeu_si512(
        out + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i)));
  if (i < n) {
    const int64_t r = n - i;
    const __mmask16 lo = __mmask16(r >= 16 ? 0xffff : (1u << r) - 1);
    const __mmask16 hi = __mmask16(r <= 16 ? 0 : (1u << (r - 16)) - 1);
    const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + i + 16),
                                                   _mm512_maskz_loadu_ps(lo, x + i));
    const int64_t even = (r + 1) / 2 * 2;  // the zero partner of an odd count included
    _mm512_mask_storeu_epi16(out + i, __mmask32((uint64_t(1) << even) - 1), v);
  }
}
#endif

// element (r, c) of op(X), X row-major with leading dimension ld
template <typename T>
inline T op_at(const T* x, int64_t ld, bool trans, int64_t r, int64_t c) {
  return trans ? x[c * ld + r] : x[r * ld + c];
}

// Pre-packed right operand: op(B) [K, N] as the blocks the GEMM below walks, block (jc, pc) at
// offset jc*K + np(jc)*NR*pc, each [np][kc][NR] with zeros past N. Weights that several products
// use (W_ih in the chunked input projection) are packed once per layer in this layout.
template <typename T>
int64_t packed_b_size(int64_t K, int64_t N) {
  return ceil_div(N, Tile<T>::NR) * Tile<T>::NR * K;
}

template <typename T>
void pack_b_panels(const T* B, int64_t ldb, bool tb, int64_t pc, int64_t kc, int64_t jc, int64_t N,
                   int64_t p0, int64_t p1, T* out) {
  constexpr int NR = Tile<T>::NR;
  for (int64_t p = p0; p < p1; ++p) {
    T* dst = out + p * kc * NR;
    for (int64_t k = 0; k < kc; ++k)
      for (int j = 0; j < NR; ++j) {
        const int64_t col = jc + p * NR + j;
        dst[k * NR + j] = col < N ? op_at(B, ldb, tb, pc + k, col) : T(0);
      }
  }
}

template <typename T>
void pack_b(const T* B, int64_t ldb, bool tb, int64_t K, int64_t N, T* out) {
  using Tl = Tile<T>;
  for (int64_t jc = 0; jc < N; jc += Tl::NC) {
    const int64_t nc = imin(Tl::NC, N - jc), np = ceil_div(nc, Tl::NR);
    for (int64_t pc = 0; pc < K; pc += Tl::KC)
      pack_b_panels(B, ldb, tb, pc, imin(Tl::KC, K - pc), jc, N, 0, np,
                    out + jc * K + np * Tl::NR * pc);
  }
}

// C[M, N] = beta * C + op(A) op(B). Goto-style blocking: B is packed kc x nc into NR-wide panels
// shared by all threads (or taken pre-packed from `bpre`, see pack_b), each thread packs its own
// mc x kc block of A into MR-row panels. Threads split the (row block, panel chunk) pairs; the
// reduction over K never crosses threads.
template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc, int threads, const T* bpre = nullptr) {
  using Tl = Tile<T>;
  constexpr int MR = Tl::MR, NR = Tl::NR;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  const int64_t kc_max = imin(K, Tl::KC), nc_max = imin(N, Tl::NC);
  Buffer<T> bbuf_own(bpre ? 0 : size_t(ceil_div(nc_max, NR) * NR * kc_max));
  T* bbuf = bbuf_own.data();
  const int64_t mblocks = ceil_div(M, Tl::MC);
  int nt = int(imax(1, imin(threads, mblocks * ceil_div(nc_max, NR * Tl::NPC))));
  for (int64_t jc = 0; jc < N; jc += Tl::NC) {
    const int64_t nc = imin(Tl::NC, N - jc), np = ceil_div(nc, NR);
    const int64_t chunks = ceil_div(np, Tl::NPC), tasks = mblocks * chunks;
    for (int64_t pc = 0; pc < K; pc += Tl::KC) {
      const int64_t kc = imin(Tl::KC, K - pc);
      const bool first = pc == 0;
      const T* bpack = bpre ? bpre + jc * K + np * NR * pc : bbuf;
#pragma omp parallel num_threads(nt) if (nt > 1)
      {
        const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        if (!bpre) {  // pack B[pc:pc+kc, jc:jc+nc], a share of the panels per thread
          pack_b_panels(B, ldb, tb, pc, kc, jc, N, np * tid / nth, np * (tid + 1) / nth, bbuf);
#pragma omp barrier
        }
        Buffer<T> apack_own(size_t(Tl::MC * kc));
        T* apack = apack_own.data();
        alignas(64) T tile[MR * NR * Tl::NPC];
        const int64_t t0 = tasks * tid / nth, t1 = tasks * (tid + 1) / nth;
        int64_t packed_block = -1;
        for (int64_t task = t0; task < t1; ++task) {
          const int64_t ib = task / chunks, ch = task % chunks;
          const int64_t ic = ib * Tl::MC, mc = imin(Tl::MC, M - ic);
          if (packed_block != ib) {  // pack A[ic:ic+mc, pc:pc+kc] -> [mc/MR][kc][MR]
            for (int64_t r = 0; r < ceil_div(mc, MR); ++r)
              for (int64_t k = 0; k < kc; ++k)
                for (int i = 0; i < MR; ++i) {
                  const int64_t row = r * MR + i;
                  apack[(r * kc + k) * MR + i] =
                      row < mc ? op_at(A, lda, ta, ic + row, pc + k) : T(0);
                }
            packed_block = ib;
          }
          const int64_t p0 = ch * Tl::NPC, npan = imin(Tl::NPC, np - p0);
          for (int64_t r = 0; r < ceil_div(mc, MR); ++r) {
            const int m = int(imin(MR, mc - r * MR));
            const T* arow[MR];
            for (int i = 0; i < MR; ++i) arow[i] = apack + r * kc * MR + i;
            matmul_tile<T>(m, kc, arow, MR, bpack + p0 * kc * NR, kc * NR, int(npan), tile,
                           NR * Tl::NPC, false);
            const int64_t cols = imin(npan * NR, nc - p0 * NR);
            for (int i = 0; i < m; ++i) {
              T* crow = C + (ic + r * MR + i) * ldc + jc + p0 * NR;
              const T* trow = tile + i * NR * Tl::NPC;
              if (!first) {
                for (int64_t j = 0; j < cols; ++j) crow[j] += trow[j];
              } else if (beta == T(0)) {
                for (int64_t j = 0; j < cols; ++j) crow[j] = trow[j];
              } else {
                for (int64_t j = 0; j < cols; ++j) crow[j] = beta * crow[j] + trow[j];
              }
            }
          }
        }
      }
    }
  }
}
