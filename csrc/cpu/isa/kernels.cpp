// kernels.cpp: whole-sequence forward and backward through time for every cell, and the single
// streaming step. Compiled once per ISA (scalar, avx2, avx512) into namespace fastrnn::<isa>.
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
#include <stdint.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <x86intrin.h>
#if !defined(FASTRNN_ISA_IS_scalar)
#include <immintrin.h>
#endif

#include <new>
#include <type_traits>

#include "fastrnn.h"

namespace fastrnn {
namespace FASTRNN_ISA_NS {

#include "cpu/isa/gemm.h"

namespace {

// ------------------------------------------------------------------------------------------------
// Shapes and indexing shared by forward and backward.

template <typename T>
struct Seq {
  const SeqArgs<T>& a;
  int64_t Tn, B, I, H, G, GH, nb;
  int cw;  // cache width in units of H
  explicit Seq(const SeqArgs<T>& args) : a(args) {
    Tn = a.steps;
    B = a.batch;
    I = a.input;
    H = a.hidden;
    G = num_gates(a.cell);
    GH = G * H;
    nb = ceil_div(H, Tile<T>::NR);
    cw = cache_width(a.cell);
  }
  int64_t batch_of(int64_t sb) const { return a.order ? a.order[sb] : sb; }
  int64_t len_of(int64_t b) const { return a.len ? a.len[b] : Tn; }
  int64_t active(int64_t s) const { return a.active ? a.active[s] : B; }
  // time index of step s for batch row b
  int64_t time_of(int64_t s, int64_t b) const { return a.reverse ? len_of(b) - 1 - s : s; }
};

// Threads for a recurrence of `items` work items per stage: extra threads only pay off when a
// step has enough work to amortize a barrier (a few hundred nanoseconds within a sequence's
// parallel region) or, for a streaming step (`with_input`), the region itself (about a
// microsecond), i.e. once its weights no longer sit comfortably in one core's L2 (about 0.6 MB).
// Thresholds in flops per step, measured at B=1..2, H=64..384.
template <typename T>
int recurrence_threads(const Seq<T>& q, int requested, int64_t items, bool with_input = false) {
  const double k = double(q.H) + (with_input ? double(q.I) : 0.0);
  const double flops = 2.0 * double(q.GH) * k * double(q.B);
  int nt = requested;
  if (flops < (with_input ? 3.0e5 : 5.0e4)) nt = 1;
  if (nt > items) nt = int(items);
  return nt < 1 ? 1 : nt;
}

// Stage-by-stage scheduling of the recurrence. A stage is one pass over the nb hidden-unit blocks
// (one step, or one half of a reset-before GRU step) and starts when the previous stage is complete.
// Each thread takes the blocks of its own range first (their weight panels stay in its L2 from
// step to step), then takes what is left in the other ranges, so a thread that the OS deschedules
// holds up a step by at most the one block it was working on. Waiting spins briefly, then yields,
// then sleeps: a barrier that only spins collapses when another process takes a core.
struct alignas(64) Counter {
  int64_t v;
};

// Spin for up to ~100k TSC ticks (tens of microseconds: about one block's work, the usual
// imbalance between threads within a step when both have a core), then yield for ~2M ticks, then
// sleep 20 us at a time. A pause is 10 to 140 cycles depending on the CPU, so the budget is
// counted in time, not in pauses.
inline void wait_until(const int64_t* p, int64_t target) {
  if (__atomic_load_n(p, __ATOMIC_ACQUIRE) >= target) return;
  const uint64_t start = __rdtsc();
  while (__atomic_load_n(p, __ATOMIC_ACQUIRE) < target) {
    const uint64_t waited = __rdtsc() - start;
    if (waited < 100000) {
      __builtin_ia32_pause();
    } else if (waited < 2000000) {
      sched_yield();
    } else {
      struct timespec ts = {0, 20000};
      nanosleep(&ts, nullptr);
    }
  }
}

class Stages {
 public:
  Stages(int64_t nb, int threads) : nb_(nb), nt_(threads), claim_(new Counter[threads]) {
    for (int r = 0; r < nt_; ++r) claim_[r].v = 0;
    done_.v = 0;
  }
  ~Stages() { delete[] claim_; }

  // f(stage, block) for every block of every stage on `threads` threads; one thread runs them in
  // order without a team (a streaming step is a few microseconds: no region, no allocation).
  template <typename F>
  static void parallel(int64_t nb, int threads, int64_t stages, F&& f) {
    if (threads <= 1) {
      for (int64_t st = 0; st < stages; ++st)
        for (int64_t jb = 0; jb < nb; ++jb) f(st, jb);
      return;
    }
    Stages work(nb, threads);
#pragma omp parallel num_threads(threads)
    work.run(omp_get_thread_num(), stages, f);
  }

 private:
  // f(stage, block) for every block of every stage, as thread tid of nt_
  template <typename F>
  void run(int tid, int64_t stages, F&& f) {
    for (int64_t st = 0; st < stages; ++st) {
      wait_until(&done_.v, st * nb_);
      for (int k = 0; k < nt_; ++k) {
        const int r = (tid + k) % nt_;
        const int64_t b0 = nb_ * r / nt_, size = nb_ * (r + 1) / nt_ - b0;
        if (size == 0) continue;
        for (;;) {
          int64_t c = __atomic_load_n(&claim_[r].v, __ATOMIC_RELAXED);
          if (c >= (st + 1) * size) break;
          if (!__atomic_compare_exchange_n(&claim_[r].v, &c, c + 1, false, __ATOMIC_ACQ_REL,
                                           __ATOMIC_RELAXED))
            continue;
          f(st, b0 + c - st * size);
          __atomic_fetch_add(&done_.v, 1, __ATOMIC_RELEASE);
        }
      }
    }
  }

  int64_t nb_;
  int nt_;
  Counter* claim_;
  Counter done_;
};

// Iterates the vector chunks of one nr-block: f(offset of the chunk's first unit, lanes valid).
template <typename T, typename F>
inline void for_chunks(int64_t j0, int64_t H, F&& f) {
  constexpr int W = Tile<T>::W;
  for (int v = 0; v < Tile<T>::NV; ++v) {
    const int64_t j = j0 + v * W;
    if (j >= H) break;
    f(j, v * W, int(imin(W, H - j)));
  }
}

// Row stride of buffers whose rows feed a product as A: padded by a cache line or two so that the
// MR rows a kernel reads at once do not all fall into the same L1 sets (a row of 1024 floats is
// exactly 4 KiB, and 12 such rows would fill every way of their sets).
inline int64_t padded_ld(int64_t n) { return (n + 15) / 16 * 16 + 16; }

template <typename T>
inline Vec<T> ld(const T* p, int n) {
  return n == Vec<T>::W ? Vec<T>::loadu(p) : Vec<T>::load_n(p, n);
}
template <typename T>
inline void st(T* p, Vec<T> v, int n) {
  if (n == Vec<T>::W)
    v.storeu(p);
  else
    v.store_n(p, n);
}

// ------------------------------------------------------------------------------------------------
// Forward pointwise: one row, one nr-block. `xp` is the row's input projection (+ biases) in
// PyTorch gate order; `tile` the recurrent product for this block, gates side by side (g*NR + j).

template <typename T>
struct FwdRow {
  const T* xp;      // [G*H]
  const T* tile;    // [G'*NR]
  const T* h_prev;  // [H]
  T* h;             // [H] state after the step (sorted row)
  T* c;             // [H] LSTM cell state, updated in place
  T* y;             // [H] output row at time t
  T* cache;         // [cw*H] or null
  T* h_n;           // [H] when this is the row's last step, else null
  T* c_n;
};

template <typename T>
inline void rnn_fwd_block(const Seq<T>& q, const FwdRow<T>& r, int64_t j0) {
  using V = Vec<T>;
  const bool relu = q.a.cell == Cell::kRnnRelu;
  for_chunks<T>(j0, q.H, [&](int64_t j, int jt, int n) {
    V pre = ld(r.xp + j, n) + ld(r.tile + jt, n);
    V h = relu ? vrelu(pre) : vtanh(pre);
    st(r.h + j, h, n);
    st(r.y + j, h, n);
    if (r.cache) {
      st(r.cache + j, ld(r.h_prev + j, n), n);
      st(r.cache + q.H + j, h, n);
    }
    if (r.h_n) st(r.h_n + j, h, n);
  });
}

template <typename T>
inline void lstm_fwd_block(const Seq<T>& q, const FwdRow<T>& r, int64_t j0) {
  using V = Vec<T>;
  constexpr int NR = Tile<T>::NR;
  const int64_t H = q.H;
  const T* p = q.a.peep;
  for_chunks<T>(j0, H, [&](int64_t j, int jt, int n) {
    V c_prev = ld(r.c + j, n);
    V pi = ld(r.xp + j, n) + ld(r.tile + jt, n);
    V pf = ld(r.xp + H + j, n) + ld(r.tile + NR + jt, n);
    V pg = ld(r.xp + 2 * H + j, n) + ld(r.tile + 2 * NR + jt, n);
    V po = ld(r.xp + 3 * H + j, n) + ld(r.tile + 3 * NR + jt, n);
    if (p) {
      pi = V::fmadd(ld(p + j, n), c_prev, pi);
      pf = V::fmadd(ld(p + H + j, n), c_prev, pf);
    }
    V i = vsigmoid(pi), f = vsigmoid(pf), g = vtanh(pg);
    V c = V::fmadd(f, c_prev, i * g);
    if (p) po = V::fmadd(ld(p + 2 * H + j, n), c, po);
    V o = vsigmoid(po);
    V h = o * vtanh(c);
    st(r.c + j, c, n);
    st(r.h + j, h, n);
    st(r.y + j, h, n);
    if (r.cache) {
      T* k = r.cache;
      st(k + j, ld(r.h_prev + j, n), n);
      st(k + H + j, i, n);
      st(k + 2 * H + j, f, n);
      st(k + 3 * H + j, g, n);
      st(k + 4 * H + j, o, n);
      st(k + 5 * H + j, c, n);
      st(k + 6 * H + j, c_prev, n);
    }
    if (r.h_n) st(r.h_n + j, h, n);
    if (r.c_n) st(r.c_n + j, c, n);
  });
}

// PyTorch's GRU: n = tanh(xn + r * (W_hn h + b_hn)), h' = (1 - z) n + z h
template <typename T>
inline void gru_fwd_block(const Seq<T>& q, const FwdRow<T>& r, int64_t j0) {
  using V = Vec<T>;
  constexpr int NR = Tile<T>::NR;
  const int64_t H = q.H;
  const T* b_hn = q.a.b_hh ? q.a.b_hh + 2 * H : nullptr;
  for_chunks<T>(j0, H, [&](int64_t j, int jt, int n) {
    V hp = ld(r.h_prev + j, n);
    V rg = vsigmoid(ld(r.xp + j, n) + ld(r.tile + jt, n));
    V z = vsigmoid(ld(r.xp + H + j, n) + ld(r.tile + NR + jt, n));
    V hn = ld(r.tile + 2 * NR + jt, n);
    if (b_hn) hn = hn + ld(b_hn + j, n);
    V nn = vtanh(V::fmadd(rg, hn, ld(r.xp + 2 * H + j, n)));
    V h = V::fmadd(z, hp - nn, nn);
    st(r.h + j, h, n);
    st(r.y + j, h, n);
    if (r.cache) {
      T* k = r.cache;
      st(k + j, hp, n);
      st(k + H + j, rg, n);
      st(k + 2 * H + j, z, n);
      st(k + 3 * H + j, nn, n);
      st(k + 4 * H + j, hn, n);
    }
    if (r.h_n) st(r.h_n + j, h, n);
  });
}

// Reset-before GRU, first half: r, z from h; rh = r * h is the input of W_hn.
// `rz` keeps z for the second half (sorted row, [H]).
template <typename T>
inline void gru_rb_fwd_gates(const Seq<T>& q, const FwdRow<T>& r, T* rh, T* zrow, int64_t j0) {
  using V = Vec<T>;
  constexpr int NR = Tile<T>::NR;
  const int64_t H = q.H;
  for_chunks<T>(j0, H, [&](int64_t j, int jt, int n) {
    V hp = ld(r.h_prev + j, n);
    V rg = vsigmoid(ld(r.xp + j, n) + ld(r.tile + jt, n));
    V z = vsigmoid(ld(r.xp + H + j, n) + ld(r.tile + NR + jt, n));
    V rhv = rg * hp;
    st(rh + j, rhv, n);
    st(zrow + j, z, n);
    if (r.cache) {
      T* k = r.cache;
      st(k + j, hp, n);
      st(k + H + j, rg, n);
      st(k + 2 * H + j, z, n);
      st(k + 4 * H + j, rhv, n);
    }
  });
}

// Reset-before GRU, second half: n = tanh(xn + W_hn rh) (b_hn is folded into xn), h' = n + z (h - n)
template <typename T>
inline void gru_rb_fwd_state(const Seq<T>& q, const FwdRow<T>& r, const T* zrow, int64_t j0) {
  using V = Vec<T>;
  const int64_t H = q.H;
  for_chunks<T>(j0, H, [&](int64_t j, int jt, int n) {
    V hp = ld(r.h_prev + j, n);
    V z = ld(zrow + j, n);
    V nn = vtanh(ld(r.xp + 2 * H + j, n) + ld(r.tile + jt, n));
    V h = V::fmadd(z, hp - nn, nn);
    st(r.h + j, h, n);
    st(r.y + j, h, n);
    if (r.cache) st(r.cache + 3 * H + j, nn, n);
    if (r.h_n) st(r.h_n + j, h, n);
  });
}

// ------------------------------------------------------------------------------------------------
// out[r][0 : npan*NR] = A[r][0:K] times npan panels (K x NR each, pstride apart), rows r < n
// given by a_row(r). With more than one register tile of rows, k runs in chunks that keep a chunk
// of the panels in L1 while every row tile uses it; the tile carries the partial sums, so each
// element is still one chain of fused multiply-adds in k order, bitwise as without blocking.
template <typename T, typename BT, typename RowPtr>
void block_product(int64_t n, int64_t K, RowPtr&& a_row, const BT* panels, int64_t pstride,
                   int npan, T* out, int64_t ldo) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  constexpr int64_t kL1Bytes = 32 * 1024;
  const int64_t kc =
      n > MR ? imax(16, kL1Bytes / (npan * NR * int64_t(sizeof(BT))) / 8 * 8) : imax(K, 1);
  const T* arow[MR];
  for (int64_t k0 = 0; k0 < K; k0 += kc) {
    const int64_t kk = imin(kc, K - k0);
    for (int64_t r0 = 0; r0 < n; r0 += MR) {
      const int m = int(imin(MR, n - r0));
      for (int i = 0; i < m; ++i) arow[i] = a_row(r0 + i) + k0;
      matmul_tile<T>(m, kk, arow, 1, panels + k0 * NR, pstride, npan, out + r0 * ldo, ldo,
                     k0 > 0);
    }
  }
}

#if defined(FASTRNN_ISA_IS_avx512)
// block_product over bfloat16 panels in the pair layout (see ukernel_bf16_pairs). With `dot` the
// n rows of A are rounded to bfloat16 once per call and multiplied with vdpbf16ps at one or two
// rows (where it is faster on the CPUs measured) and with FMAs giving the same bits at more rows
// (see Bf16Pair); otherwise they stay float32 (copied with a zero partner only when K is odd). pstride: the panels' stride in
// the pair layout (K rounded up to even, times NR).
template <typename RowPtr>
void block_product_bf16_pairs(int64_t n, int64_t K, RowPtr&& a_row,
                                               const uint16_t* panels, int64_t pstride, int npan,
                                               float* out, int64_t ldo, bool dot) {
  constexpr int MR = Tile<float>::MR, NR = Tile<float>::NR;
  const int64_t K2 = (K + 1) / 2;
  thread_local Buffer<float> rows;  // [n][2 * K2]: bfloat16 pairs (dot) or padded floats
  const bool copy = dot || K % 2;
  if (copy) {
    rows.grow(size_t(n * 2 * K2));
    for (int64_t r = 0; r < n; ++r) {
      float* dst = rows.data() + r * 2 * K2;
      if (dot) {
        row_to_bf16_pairs(a_row(r), K, reinterpret_cast<uint16_t*>(dst));
      } else {
        memcpy(dst, a_row(r), sizeof(float) * K);
        dst[K] = 0.0f;
      }
    }
  }
  auto row = [&](int64_t r) { return copy ? rows.data() + r * 2 * K2 : a_row(r); };
  constexpr int64_t kL1Bytes = 32 * 1024;
  const int64_t kc2 = n > MR ? imax(8, kL1Bytes / (npan * NR * 4) / 8 * 8) : K2;
  for (int64_t k0 = 0; k0 < K2; k0 += kc2) {
    const int64_t kk = imin(kc2, K2 - k0);
    for (int64_t r0 = 0; r0 < n; r0 += MR) {
      const int m = int(imin(MR, n - r0));
            const uint16_t* b = panels + k0 * 2 * NR;
      float* tile = out + r0 * ldo;
      if (dot && n <= 2) {
        const uint32_t* arow[MR];
        for (int i = 0; i < m; ++i)
          arow[i] = reinterpret_cast<const uint32_t*>(row(r0 + i)) + k0;
        matmul_tile_bf16_pairs(m, kk, arow, b, pstride, npan, tile, ldo, k0 > 0);
      } else if (dot) {
        Bf16DotMode same_as_vdpbf16ps;
        const Bf16Pair* arow[MR];
        for (int i = 0; i < m; ++i) arow[i] = reinterpret_cast<const Bf16Pair*>(row(r0 + i)) + k0;
        matmul_tile_bf16_pairs(m, kk, arow, b, pstride, npan, tile, ldo, k0 > 0);
      } else {
        const float* arow[MR];
        for (int i = 0; i < m; ++i) arow[i] = row(r0 + i) + 2 * k0;
        matmul_tile_bf16_pairs(m, kk, arow, b, pstride, npan, tile, ldo, k0 > 0);
      }
    }
  }
}
#endif

// The same over forward panels in T, or their bfloat16 copy where the layer opted in (float32):
// widened on load, or on AVX-512 in the pair layout. offset and pstride count elements of the T
// layout (K * NR per panel).
template <typename T, typename RowPtr>
void block_product_panels(int64_t n, int64_t K, RowPtr&& a_row, const T* full,
                          const Packed<T>& packed, const uint16_t* half, int64_t offset,
                          int64_t pstride, int npan, T* out, int64_t ldo) {
  if constexpr (sizeof(T) == 4) {
#if defined(FASTRNN_ISA_IS_avx512)
    if (half) {
      const int64_t pair_stride = (K + 1) / 2 * 2 * Tile<T>::NR;
      block_product_bf16_pairs(n, K, a_row, half + offset / pstride * pair_stride, pair_stride,
                               npan, out, ldo, packed.bf16_dot);
      return;
    }
#else
    if (half) {
      block_product<T>(n, K, a_row, half + offset, pstride, npan, out, ldo);
      return;
    }
#endif
  }
  block_product<T>(n, K, a_row, full + offset, pstride, npan, out, ldo);
}

// Forward driver. The input projection runs in chunks of steps: one GEMM per chunk over exactly
// the rows still running in those steps, gathered in step order. Padded steps are never projected,
// and the projection buffer holds at most about kChunkRows rows whatever T is.

constexpr int64_t kChunkRows = 512;

template <typename T>
int64_t chunk_steps(const Seq<T>& q) {
  return imax(1, imin(q.Tn, kChunkRows / q.B));
}

// Scratch: xp [R, G*H] and the gathered inputs [R, I] (R = rows of the largest chunk), then the
// state: two h buffers and rh (padded rows: they are product operands), c and z.
template <typename T>
size_t forward_work(const SeqArgs<T>& a) {
  Seq<T> q(a);
  const int64_t R = chunk_steps(q) * q.B;
  return size_t(R * (q.GH + q.I) + q.B * (3 * padded_ld(q.H) + 2 * q.H));
}

template <typename T>
struct FwdState {
  T* hbuf[2];  // [B, ldh] h_{s-1} and h_s, alternating
  T* rh;       // [B, ldh] r * h_{s-1} (reset-before GRU)
  T* c;        // [B, H] LSTM cell state
  T* zb;       // [B, H] z between the two halves of a reset-before GRU step
  int64_t ldh;
};

// Lays the state out in `work` and loads h0, c0 in sorted row order.
template <typename T>
FwdState<T> init_state(const Seq<T>& q, T* work) {
  const SeqArgs<T>& a = q.a;
  const int64_t B = q.B, H = q.H, ldh = padded_ld(H);
  FwdState<T> st{{work, work + B * ldh}, work + 2 * B * ldh, work + 3 * B * ldh,
                 work + 3 * B * ldh + B * H, ldh};
  for (int64_t sb = 0; sb < B; ++sb) {
    const int64_t b = q.batch_of(sb);
    if (a.h0)
      memcpy(st.hbuf[0] + sb * ldh, a.h0 + b * H, sizeof(T) * H);
    else
      memset(st.hbuf[0] + sb * ldh, 0, sizeof(T) * H);
    if (a.c0)
      memcpy(st.c + sb * H, a.c0 + b * H, sizeof(T) * H);
    else
      memset(st.c + sb * H, 0, sizeof(T) * H);
  }
  return st;
}

// b_ih + b_hh, except b_hn for PyTorch's GRU: it sits inside r * (W_hn h + b_hn)
template <typename T>
inline T input_bias(const SeqArgs<T>& a, int64_t col, int64_t H) {
  T v = a.b_ih ? a.b_ih[col] : T(0);
  if (a.b_hh && !(a.cell == Cell::kGru && col >= 2 * H)) v += a.b_hh[col];
  return v;
}

// xp[rowstart[s - s0] + sb] = x[t(s, sb)] W_ih^T + biases for the running rows of steps [s0, s1)
template <typename T>
void project_chunk(const Seq<T>& q, int64_t s0, int64_t s1, const int64_t* rowstart, T* xg,
                   T* xp) {
  const SeqArgs<T>& a = q.a;
  const int64_t rows = rowstart[s1 - s0], I = q.I, GH = q.GH;
  const T* src = a.x + s0 * q.B * I;  // steps are time rows when nothing is sorted or reversed
  if (a.len || a.reverse) {
    for (int64_t s = s0; s < s1; ++s)
      for (int64_t sb = 0; sb < q.active(s); ++sb) {
        const int64_t b = q.batch_of(sb), t = q.time_of(s, b);
        memcpy(xg + (rowstart[s - s0] + sb) * I, a.x + (t * q.B + b) * I, sizeof(T) * I);
      }
    src = xg;
  }
  const bool bias = a.b_ih || a.b_hh;
  if (bias) {
    for (int64_t c = 0; c < GH; ++c) xp[c] = input_bias(a, c, q.H);
    for (int64_t r = 1; r < rows; ++r) memcpy(xp + r * GH, xp, sizeof(T) * GH);
  }
  gemm<T>(false, true, rows, GH, I, src, I, a.w_ih, I, bias ? T(1) : T(0), xp, GH, a.threads,
          a.packed.gemm_ih);
}

// xp[b, g*H + j] = x[b] W_ih[g*H + j]^T + biases for the units of block jb (all rows, T = 1).
template <typename T>
void project_block(const Seq<T>& q, T* xp, int64_t jb) {
  using Tl = Tile<T>;
  constexpr int MR = Tl::MR, NR = Tl::NR;
  const SeqArgs<T>& a = q.a;
  const int64_t B = q.B, H = q.H, G = q.G, pstride = q.I * NR;
  alignas(64) T tile[MR * 4 * NR];
  for (int64_t r0 = 0; r0 < B; r0 += MR) {
    const int64_t m = imin(MR, B - r0);
    block_product_panels(
        m, q.I, [&](int64_t r) { return a.x + (r0 + r) * q.I; }, a.packed.fwd_ih,
        a.packed, a.packed.bf16_ih, jb * G * pstride, pstride, int(G), tile, 4 * NR);
    for (int64_t i = 0; i < m; ++i)
      for (int g = 0; g < G; ++g)
        for (int j = 0; j < NR && jb * NR + j < H; ++j) {
          const int64_t col = g * H + jb * NR + j;
          xp[(r0 + i) * q.GH + col] = tile[i * 4 * NR + g * NR + j] + input_bias(a, col, H);
        }
  }
}

// Steps [s0, s1) of the recurrence; the input projection of (s, sb) is xp row rowstart[s-s0]+sb.
template <typename T>
// With `project_here` (the streaming step, T = 1), xp is filled block by block in the same stage
// from x through the gate-interleaved packed W_ih, so both products of a block run on one thread.
void recurrence_forward(const Seq<T>& q, const FwdState<T>& st, int64_t s0, int64_t s1,
                        T* xp, const int64_t* rowstart, bool project_here = false) {
  using Tl = Tile<T>;
  constexpr int MR = Tl::MR, NR = Tl::NR;
  const SeqArgs<T>& a = q.a;
  const int64_t B = q.B, H = q.H, ldh = st.ldh;
  const Cell cell = a.cell;
  const bool rb = cell == Cell::kGruResetBefore;
  const int gp = rb ? 2 : int(q.G);  // gate panels in the first product
  const int64_t pstride = H * NR;
  // With one or two rows a lone panel is a 2-chain dependency (latency-bound): a work item then
  // takes `per` consecutive blocks so that one product spans about four panels.
  const int per = B <= 2 ? int(imax(1, 4 / gp)) : 1;
  const int nt = recurrence_threads(q, a.threads, ceil_div(q.nb, per), project_here);

  const int phases = rb ? 2 : 1;
  // per thread: the products of one block for all rows, [B rounded up to MR][4 * NR]
  const int64_t tile_rows = ceil_div(B, MR) * MR;
  Buffer<T> tile_buf(size_t(nt * tile_rows * 4 * NR));
  T* tiles = tile_buf.data();
  Stages::parallel(ceil_div(q.nb, per), nt, (s1 - s0) * phases, [&](int64_t stage, int64_t item) {
    T* tile = tiles + omp_get_thread_num() * tile_rows * 4 * NR;
    const int64_t jb0 = item * per, count = imin(per, q.nb - jb0);
    {
      const int64_t s = s0 + stage / phases;
      const int phase = int(stage % phases);
      const T* hp = st.hbuf[s & 1];
      T* hn = st.hbuf[(s + 1) & 1];
      const int64_t n = q.active(s);
      if (project_here && phase == 0)
        for (int64_t jb = jb0; jb < jb0 + count; ++jb) project_block(q, xp, jb);
      const T* a_src = phase == 0 ? hp : st.rh;
      const T* panels = phase == 0 ? a.packed.fwd_hh : a.packed.fwd_hn;
      const int npan = phase == 0 ? gp : 1;
      const uint16_t* half = phase == 0 ? a.packed.bf16_hh : a.packed.bf16_hn;
      block_product_panels(
          n, H, [&](int64_t r) { return a_src + r * ldh; }, panels, a.packed, half,
          jb0 * npan * pstride, pstride, int(npan * count), tile, 4 * NR);
      for (int64_t jb = jb0; jb < jb0 + count; ++jb) {
        for (int64_t sb = 0; sb < n; ++sb) {
          const int64_t b = q.batch_of(sb), t = q.time_of(s, b);
          const bool last = s == q.len_of(b) - 1;
          FwdRow<T> row{xp + (rowstart[s - s0] + sb) * q.GH,
                        tile + sb * 4 * NR + (jb - jb0) * npan * NR,
                        hp + sb * ldh,
                        hn + sb * ldh,
                        st.c + sb * H,
                        a.y + (t * B + b) * H,
                        a.cache ? a.cache + (t * B + b) * q.cw * H : nullptr,
                        last && a.h_n ? a.h_n + b * H : nullptr,
                        last && a.c_n ? a.c_n + b * H : nullptr};
          const int64_t j0 = jb * NR;
          switch (cell) {
            case Cell::kRnnTanh:
            case Cell::kRnnRelu:
              rnn_fwd_block(q, row, j0);
              break;
            case Cell::kLstm:
              lstm_fwd_block(q, row, j0);
              break;
            case Cell::kGru:
              gru_fwd_block(q, row, j0);
              break;
            case Cell::kGruResetBefore:
              if (phase == 0)
                gru_rb_fwd_gates(q, row, st.rh + sb * ldh, st.zb + sb * H, j0);
              else
                gru_rb_fwd_state(q, row, st.zb + sb * H, j0);
              break;
          }
        }
      }
    }
  });
}

template <typename T>
void forward(const SeqArgs<T>& a) {
  Seq<T> q(a);
  if (a.cache)  // padded steps' cache rows feed the weight-gradient products: they must be zero
    for (int64_t t = 0; t < q.Tn; ++t)
      for (int64_t b = 0; b < q.B; ++b)
        if (t >= q.len_of(b)) memset(a.cache + (t * q.B + b) * q.cw * q.H, 0, sizeof(T) * q.cw * q.H);
  const int64_t S = chunk_steps(q), R = S * q.B;
  T* xp = a.work;
  T* xg = xp + R * q.GH;
  FwdState<T> st = init_state(q, xg + R * q.I);
  int64_t* rowstart = new int64_t[S + 1];
  for (int64_t s0 = 0; s0 < q.Tn; s0 += S) {
    const int64_t s1 = imin(q.Tn, s0 + S);
    rowstart[0] = 0;
    for (int64_t s = s0; s < s1; ++s) rowstart[s - s0 + 1] = rowstart[s - s0] + q.active(s);
    project_chunk(q, s0, s1, rowstart, xg, xp);
    recurrence_forward(q, st, s0, s1, xp, rowstart);
  }
  delete[] rowstart;
}

// One step for streaming: the input projection happens inside the recurrence's stage (see
// recurrence_forward), so a two-thread step splits both products by hidden-unit blocks.
template <typename T>
void step(const SeqArgs<T>& a) {
  Seq<T> q(a);
  const int64_t R = chunk_steps(q) * q.B;
  FwdState<T> st = init_state(q, a.work + R * (q.GH + q.I));
  const int64_t rowstart[2] = {0, q.B};
  recurrence_forward(q, st, 0, 1, a.work, rowstart, true);
}

// ------------------------------------------------------------------------------------------------
// Backward pointwise: one row of step s, one nr-block. dh is the gradient reaching h_s from
// later steps and from h_n (sorted row); dy the output gradient at (t, b) or null. Writes the
// pre-activation gate gradients dgi (input side, [G*H] at (t, b)) and dgh (hidden side).

template <typename T>
struct BwdRow {
  const T* cache;  // [cw*H] at (t, b)
  const T* dy;     // [H] or null
  T* dh;           // [H] sorted row: in, gradient w.r.t. h_s
  T* dc;           // [H] sorted row: in dc_s, out dc_{s-1} (LSTM)
  T* carry;        // [H] sorted row: out, the part of dh_{s-1} that bypasses W_hh
  T* dgi;          // [G*H] at (t, b)
  T* dgh;          // [G*H] at (t, b), may alias dgi
};

template <typename T>
inline Vec<T> dh_total(const BwdRow<T>& r, int64_t j, int n) {
  Vec<T> d = ld(r.dh + j, n);
  return r.dy ? d + ld(r.dy + j, n) : d;
}

template <typename T>
inline void rnn_bwd_block(const Seq<T>& q, const BwdRow<T>& r, int64_t j0) {
  using V = Vec<T>;
  const bool relu = q.a.cell == Cell::kRnnRelu;
  const V one = V::set1(T(1));
  for_chunks<T>(j0, q.H, [&](int64_t j, int, int n) {
    V d = dh_total(r, j, n);
    V h = ld(r.cache + q.H + j, n);
    // h = tanh(pre): dpre = d (1 - h^2); h = relu(pre): dpre = d [h > 0]
    V dpre = relu ? V::where_pos(h, d) : d * (one - h * h);
    st(r.dgi + j, dpre, n);
  });
}

template <typename T>
inline void lstm_bwd_block(const Seq<T>& q, const BwdRow<T>& r, T* dpeep, int64_t j0) {
  using V = Vec<T>;
  const int64_t H = q.H;
  const T* p = q.a.peep;
  const T* k = r.cache;
  const V one = V::set1(T(1));
  for_chunks<T>(j0, H, [&](int64_t j, int, int n) {
    V d = dh_total(r, j, n);
    V i = ld(k + H + j, n), f = ld(k + 2 * H + j, n), g = ld(k + 3 * H + j, n);
    V o = ld(k + 4 * H + j, n), c = ld(k + 5 * H + j, n), c_prev = ld(k + 6 * H + j, n);
    V tc = vtanh(c);
    // h = o tanh(c)
    V d_o = d * tc * o * (one - o);
    V dc = ld(r.dc + j, n) + d * o * (one - tc * tc);
    if (p) dc = V::fmadd(d_o, ld(p + 2 * H + j, n), dc);  // o sees c through p_o
    // c = f c_prev + i g
    V d_i = dc * g * i * (one - i);
    V d_f = dc * c_prev * f * (one - f);
    V d_g = dc * i * (one - g * g);
    V dc_prev = dc * f;
    if (p) {
      dc_prev = V::fmadd(d_i, ld(p + j, n), dc_prev);
      dc_prev = V::fmadd(d_f, ld(p + H + j, n), dc_prev);
      st(dpeep + j, V::fmadd(d_i, c_prev, ld(dpeep + j, n)), n);
      st(dpeep + H + j, V::fmadd(d_f, c_prev, ld(dpeep + H + j, n)), n);
      st(dpeep + 2 * H + j, V::fmadd(d_o, c, ld(dpeep + 2 * H + j, n)), n);
    }
    st(r.dc + j, dc_prev, n);
    st(r.dgi + j, d_i, n);
    st(r.dgi + H + j, d_f, n);
    st(r.dgi + 2 * H + j, d_g, n);
    st(r.dgi + 3 * H + j, d_o, n);
  });
}

template <typename T>
inline void gru_bwd_block(const Seq<T>& q, const BwdRow<T>& r, int64_t j0) {
  using V = Vec<T>;
  const int64_t H = q.H;
  const T* k = r.cache;
  const V one = V::set1(T(1));
  for_chunks<T>(j0, H, [&](int64_t j, int, int n) {
    V d = dh_total(r, j, n);
    V hp = ld(k + j, n), rg = ld(k + H + j, n), z = ld(k + 2 * H + j, n);
    V nn = ld(k + 3 * H + j, n), hn = ld(k + 4 * H + j, n);
    // h = (1 - z) n + z h_prev
    V dn = d * (one - nn * nn) * (one - z);  // through n = tanh(xn + r hn)
    V dz = d * (hp - nn) * z * (one - z);
    V dr = dn * hn * rg * (one - rg);
    st(r.carry + j, d * z, n);
    st(r.dgi + j, dr, n);
    st(r.dgi + H + j, dz, n);
    st(r.dgi + 2 * H + j, dn, n);
    st(r.dgh + j, dr, n);
    st(r.dgh + H + j, dz, n);
    st(r.dgh + 2 * H + j, dn * rg, n);  // hn enters as r * hn
  });
}

// Reset-before GRU, first half: the z and n gradients; n's flows on through W_hn to rh.
template <typename T>
inline void gru_rb_bwd_zn(const Seq<T>& q, const BwdRow<T>& r, int64_t j0) {
  using V = Vec<T>;
  const int64_t H = q.H;
  const T* k = r.cache;
  const V one = V::set1(T(1));
  for_chunks<T>(j0, H, [&](int64_t j, int, int n) {
    V d = dh_total(r, j, n);
    V hp = ld(k + j, n), z = ld(k + 2 * H + j, n), nn = ld(k + 3 * H + j, n);
    st(r.carry + j, d * z, n);
    st(r.dgi + H + j, d * (hp - nn) * z * (one - z), n);
    st(r.dgi + 2 * H + j, d * (one - nn * nn) * (one - z), n);
  });
}

// Reset-before GRU, second half: drh = dn W_hn (in `tile`), rh = r * h_prev.
template <typename T>
inline void gru_rb_bwd_r(const Seq<T>& q, const BwdRow<T>& r, const T* tile, int64_t j0) {
  using V = Vec<T>;
  const int64_t H = q.H;
  const T* k = r.cache;
  const V one = V::set1(T(1));
  for_chunks<T>(j0, H, [&](int64_t j, int jt, int n) {
    V drh = ld(tile + jt, n);
    V hp = ld(k + j, n), rg = ld(k + H + j, n);
    st(r.dgi + j, drh * hp * rg * (one - rg), n);
    st(r.carry + j, V::fmadd(drh, rg, ld(r.carry + j, n)), n);
  });
}

template <typename T>
size_t backward_work(const SeqArgs<T>& a) {
  Seq<T> q(a);
  const bool separate_dgh = a.cell == Cell::kGru;
  return size_t(q.Tn * q.B * padded_ld(q.GH) * (separate_dgh ? 2 : 1) + 3 * q.B * q.H);
}

template <typename T>
void backward(const SeqArgs<T>& a) {
  using Tl = Tile<T>;
  constexpr int MR = Tl::MR, NR = Tl::NR;
  Seq<T> q(a);
  const int64_t B = q.B, H = q.H, GH = q.GH, TB = q.Tn * q.B, ldg = padded_ld(GH);
  const Cell cell = a.cell;
  const bool rb = cell == Cell::kGruResetBefore;
  T* dgi = a.work;  // [T*B, ldg] gate gradients, input side
  T* dgh = cell == Cell::kGru ? dgi + TB * ldg : dgi;  // hidden side, where it differs
  T* dh = dgi + TB * ldg * (cell == Cell::kGru ? 2 : 1);
  T* dc = dh + B * H;
  T* carry = dc + B * H;
  // Every running (t, b) row of dgi/dgh is written by the pointwise; padded rows must read as zero
  // in the products after the loop.
  for (int64_t t = 0; t < q.Tn; ++t)
    for (int64_t b = 0; b < B; ++b)
      if (t >= q.len_of(b)) {
        memset(dgi + (t * B + b) * ldg, 0, sizeof(T) * GH);
        if (dgh != dgi) memset(dgh + (t * B + b) * ldg, 0, sizeof(T) * GH);
      }
  memset(carry, 0, sizeof(T) * B * H);
  for (int64_t sb = 0; sb < B; ++sb) {
    const int64_t b = q.batch_of(sb);
    if (a.dh_n)
      memcpy(dh + sb * H, a.dh_n + b * H, sizeof(T) * H);
    else
      memset(dh + sb * H, 0, sizeof(T) * H);
    if (a.dc_n)
      memcpy(dc + sb * H, a.dc_n + b * H, sizeof(T) * H);
    else
      memset(dc + sb * H, 0, sizeof(T) * H);
  }
  const int per = B <= 2 ? 4 : 1;  // blocks per work item (see recurrence_forward)
  const int nt = recurrence_threads(q, a.threads, ceil_div(q.nb, per));
  const int64_t K1 = rb ? 2 * H : GH;  // depth of dh = dG W_hh
  const int64_t tile_rows = ceil_div(B, MR) * MR;
  Buffer<T> tile_buf(size_t(nt * tile_rows * 4 * NR));
  T* tiles = tile_buf.data();  // per thread: a work item's products, all rows

  {
    auto row_at = [&](int64_t s, int64_t sb) {
      const int64_t b = q.batch_of(sb), t = q.time_of(s, b), at = t * B + b;
      return BwdRow<T>{a.cache + at * q.cw * H,
                       a.dy ? a.dy + at * H : nullptr,
                       dh + sb * H,
                       dc + sb * H,
                       carry + sb * H,
                       dgi + at * ldg,
                       dgh + at * ldg};
    };
    auto pointwise = [&](int64_t s, int64_t jb) {
      const int64_t n = q.active(s), j0 = jb * NR;
      for (int64_t sb = 0; sb < n; ++sb) {
        BwdRow<T> r = row_at(s, sb);
        switch (cell) {
          case Cell::kRnnTanh:
          case Cell::kRnnRelu:
            rnn_bwd_block(q, r, j0);
            break;
          case Cell::kLstm:
            lstm_bwd_block(q, r, a.dpeep, j0);
            break;
          case Cell::kGru:
            gru_bwd_block(q, r, j0);
            break;
          case Cell::kGruResetBefore:
            gru_rb_bwd_zn(q, r, j0);
            break;
        }
      }
    };
    // rows [0, n) of step s: tile = (rows of src at column offset `col`) times `panels`
    // rows [0, n) of step s times the panels of blocks [jb0, jb0 + count); epilogue(sb, jb, tile)
    auto product = [&](int64_t s, int64_t jb0, int64_t count, const T* panels, int64_t K,
                       int64_t col, auto&& epilogue) {
      T* tile = tiles + omp_get_thread_num() * tile_rows * 4 * NR;
      const int64_t n = q.active(s);
      const T* src = (col == 0 && !rb) ? dgh : dgi;
      block_product<T>(
          n, K,
          [&](int64_t sb) {
            const int64_t b = q.batch_of(sb);
            return src + (q.time_of(s, b) * B + b) * ldg + col;
          },
          panels + jb0 * K * NR, K * NR, int(count), tile, 4 * NR);
      for (int64_t jb = jb0; jb < jb0 + count; ++jb)
        for (int64_t sb = 0; sb < n; ++sb) epilogue(sb, jb, tile + sb * 4 * NR + (jb - jb0) * NR);
    };

    // stage 0: pointwise of the last step; then per step s: [drh = dn W_hn (reset-before GRU)],
    // dh_{s-1} = dG_s W_hh for a block followed at once by that block's pointwise of step s-1
    const int per_step = rb ? 2 : 1;
    Stages::parallel(ceil_div(q.nb, per), nt, 1 + q.Tn * per_step, [&](int64_t stage, int64_t item) {
      const int64_t jb0 = item * per, count = imin(per, q.nb - jb0);
      if (stage == 0) {
        for (int64_t jb = jb0; jb < jb0 + count; ++jb) pointwise(q.Tn - 1, jb);
        return;
      }
      const int64_t s = q.Tn - 1 - (stage - 1) / per_step;
      if (rb && (stage - 1) % per_step == 0) {
        product(s, jb0, count, a.packed.bwd_hn, H, 2 * H, [&](int64_t sb, int64_t jb, const T* t) {
          gru_rb_bwd_r(q, row_at(s, sb), t, jb * NR);
        });
        return;
      }
      product(s, jb0, count, a.packed.bwd_hh, K1, 0, [&](int64_t sb, int64_t jb, const T* t) {
        T* d = dh + sb * H;
        const T* cr = carry + sb * H;
        const bool with_carry = cell == Cell::kGru || rb;
        for_chunks<T>(jb * NR, H, [&](int64_t j, int jt, int nn) {
          Vec<T> v = ld(t + jt, nn);
          st(d + j, with_carry ? v + ld(cr + j, nn) : v, nn);
        });
      });
      if (s > 0)
        for (int64_t jb = jb0; jb < jb0 + count; ++jb) pointwise(s - 1, jb);
    });
  }


  // dh0, dc0 in batch order
  for (int64_t sb = 0; sb < B; ++sb) {
    const int64_t b = q.batch_of(sb);
    if (a.dh0) memcpy(a.dh0 + b * H, dh + sb * H, sizeof(T) * H);
    if (a.dc0) memcpy(a.dc0 + b * H, dc + sb * H, sizeof(T) * H);
  }
  // Large products over all steps.
  const int th = a.threads;
  if (a.dx) gemm<T>(false, false, TB, q.I, GH, dgi, ldg, a.w_ih, q.I, T(0), a.dx, q.I, th);
  if (a.dw_ih) gemm<T>(true, false, GH, q.I, TB, dgi, ldg, a.x, q.I, T(0), a.dw_ih, q.I, th);
  if (a.dw_hh) {
    const int64_t ldk = q.cw * H;
    if (rb) {
      gemm<T>(true, false, 2 * H, H, TB, dgi, ldg, a.cache, ldk, T(0), a.dw_hh, H, th);
      gemm<T>(true, false, H, H, TB, dgi + 2 * H, ldg, a.cache + 4 * H, ldk, T(0),
              a.dw_hh + 2 * H * H, H, th);
    } else {
      gemm<T>(true, false, GH, H, TB, dgh, ldg, a.cache, ldk, T(0), a.dw_hh, H, th);
    }
  }
  auto colsum = [&](const T* g, T* out) {
    for (int64_t c = 0; c < GH; ++c) out[c] = T(0);
    for (int64_t r = 0; r < TB; ++r)
      for (int64_t c = 0; c < GH; ++c) out[c] += g[r * ldg + c];
  };
  if (a.db_ih) colsum(dgi, a.db_ih);
  if (a.db_hh) colsum(dgh, a.db_hh);
}

// ------------------------------------------------------------------------------------------------
// Packing. Forward panels (jb, g): element (k, j) = W[g*H + jb*NR + j][k], zero past H, so a
// block's G gates sit side by side and one product feeds one block's pointwise.
// Backward panels jb: element (k, j) = W_hh[k][jb*NR + j].

template <typename T>
struct PackLayout {
  int64_t gemm_ih, fwd_ih, fwd_hh, fwd_hn, bwd_hh, bwd_hn;  // offsets
  int64_t total;
  PackLayout(Cell cell, int64_t I, int64_t H) {
    constexpr int NR = Tile<T>::NR;
    const int64_t G = num_gates(cell), nb = ceil_div(H, NR);
    const bool rb = cell == Cell::kGruResetBefore;
    gemm_ih = 0;
    fwd_ih = gemm_ih + packed_b_size<T>(I, G * H);
    fwd_hh = fwd_ih + G * nb * I * NR;
    fwd_hn = fwd_hh + (rb ? 2 : G) * nb * H * NR;
    bwd_hh = fwd_hn + (rb ? nb * H * NR : 0);
    bwd_hn = bwd_hh + nb * (rb ? 2 * H : G * H) * NR;
    total = bwd_hn + (rb ? nb * H * NR : 0);
  }
};

template <typename T>
size_t packed_size(Cell cell, int64_t I, int64_t H) {
  return size_t(PackLayout<T>(cell, I, H).total);
}

// float32 -> bfloat16, rounding to nearest even; NaN stays NaN
inline uint16_t to_bf16(float f) {
  uint32_t bits;
  memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}
template <typename T>
inline T convert_to(T v, T*) {
  return v;
}
inline uint16_t convert_to(float v, uint16_t*) { return to_bf16(v); }
inline uint16_t convert_to(double v, uint16_t*) { return to_bf16(float(v)); }

// gates [g0, g0+ng) of w (rows g*H.., ld = K) as forward panels of OT (T, or bfloat16): element
// (k, j) of a panel at k * NR + j, or with `pairs` at (k/2 * NR + j) * 2 + k%2 with K rounded up
// to even (the bfloat16 dot-product layout, see ukernel_bf16_dot)
inline int64_t panel_depth(int64_t K, bool pairs) { return pairs ? (K + 1) / 2 * 2 : K; }

template <typename T, typename OT>
void pack_forward(const T* w, int64_t K, int64_t H, int g0, int ng, OT* out, bool pairs = false) {
  constexpr int NR = Tile<T>::NR;
  const int64_t nb = ceil_div(H, NR), depth = panel_depth(K, pairs);
  for (int64_t jb = 0; jb < nb; ++jb)
    for (int g = 0; g < ng; ++g) {
      OT* dst = out + (jb * ng + g) * depth * NR;
      for (int64_t k = 0; k < depth; ++k)
        for (int j = 0; j < NR; ++j) {
          const int64_t unit = jb * NR + j;
          const T v = unit < H && k < K ? w[((g0 + g) * H + unit) * K + k] : T(0);
          dst[pairs ? (k / 2 * NR + j) * 2 + k % 2 : k * NR + j] = convert_to(v, dst);
        }
    }
}

// rows [r0, r0+K) of w_hh [*, H] as backward panels
template <typename T>
void pack_backward(const T* w_hh, int64_t r0, int64_t K, int64_t H, T* out) {
  constexpr int NR = Tile<T>::NR;
  const int64_t nb = ceil_div(H, NR);
  for (int64_t jb = 0; jb < nb; ++jb) {
    T* dst = out + jb * K * NR;
    for (int64_t k = 0; k < K; ++k)
      for (int j = 0; j < NR; ++j) {
        const int64_t unit = jb * NR + j;
        dst[k * NR + j] = unit < H ? w_hh[(r0 + k) * H + unit] : T(0);
      }
  }
}

template <typename T>
void pack(Cell cell, int64_t I, int64_t H, const T* w_ih, const T* w_hh, T* out, Packed<T>* v) {
  PackLayout<T> l(cell, I, H);
  const int G = num_gates(cell);
  const bool rb = cell == Cell::kGruResetBefore;
  pack_b(w_ih, I, true, I, G * H, out + l.gemm_ih);  // W_ih^T for the input projection
  pack_forward(w_ih, I, H, 0, G, out + l.fwd_ih);
  pack_forward(w_hh, H, H, 0, rb ? 2 : G, out + l.fwd_hh);
  if (rb) pack_forward(w_hh, H, H, 2, 1, out + l.fwd_hn);
  pack_backward(w_hh, 0, rb ? 2 * H : G * H, H, out + l.bwd_hh);
  if (rb) pack_backward(w_hh, 2 * H, H, H, out + l.bwd_hn);
  v->gemm_ih = out + l.gemm_ih;
  v->fwd_ih = out + l.fwd_ih;
  v->fwd_hh = out + l.fwd_hh;
  v->fwd_hn = rb ? out + l.fwd_hn : nullptr;
  v->bwd_hh = out + l.bwd_hh;
  v->bwd_hn = rb ? out + l.bwd_hn : nullptr;
}

// The same forward panels in bfloat16: [fwd_ih | fwd_hh | fwd_hn]; on AVX-512 in the pair layout
// (see ukernel_bf16_pairs). kDot: the products may use vdpbf16ps (the avx512_bf16 table).
#if defined(FASTRNN_ISA_IS_avx512)
constexpr bool kBf16Pairs = true;
#else
constexpr bool kBf16Pairs = false;
#endif

template <typename T>
size_t packed_bf16_size(Cell cell, int64_t I, int64_t H) {
  const int64_t panels = ceil_div(H, Tile<T>::NR) * num_gates(cell);
  return size_t(panels * Tile<T>::NR * (panel_depth(I, kBf16Pairs) + panel_depth(H, kBf16Pairs)));
}

template <typename T, bool kDot>
void pack_bf16(Cell cell, int64_t I, int64_t H, const T* w_ih, const T* w_hh, uint16_t* out,
               Packed<T>* v) {
  constexpr int NR = Tile<T>::NR;
  const int G = num_gates(cell);
  const bool rb = cell == Cell::kGruResetBefore;
  const int gp = rb ? 2 : G;  // gates in fwd_hh
  const int64_t nb = ceil_div(H, NR);
  uint16_t* ih = out;
  uint16_t* hh = ih + nb * G * panel_depth(I, kBf16Pairs) * NR;
  uint16_t* hn = hh + nb * gp * panel_depth(H, kBf16Pairs) * NR;
  pack_forward(w_ih, I, H, 0, G, ih, kBf16Pairs);
  pack_forward(w_hh, H, H, 0, gp, hh, kBf16Pairs);
  if (rb) pack_forward(w_hh, H, H, 2, 1, hn, kBf16Pairs);
  v->bf16_ih = ih;
  v->bf16_hh = hh;
  v->bf16_hn = rb ? hn : nullptr;
  v->bf16_dot = kDot;
}

// which: 0 exp, 1 expm1, 2 sigmoid, 3 tanh
template <typename T>
void math(int which, const T* x, T* y, int64_t n) {
  using V = Vec<T>;
  for (int64_t i = 0; i < n; i += V::W) {
    const int cnt = int(imin(V::W, n - i));
    V v = ld(x + i, cnt);
    V r = which == 0 ? vexp(v) : which == 1 ? vexpm1(v) : which == 2 ? vsigmoid(v) : vtanh(v);
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

template <typename T>
void gemm_entry(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
                const T* b, int64_t ldb, T beta, T* c, int64_t ldc, int threads) {
  gemm<T>(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, threads);
}

template <typename T, bool kBf16Dot = false>
Kernels<T> make_kernels() {
  Kernels<T> k;
  k.tiling = Tiling{Tile<T>::MR, Tile<T>::NR};
  k.packed_size = &packed_size<T>;
  k.pack = &pack<T>;
  if constexpr (sizeof(T) == 4) {
    k.packed_bf16_size = &packed_bf16_size<T>;
    k.pack_bf16 = &pack_bf16<T, kBf16Dot>;
  } else {
    k.packed_bf16_size = nullptr;
    k.pack_bf16 = nullptr;
  }
  k.forward_work = &forward_work<T>;
  k.backward_work = &backward_work<T>;
  k.forward = &forward<T>;
  k.backward = &backward<T>;
  k.step = &step<T>;
  k.gemm = &gemm_entry<T>;
  k.math = &math<T>;
  k.stream_read = &stream_read<T>;
  return k;
}

}  // namespace

#define FASTRNN_STR2(x) #x
#define FASTRNN_STR(x) FASTRNN_STR2(x)

KernelTable table() {
  return KernelTable{FASTRNN_STR(FASTRNN_ISA_NS), make_kernels<float>(), make_kernels<double>()};
}

#if defined(FASTRNN_ISA_IS_avx512)
// The same kernels; the reduced-precision inference uses bfloat16 dot products (AVX512_BF16) at
// one or two rows.
KernelTable table_bf16() {
  return KernelTable{"avx512_bf16", make_kernels<float, true>(), make_kernels<double>()};
}
#endif

}  // namespace FASTRNN_ISA_NS
}  // namespace fastrnn
