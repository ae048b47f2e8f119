// pointwise.h: the elementwise kernels of the CUDA path, each a plain parameter struct whose
// operator()(i) does the work of GPU thread i. runtime_cuda.cu launches one thread per element;
// runtime_host.cpp (the host build, part of the CPU test suite) loops over i. Pointers are device
// pointers on the GPU, host pointers in the host build.
//
// Row layouts (see sequence.h): "sorted rows" are batch rows in order of decreasing length, so
// the rows running at step s are [0, n); "packed rows" number every (step, running row) pair,
// step by step: P = row0(s) + sb, with row_t[P], row_b[P] its time and batch index. The input
// projection, the training cache and the gate gradients are stored in packed rows, so padded
// steps have no rows at all.
//
// Storage and compute types: T is what a kernel computes in and what the internal buffers hold
// (state, input projection, cache, gate gradients); S is the storage type of what the caller
// passes in and gets out (x, y, states, dy, weights, gradients). They differ only for the 16-bit
// types (S = bfloat16 / float16, T = float): values are widened on load and rounded once on store
// (cuda/half.h); the state is never rounded between steps.
#pragma once

#include <stdint.h>

#include "cells/cells.h"
#include "cuda/half.h"
#include "fastrnn.h"

namespace fastrnn {
namespace gpu_kernels {

// ------------------------------------------------------------------------------------------------
// Forward pointwise of one step of cell C (cells/*.h): gates, state update, output, cache. One
// thread per (sb, j), sb < n running rows, j < H. phase 1 is the second phase of a two-phase cell
// (C::kPhases = 2, the reset-before GRU).
template <class C, typename T, typename S = T>
struct FwdStep {
  // outputs
  S* y;      // y[t * y_st + b * y_sb + j]
  S* h_n;    // [B, H] batch order, written at each row's last step (may be null)
  S* c_n;    // [B, H] (LSTM, may be null)
  T* h;      // [B, H] sorted rows: h_s
  T* c;      // [B, H] sorted rows: c_{s-1} in, c_s out (LSTM)
  T* cache;  // [R, cw * H] packed rows, or null (inference)
  T* rh;     // [B, H] sorted rows: r * h_{s-1} (reset-before GRU, first half)
  T* z;      // [B, H] sorted rows: z between the halves (reset-before GRU)
  // inputs
  const T* xp;           // [R, G*H] packed rows: input projection plus biases
  const T* hh;           // [n, ldhh] this step's recurrent product, w_hh's row order
  const T* h_prev;       // [B, H] sorted rows
  const int64_t* row_t;  // [R]
  const int64_t* row_b;  // [R]
  const S* b_hn;         // [H] PyTorch GRU's b_hn, or null
  const S* peep;         // [3*H] or null
  // sizes
  int64_t y_st, y_sb;
  int64_t row0;    // packed row of (s, 0)
  int64_t n_next;  // rows still running at step s+1: rows sb >= n_next end at s
  int64_t H, GH, ldhh;
  int phase;
  static constexpr int64_t cw = C::kCacheWidth;

  FASTRNN_HD void operator()(int64_t idx) const {
    const int64_t sb = idx / H, j = idx - sb * H, P = row0 + sb;
    const int64_t t = row_t[P];
    Io io{*this,
          xp + P * GH,
          hh + sb * ldhh,
          cache ? cache + P * cw * H : nullptr,
          &y[t * y_st + row_b[P] * y_sb + j],
          sb * H + j,
          j,
          row_b[P],
          sb >= n_next};
    C::forward_point(io);
  }

  // The forward accessor of one element (see "Points" in cells/all.h).
  struct Io {
    using V = T;
    const FwdStep& f;
    const T* xr;  // [G*H] the row's input projection
    const T* hr;  // [ldhh] the row's product
    T* k;         // [cw*H] the row's cache, or null
    S* yp;        // this element of y
    int64_t u, j, b;
    bool last;  // the row's last step

    FASTRNN_HD T x(int g) const { return xr[g * f.H + j]; }
    FASTRNN_HD T h(int g) const { return hr[g * f.H + j]; }
    // f.b_hn is the inner bias of the one gate that has it
    FASTRNN_HD T h_inner(int g) const { return h(g) + (f.b_hn ? T(widen(f.b_hn[j])) : T(0)); }
    FASTRNN_HD T h_prev() const { return f.h_prev[u]; }
    FASTRNN_HD T c_prev() const { return f.c[u]; }
    FASTRNN_HD void set_c(T v) const {
      f.c[u] = v;
      if (last && f.c_n) f.c_n[b * f.H + j] = narrow<S>(v);
    }
    FASTRNN_HD bool has_peep() const { return f.peep != nullptr; }
    FASTRNN_HD T peep(int i) const { return f.peep ? T(widen(f.peep[i * f.H + j])) : T(0); }
    FASTRNN_HD bool caching() const { return k != nullptr; }
    FASTRNN_HD void cache(int col, T v) const { k[col * f.H + j] = v; }
    FASTRNN_HD void out(T v) const {
      f.h[u] = v;
      *yp = narrow<S>(v);
      if (last && f.h_n) f.h_n[b * f.H + j] = narrow<S>(v);
    }
    FASTRNN_HD int phase() const { return f.phase; }
    FASTRNN_HD void set_rh(T v) const { f.rh[u] = v; }
    FASTRNN_HD void set_z(T v) const { f.z[u] = v; }
    FASTRNN_HD T z() const { return f.z[u]; }
  };
};

// ------------------------------------------------------------------------------------------------
// Backward pointwise of one step: gate gradients from the cache. One thread per (sb, j), sb < n.
// dh holds dL/dh_s from later steps (without dy, which is added here); on return it holds the
// part of dL/dh_{s-1} that bypasses W_hh (GRU) and the recurrent product then adds dG W_hh to it
// (or, RNN and LSTM, overwrites it). phase 1 is the second phase of a two-phase cell.
template <class C, typename T, typename S = T>
struct BwdStep {
  T* dgi;          // [R, G*H] packed rows: pre-activation gradients, input side
  T* dgh;          // [R, G*H] packed rows: hidden side (differs for PyTorch's GRU only)
  T* dh;           // [B, H] sorted rows
  T* dc;           // [B, H] sorted rows: dc_s in, dc_{s-1} out (LSTM)
  const T* cache;  // [R, cw * H] packed rows
  const S* dy;     // dy[t * dy_st + b * dy_sb + j], or null
  const T* drh;    // [n, H] reset-before GRU, phase 1: da_n W_hn
  const int64_t* row_t;
  const int64_t* row_b;
  const S* peep;  // [3*H] or null
  int64_t dy_st, dy_sb;
  int64_t row0, H, GH;
  int phase;
  static constexpr int64_t cw = C::kCacheWidth;

  FASTRNN_HD void operator()(int64_t idx) const {
    const int64_t sb = idx / H, j = idx - sb * H, P = row0 + sb;
    Io io{*this, cache + P * cw * H, dgi + P * GH, dgh + P * GH, sb * H + j, j, P};
    C::backward_point(io);
  }

  // The backward accessor of one element (see "Points" in cells/all.h). The peephole gradients
  // are summed after the loop (ColumnDot), so peep_grad does nothing here.
  struct Io {
    using V = T;
    const BwdStep& f;
    const T* kr;  // [cw*H] the row's cache
    T* gi;        // [G*H]
    T* gh;        // [G*H]
    int64_t u, j, P;

    // dL/dh_s: from later steps (dh) and from y_s (dy)
    FASTRNN_HD T dh() const {
      T d = f.dh[u];
      if (f.dy) d += T(widen(f.dy[f.row_t[P] * f.dy_st + f.row_b[P] * f.dy_sb + j]));
      return d;
    }
    FASTRNN_HD T k(int col) const { return kr[col * f.H + j]; }
    FASTRNN_HD T dc() const { return f.dc[u]; }
    FASTRNN_HD void set_dc(T v) const { f.dc[u] = v; }
    FASTRNN_HD void dgi(int g, T v) const { gi[g * f.H + j] = v; }
    FASTRNN_HD void dgh(int g, T v) const { gh[g * f.H + j] = v; }
    FASTRNN_HD T carry() const { return f.dh[u]; }
    FASTRNN_HD void set_carry(T v) const { f.dh[u] = v; }
    FASTRNN_HD T drh() const { return f.drh[u]; }
    FASTRNN_HD bool has_peep() const { return f.peep != nullptr; }
    FASTRNN_HD T peep(int i) const { return f.peep ? T(widen(f.peep[i * f.H + j])) : T(0); }
    FASTRNN_HD void peep_grad(int, T, T) const {}
    FASTRNN_HD int phase() const { return f.phase; }
  };
};

// ------------------------------------------------------------------------------------------------
// Moving rows between layouts. One thread per element of the destination (or source). D and Src
// are the destination's and source's element types (one is the storage type of a 16-bit layer,
// the other float; convert<D> is the identity when they are the same).

// dst[P, :] = src[row_t[P] * st + row_b[P] * sb + :]   (a [T, B, F] view into packed rows)
template <typename D, typename Src = D>
struct GatherRows {
  D* dst;  // [R, F]
  const Src* src;
  const int64_t* row_t;
  const int64_t* row_b;
  int64_t st, sb, F;
  FASTRNN_HD void operator()(int64_t i) const {
    const int64_t P = i / F, f = i - P * F;
    dst[i] = convert<D>(src[row_t[P] * st + row_b[P] * sb + f]);
  }
};

// dst[row_t[P] * st + row_b[P] * sb + :] (+)= src[P, :]   (packed rows back into a [T, B, F] view)
template <typename D, typename Src = D>
struct ScatterRows {
  D* dst;
  const Src* src;  // [R, F]
  const int64_t* row_t;
  const int64_t* row_b;
  int64_t st, sb, F;
  bool accumulate;
  FASTRNN_HD void operator()(int64_t i) const {
    const int64_t P = i / F, f = i - P * F;
    D* d = dst + row_t[P] * st + row_b[P] * sb + f;
    *d = narrow<D>(accumulate ? widen(*d) + widen(src[i]) : widen(src[i]));
  }
};

// Batch order <-> sorted rows of a [B, H] state: to_sorted: dst[sb] = src[order[sb]] (zeros
// when src is null); else dst[order[sb]] = src[sb].
template <typename D, typename Src = D>
struct PermuteRows {
  D* dst;
  const Src* src;
  const int64_t* order;
  int64_t H;
  bool to_sorted;
  FASTRNN_HD void operator()(int64_t i) const {
    const int64_t sb = i / H, j = i - sb * H, b = order[sb];
    if (to_sorted)
      dst[i] = src ? convert<D>(src[b * H + j]) : D{};  // D{}: +0 for every type
    else
      dst[b * H + j] = convert<D>(src[i]);
  }
};

// out[j] = sum over rows r of a[r * lda + j] * (b ? b[r * ldb + j] : 1): bias and peephole
// gradients. One thread per column, rows in order: deterministic (no atomics). The sum is kept
// in T and rounded once into out's type O.
template <typename T, typename O = T>
struct ColumnDot {
  O* out;
  const T* a;
  const T* b;
  int64_t rows, lda, ldb;
  FASTRNN_HD void operator()(int64_t j) const {
    T s = T(0);
    for (int64_t r = 0; r < rows; ++r) s += b ? a[r * lda + j] * b[r * ldb + j] : a[r * lda + j];
    out[j] = narrow<O>(s);
  }
};

// dst[i] = src[i] rounded to D (weight gradients of a 16-bit layer, summed in float)
template <typename D, typename Src>
struct Convert {
  D* dst;
  const Src* src;
  FASTRNN_HD void operator()(int64_t i) const { dst[i] = convert<D>(src[i]); }
};

// ------------------------------------------------------------------------------------------------
// Helpers of the Python layers on device arrays.

// y = x * keep(i) / (1 - p), keep(i) = u(seed, i) >= p with u uniform in [0, 1) from a
// counter-based hash, so backward regenerates the forward's mask from the seed alone.
FASTRNN_HD inline double dropout_uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;  // splitmix64
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 11) * (1.0 / 9007199254740992.0);
}

template <typename T>
struct Dropout {
  T* y;
  const T* x;
  uint64_t seed;
  double p;
  accum_t<T> scale;
  FASTRNN_HD void operator()(int64_t i) const {
    y[i] = dropout_uniform(seed, uint64_t(i)) >= p ? narrow<T>(widen(x[i]) * scale) : T{};
  }
};

// dst (contiguous) = src viewed with shape/strides (elements), up to 4 dimensions
template <typename T>
struct StridedCopy {
  T* dst;
  const T* src;
  int64_t shape[4];
  int64_t strides[4];
  int ndim;
  // The copy of an ndim <= 4 strided view, and its element count in *count.
  static StridedCopy of(T* dst, const T* src, int ndim, const int64_t* shape,
                        const int64_t* strides, int64_t* count) {
    StridedCopy op{dst, src, {1, 1, 1, 1}, {0, 0, 0, 0}, ndim};
    *count = 1;
    for (int d = 0; d < ndim; ++d) {
      op.shape[d] = shape[d];
      op.strides[d] = strides[d];
      *count *= shape[d];
    }
    return op;
  }
  FASTRNN_HD void operator()(int64_t i) const {
    int64_t rest = i, off = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t q = rest / shape[d];
      off += (rest - q * shape[d]) * strides[d];
      rest = q;
    }
    dst[i] = src[off];
  }
};

}  // namespace gpu_kernels
}  // namespace fastrnn
