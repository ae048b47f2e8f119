// persistent.h: the persistent small-batch recurrences of the GPU path (B <= 8), the
// persistent-RNN idea: one cooperative launch runs every step; each block (CTA) owns a slice of
// hidden units, keeps its part of W_hh in shared memory for the whole sequence, and the blocks
// meet at grid-wide barriers. Used in place of the per-step loops of sequence.h; the big
// products before (input projection) and after (weight and input gradients) are the standard
// path's.
//
// Forward (PersistFwd): a block keeps the rows of W_hh of its units (all G gates). Per step it
//   stages   h_{s-1} [n_s, H] (every unit, from global memory) into shared memory,
//   dots     each thread sums a strided part of k for one unit, all its gates and all n_s rows,
//   finish   one thread per (unit, row) adds up the parts in a fixed order, writes the unit's
//            pre-activations into the step's product buffer (hh, as the standard path's matrix
//            product does) and runs FwdStep (pointwise.h) on them: the same gate math, outputs
//            and training cache as the standard path, so either backward can follow it.
// then a grid barrier. A two-phase cell (C::kPhases = 2, the reset-before GRU) takes two phases
// per step (its first G-1 gates, r and z, from h_{s-1}; then its last, n, from r * h_{s-1}), with
// a grid barrier after each. Both kernels are templates over the cell type C (cells/*.h): the
// gate counts, phases and the carry are compile-time constants.
// Backward (PersistBwd): a block keeps the columns of W_hh of its units; per step BwdStep for its
// units, a grid barrier, then its units' part of dh_{s-1} = dG_s W_hh (see PersistBwd).
//
// The per-(block, step, phase) work is written as the work of one thread between two block
// barriers (stage / dots / finish), like gemm.h, so the host build runs exactly this code with
// loops for threads and blocks and loop boundaries for the barriers (run_persistent_on_host); the
// CUDA kernels below (compiled by nvcc only) add __syncthreads and cooperative_groups'
// grid.sync(). Not here: bfloat16/float16 storage.
#pragma once

#include <stdint.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "cells/cells.h"
#include "cuda/gemm.h"  // FASTRNN_UNROLL
#include "cuda/pointwise.h"
#include "cuda/runtime.h"
#include "fastrnn.h"

#if defined(__CUDACC__)
#include <cooperative_groups.h>
#endif

namespace fastrnn {
namespace gpu_kernels {

constexpr int kPersistMaxRows = 8;       // largest batch the kernel takes (rows kept in registers)
constexpr int kPersistSplit = 32;        // threads per unit, each summing every 32nd k
constexpr int kPersistUnitsPerPass = 8;  // units a block works on at once (256 threads)
constexpr int kPersistMaxThreads = kPersistSplit * kPersistUnitsPerPass;

// A read of data that other blocks wrote before the last grid barrier: not through L1, which
// is not coherent across SMs and may hold the same buffer from two steps ago.
template <typename T>
FASTRNN_HD inline T load_from_other_blocks(const T* p) {
#if defined(__CUDA_ARCH__)
  return __ldcg(p);
#else
  return *p;
#endif
}

// The gates of phase `phase` of cell C's step, [*g0, *g0 + the count returned): a one-phase cell
// takes all G in phase 0; a two-phase cell its first G-1 in phase 0, its last in phase 1.
template <class C>
FASTRNN_HD constexpr int phase_gates(int phase, int* g0) {
  *g0 = phase == 0 ? 0 : C::kGates - 1;
  return C::kPhases == 1 ? C::kGates : (phase == 0 ? C::kGates - 1 : 1);
}
// The most gates in one phase's product.
template <class C>
FASTRNN_HD constexpr int max_phase_gates() {
  return C::kPhases == 1 ? C::kGates : C::kGates - 1;
}

// Everything the kernel sees. Shared memory of a block, in elements of T:
//   ws   [G * U, H]            W_hh rows of the block's units, row (g * U + ul) = W_hh[g*H + j0+ul]
//   hs   [B, H]                this phase's right operand: h_{s-1} (or r * h_{s-1}), rows < n_s
//   part [upp * ngmax * B, KS + 1]  the threads' partial sums (padded: conflict-free reads)
template <class C, typename T>
struct PersistFwd {
  static constexpr int G = C::kGates, ngmax = max_phase_gates<C>();
  FwdStep<C, T> step;       // pointers and sizes of the pointwise; per-step fields set here
  T* hb[2];                 // [B, H] sorted rows: h_s lives in hb[(s + 1) & 1]
  T* hh;                    // [B, ngmax * H] the product of phase 0, w_hh's row order
  T* hn;                    // [B, H] reset-before GRU: the product of phase 1
  const T* w_hh;            // [G*H, H]
  const int64_t* active;    // [steps + 1] rows running at step s (active[steps] = 0)
  const int64_t* rowstart;  // [steps] packed row of (s, 0)
  int64_t steps;            // steps with at least one row running
  int64_t H, B;
  int units, upp, passes;  // units per block, units per pass (upp * KS threads), passes
  int ctas, threads;
  int64_t smem_elems;

  FASTRNN_HD int64_t part_off() const { return int64_t(G) * units * H + B * H; }

  // W_hh rows of block `cta`'s units; zeros for units past H (the last block may have fewer).
  FASTRNN_HD void load_weights(int cta, int tid, T* smem) const {
    const int64_t j0 = int64_t(cta) * units, n = int64_t(G) * units * H;
    for (int64_t e = tid; e < n; e += threads) {
      const int64_t row = e / H, k = e - row * H;
      const int64_t g = row / units, j = j0 + (row - g * units);
      smem[e] = j < H ? w_hh[(g * H + j) * H + k] : T(0);
    }
  }

  // hs <- this phase's right operand, rows [0, n_s)
  FASTRNN_HD void stage(int64_t s, int phase, int tid, T* smem) const {
    const T* src = phase == 0 ? hb[s & 1] : step.rh;
    T* hs = smem + int64_t(G) * units * H;
    const int64_t n = active[s] * H;
    for (int64_t e = tid; e < n; e += threads) hs[e] = load_from_other_blocks(src + e);
  }

  // Thread (ulp, q) of pass `pass`: sum over k = q, q + KS, ... of W[g, unit] h[sb] for the
  // phase's gates and every running row.
  FASTRNN_HD void dots(int cta, int64_t s, int phase, int pass, int tid, T* smem) const {
    const int ulp = tid / kPersistSplit, q = tid - ulp * kPersistSplit;
    const int ul = pass * upp + ulp;
    if (ul >= units || int64_t(cta) * units + ul >= H) return;
    int g0;
    const int ng = phase_gates<C>(phase, &g0);
    const int n = int(active[s]);
    const T* ws = smem;
    const T* hs = smem + int64_t(G) * units * H;
    T acc[4][kPersistMaxRows];
    FASTRNN_UNROLL
    for (int g = 0; g < 4; ++g) FASTRNN_UNROLL
    for (int r = 0; r < kPersistMaxRows; ++r) acc[g][r] = T(0);
    for (int64_t k = q; k < H; k += kPersistSplit) {
      T hv[kPersistMaxRows];
      FASTRNN_UNROLL
      for (int r = 0; r < kPersistMaxRows; ++r) hv[r] = r < n ? hs[r * H + k] : T(0);
      FASTRNN_UNROLL
      for (int g = 0; g < 4; ++g) {
        if (g >= ng) break;
        const T w = ws[(int64_t(g0 + g) * units + ul) * H + k];
        FASTRNN_UNROLL
        for (int r = 0; r < kPersistMaxRows; ++r)
          if (r < n) acc[g][r] += w * hv[r];
      }
    }
    T* part = smem + part_off();
    FASTRNN_UNROLL
    for (int g = 0; g < 4; ++g) {
      if (g >= ng) break;
      FASTRNN_UNROLL
      for (int r = 0; r < kPersistMaxRows; ++r)
        if (r < n) part[((int64_t(ulp) * ngmax + g) * B + r) * (kPersistSplit + 1) + q] = acc[g][r];
    }
  }

  // One thread per (unit, row): the parts in order of q, into hh, then the pointwise.
  FASTRNN_HD void finish(int cta, int64_t s, int phase, int pass, int tid, const T* smem) const {
    const int64_t n = active[s];
    const int64_t item = tid;  // (ulp, row), upp * B <= threads
    if (item >= int64_t(upp) * B) return;
    const int ulp = int(item / B);
    const int64_t r = item - int64_t(ulp) * B, j = int64_t(cta) * units + pass * upp + ulp;
    if (r >= n || pass * upp + ulp >= units || j >= H) return;
    int g0;
    const int ng = phase_gates<C>(phase, &g0);
    FwdStep<C, T> f = step;
    f.h = hb[(s + 1) & 1];
    f.h_prev = hb[s & 1];
    f.row0 = rowstart[s];
    f.n_next = active[s + 1];
    f.phase = phase;
    T* prod = phase == 0 ? hh : hn;
    f.hh = prod;
    f.ldhh = phase == 0 ? int64_t(ngmax) * H : H;
    const T* part = smem + part_off();
    T* out = prod + r * f.ldhh + j;
    for (int g = 0; g < ng; ++g) {
      const T* p = part + ((int64_t(ulp) * ngmax + g) * B + r) * (kPersistSplit + 1);
      T sum = T(0);
      for (int i = 0; i < kPersistSplit; ++i) sum += p[i];
      out[int64_t(g) * H] = sum;
    }
    f(r * H + j);
  }
};

// The backward recurrence, one launch for all steps (from the last). Block `cta` owns the
// same units j as in the forward and keeps the columns j of W_hh; per step s it
//   pointwise  runs BwdStep (pointwise.h) for its units: gate gradients dG_s into packed rows,
//              dc_{s-1}, the direct part of dh_{s-1};                        grid barrier
//   (reset-before GRU: drh = da_n W_hn for its units, then BwdStep's second half;  grid barrier)
//   product    dh_{s-1}[:, j] (+)= dG_s[:, :K] W_hh[:K, j], staging dG_s one gate (H columns)
//              at a time; the parts of each thread accumulate in its own slots of `part`.
// No barrier after the product: the next step's pointwise reads only the block's own units.
// Shared memory: wt [U, G*H] (wt[ul * G*H + m] = W_hh[m, j0 + ul]), stage [B, H],
// part [upp * B, KS + 1].
template <class C, typename T>
struct PersistBwd {
  static constexpr int G = C::kGates;
  static constexpr bool two_phase = C::kPhases == 2;
  static constexpr bool carry = C::kCarry;  // the product adds to dh (which holds the direct part)
  BwdStep<C, T> step;       // pointers and sizes of the pointwise; row0 and phase set here
  T* dh;                    // [B, H] sorted rows
  T* drh;                   // [B, H] reset-before GRU: da_n W_hn
  const T* dg;              // [R, G*H] packed rows: the hidden side's gate gradients
  const T* w_hh;            // [G*H, H]
  const int64_t* active;    // [steps + 1]
  const int64_t* rowstart;  // [steps]
  int64_t steps;
  int64_t H, B;
  int units, upp, passes, ctas, threads;
  int64_t smem_elems;

  FASTRNN_HD int64_t stage_off() const { return int64_t(units) * G * H; }
  FASTRNN_HD int64_t part_off() const { return stage_off() + B * H; }

  FASTRNN_HD void load_weights(int cta, int tid, T* smem) const {
    const int64_t j0 = int64_t(cta) * units, GH = int64_t(G) * H, n = int64_t(units) * GH;
    for (int64_t e = tid; e < n; e += threads) {
      const int64_t ul = e / GH, m = e - ul * GH, j = j0 + ul;
      smem[e] = j < H ? w_hh[m * H + j] : T(0);
    }
  }

  // BwdStep's first half for the block's units and the running rows.
  FASTRNN_HD void pointwise(int cta, int64_t s, int tid) const {
    const int64_t n = active[s];
    for (int64_t it = tid; it < int64_t(units) * B; it += threads) {
      const int64_t ul = it / B, r = it - ul * B, j = int64_t(cta) * units + ul;
      if (r >= n || j >= H) continue;
      BwdStep<C, T> k = step;
      k.row0 = rowstart[s];
      k.phase = 0;
      k(r * H + j);
    }
  }

  // Gates of a product: drh = da_n W_hn (a two-phase cell's last gate), dh (the first phase's
  // gates: all but a two-phase cell's last).
  FASTRNN_HD static int product_gates(bool to_drh, int* g0) {
    return phase_gates<C>(to_drh ? 1 : 0, g0);
  }

  // stage <- dG_s[:, g*H : (g+1)*H], running rows
  FASTRNN_HD void stage(int64_t s, int g, int tid, T* smem) const {
    const int64_t n = active[s] * H, GH = int64_t(G) * H;
    const T* src = dg + rowstart[s] * GH + int64_t(g) * H;
    T* st = smem + stage_off();
    for (int64_t e = tid; e < n; e += threads) {
      const int64_t r = e / H, m = e - r * H;
      st[e] = load_from_other_blocks(src + r * GH + m);
    }
  }

  // Thread (ulp, q): sum over m = q, q + KS, ... < H of stage[r, m] wt[unit, g*H + m], added to
  // its slots (set on the first gate of the product).
  FASTRNN_HD void dots(int cta, int64_t s, int g, bool first, int pass, int tid, T* smem) const {
    const int ulp = tid / kPersistSplit, q = tid - ulp * kPersistSplit;
    const int ul = pass * upp + ulp;
    if (ul >= units || int64_t(cta) * units + ul >= H) return;
    const int n = int(active[s]);
    const T* w = smem + int64_t(ul) * G * H + int64_t(g) * H;
    const T* st = smem + stage_off();
    T acc[kPersistMaxRows];
    FASTRNN_UNROLL
    for (int r = 0; r < kPersistMaxRows; ++r) acc[r] = T(0);
    for (int64_t m = q; m < H; m += kPersistSplit) {
      const T wv = w[m];
      FASTRNN_UNROLL
      for (int r = 0; r < kPersistMaxRows; ++r)
        if (r < n) acc[r] += st[r * H + m] * wv;
    }
    T* part = smem + part_off();
    FASTRNN_UNROLL
    for (int r = 0; r < kPersistMaxRows; ++r) {
      if (r >= n) break;
      T* slot = part + (int64_t(ulp) * B + r) * (kPersistSplit + 1) + q;
      *slot = first ? acc[r] : *slot + acc[r];
    }
  }

  // One thread per (unit, row): the parts in order of q, into dh (or drh, then BwdStep's
  // second half).
  FASTRNN_HD void finish(int cta, int64_t s, bool to_drh, int pass, int tid, const T* smem) const {
    const int64_t n = active[s];
    const int64_t item = tid;
    if (item >= int64_t(upp) * B) return;
    const int ulp = int(item / B);
    const int64_t r = item - int64_t(ulp) * B, j = int64_t(cta) * units + pass * upp + ulp;
    if (r >= n || pass * upp + ulp >= units || j >= H) return;
    const T* p = smem + part_off() + (int64_t(ulp) * B + r) * (kPersistSplit + 1);
    T sum = T(0);
    for (int i = 0; i < kPersistSplit; ++i) sum += p[i];
    const int64_t u = r * H + j;
    if (!to_drh) {
      dh[u] = carry ? dh[u] + sum : sum;
      return;
    }
    drh[u] = sum;
    BwdStep<C, T> k = step;
    k.row0 = rowstart[s];
    k.phase = 1;
    k(u);
  }
};

// The host build's launch: every block's shared memory lives for the whole run; each grid
// barrier is the end of a loop over all blocks, each block barrier the end of a loop over its
// threads.
template <class C, typename T>
void run_persistent_on_host(const PersistFwd<C, T>& p) {
  std::vector<std::vector<T>> smem(p.ctas, std::vector<T>(size_t(p.smem_elems)));
  for (int b = 0; b < p.ctas; ++b)
    for (int t = 0; t < p.threads; ++t) p.load_weights(b, t, smem[b].data());
  for (int64_t s = 0; s < p.steps; ++s)
    for (int phase = 0; phase < C::kPhases; ++phase) {
      for (int b = 0; b < p.ctas; ++b) {
        T* sm = smem[b].data();
        for (int t = 0; t < p.threads; ++t) p.stage(s, phase, t, sm);
        for (int pass = 0; pass < p.passes; ++pass) {
          for (int t = 0; t < p.threads; ++t) p.dots(b, s, phase, pass, t, sm);
          for (int t = 0; t < p.threads; ++t) p.finish(b, s, phase, pass, t, sm);
        }
      }
      // grid barrier
    }
}

template <class C, typename T>
void persistent_product_on_host(const PersistBwd<C, T>& p, std::vector<std::vector<T>>& smem,
                                int64_t s, bool to_drh) {
  int g0;
  const int ng = p.product_gates(to_drh, &g0);
  for (int b = 0; b < p.ctas; ++b) {
    T* sm = smem[b].data();
    for (int pass = 0; pass < p.passes; ++pass) {
      for (int g = g0; g < g0 + ng; ++g) {
        for (int t = 0; t < p.threads; ++t) p.stage(s, g, t, sm);
        for (int t = 0; t < p.threads; ++t) p.dots(b, s, g, g == g0, pass, t, sm);
      }
      for (int t = 0; t < p.threads; ++t) p.finish(b, s, to_drh, pass, t, sm);
    }
  }
}

template <class C, typename T>
void run_persistent_on_host(const PersistBwd<C, T>& p) {
  std::vector<std::vector<T>> smem(p.ctas, std::vector<T>(size_t(p.smem_elems)));
  for (int b = 0; b < p.ctas; ++b)
    for (int t = 0; t < p.threads; ++t) p.load_weights(b, t, smem[b].data());
  for (int64_t s = p.steps - 1; s >= 0; --s) {
    for (int b = 0; b < p.ctas; ++b)
      for (int t = 0; t < p.threads; ++t) p.pointwise(b, s, t);
    // grid barrier
    if constexpr (PersistBwd<C, T>::two_phase) {
      persistent_product_on_host(p, smem, s, true);
      // grid barrier
    }
    persistent_product_on_host(p, smem, s, false);
  }
}

#if defined(__CUDACC__)
template <class C, typename T>
__global__ void __launch_bounds__(kPersistMaxThreads)
    persistent_forward_kernel(PersistFwd<C, T> p) {
  extern __shared__ __align__(16) unsigned char persist_smem[];
  T* smem = reinterpret_cast<T*>(persist_smem);
  cooperative_groups::grid_group grid = cooperative_groups::this_grid();
  const int cta = blockIdx.x, tid = threadIdx.x;
  p.load_weights(cta, tid, smem);  // the first stage's barrier orders it before the dots
  for (int64_t s = 0; s < p.steps; ++s)
    for (int phase = 0; phase < C::kPhases; ++phase) {
      p.stage(s, phase, tid, smem);
      __syncthreads();
      for (int pass = 0; pass < p.passes; ++pass) {
        p.dots(cta, s, phase, pass, tid, smem);
        __syncthreads();
        p.finish(cta, s, phase, pass, tid, smem);
        __syncthreads();
      }
      grid.sync();  // h_s (or r * h_{s-1}) complete in global memory for every block
    }
}

template <class C, typename T>
__device__ void persistent_product(const PersistBwd<C, T>& p, int cta, int64_t s, bool to_drh,
                                   int tid, T* smem) {
  int g0;
  const int ng = p.product_gates(to_drh, &g0);
  for (int pass = 0; pass < p.passes; ++pass) {
    for (int g = g0; g < g0 + ng; ++g) {
      p.stage(s, g, tid, smem);
      __syncthreads();
      p.dots(cta, s, g, g == g0, pass, tid, smem);
      __syncthreads();
    }
    p.finish(cta, s, to_drh, pass, tid, smem);
    __syncthreads();
  }
}

template <class C, typename T>
__global__ void __launch_bounds__(kPersistMaxThreads)
    persistent_backward_kernel(PersistBwd<C, T> p) {
  extern __shared__ __align__(16) unsigned char persist_smem[];
  T* smem = reinterpret_cast<T*>(persist_smem);
  cooperative_groups::grid_group grid = cooperative_groups::this_grid();
  const int cta = blockIdx.x, tid = threadIdx.x;
  p.load_weights(cta, tid, smem);  // the first stage's barrier orders it before the dots
  for (int64_t s = p.steps - 1; s >= 0; --s) {
    p.pointwise(cta, s, tid);
    grid.sync();  // dG_s complete for every unit
    if constexpr (PersistBwd<C, T>::two_phase) {
      persistent_product(p, cta, s, true, tid, smem);
      grid.sync();  // da_r complete
    }
    persistent_product(p, cta, s, false, tid, smem);  // ends with a block barrier
  }
}

// Allows the kernel the device's whole opt-in shared memory (`allow`: the same value on every
// call, so threads planning different layers at once cannot lower it under each other's launch)
// and says how many blocks of the plan fit on one multiprocessor.
template <class C, typename T>
cudaError_t persistent_blocks_per_sm(const gpu::PersistentPlan& plan, bool backward, int64_t allow,
                                     int* blocks) {
  *blocks = 0;
  const void* kernel = backward ? reinterpret_cast<const void*>(persistent_backward_kernel<C, T>)
                                : reinterpret_cast<const void*>(persistent_forward_kernel<C, T>);
  cudaError_t e =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(allow));
  if (e != cudaSuccess) return e;
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, kernel, plan.threads,
                                                       size_t(plan.shared_bytes));
}

template <class C, typename T>
cudaError_t persistent_launch(const PersistFwd<C, T>& p, cudaStream_t stream) {
  PersistFwd<C, T> arg = p;
  void* args[] = {&arg};
  return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(persistent_forward_kernel<C, T>),
                                     dim3(unsigned(p.ctas)), dim3(unsigned(p.threads)), args,
                                     size_t(p.smem_elems) * sizeof(T), stream);
}

template <class C, typename T>
cudaError_t persistent_launch(const PersistBwd<C, T>& p, cudaStream_t stream) {
  PersistBwd<C, T> arg = p;
  void* args[] = {&arg};
  return cudaLaunchCooperativeKernel(
      reinterpret_cast<const void*>(persistent_backward_kernel<C, T>), dim3(unsigned(p.ctas)),
      dim3(unsigned(p.threads)), args, size_t(p.smem_elems) * sizeof(T), stream);
}
#endif

}  // namespace gpu_kernels

namespace gpu {

// The launch shape for a layer of cell C on a device; `fits` false with the reason when it cannot
// run.
template <class C>
PersistentPlan plan_persistent(int64_t H, int64_t B, int itemsize, const PersistentDevice& d,
                               bool backward = false) {
  using namespace gpu_kernels;
  PersistentPlan p;
  constexpr int64_t G = C::kGates, ngmax = max_phase_gates<C>();
  if (B > kPersistMaxRows) {
    p.reason = "B=" + std::to_string(B) + " rows; the persistent kernel takes at most " +
               std::to_string(kPersistMaxRows);
    return p;
  }
  if (!d.cooperative) {
    p.reason = "the device does not support cooperative launches";
    return p;
  }
  if (d.multiprocessors < 1) {
    p.reason = "the device reports no multiprocessors";
    return p;
  }
  // One block per multiprocessor at most, so that all blocks are resident (the grid barrier
  // needs them to be); the fewest units per block that covers H.
  const int64_t units = (H + d.multiprocessors - 1) / d.multiprocessors;
  const int64_t upp = std::min<int64_t>(units, kPersistUnitsPerPass);
  p.units = int(std::min<int64_t>(units, 1 << 30));
  p.ctas = int((H + units - 1) / units);
  p.threads = int(upp * kPersistSplit);
  p.passes = int((units + upp - 1) / upp);
  // the same shared memory in both directions, but for the partial sums (one product per
  // unit in backward, one per gate in forward)
  const int64_t w = G * units * H, hs = B * H;
  const int64_t part = upp * (backward ? 1 : ngmax) * B * (kPersistSplit + 1);
  p.shared_bytes = (w + hs + part) * itemsize;
  if (p.shared_bytes > d.shared_per_block) {
    auto kib = [](int64_t b) { return std::to_string((b + 1023) / 1024) + " KiB"; };
    p.reason = "needs " + kib(p.shared_bytes) + " of shared memory per block (W_hh " +
               (backward ? "columns" : "rows") + " of " + std::to_string(units) + " units x " +
               std::to_string(G) + " gates x H=" + std::to_string(H) + ": " + kib(w * itemsize) +
               ", B rows of h: " + kib(hs * itemsize) + ", partial sums: " + kib(part * itemsize) +
               "; " + std::to_string(p.ctas) + " blocks on " + std::to_string(d.multiprocessors) +
               " multiprocessors); the device allows " + kib(d.shared_per_block);
    return p;
  }
  p.fits = true;
  return p;
}

// Picks the path for a forward (or backward) recurrence of cell C: mode 1 (forced on) throws
// with the reason when the persistent kernel cannot run; mode 0 never runs it; mode -1 (auto)
// runs it wherever it fits. The backward inherits the mode of its forward.
template <class C, typename T, class Exec>
PersistentPlan choose_persistent(const Exec& ex, int64_t H, int64_t B, int mode,
                                 bool backward = false) {
  PersistentPlan p;
  if (mode == 0) {
    p.reason = "turned off";
    return p;
  }
  const PersistentDevice d = ex.persistent_device();
  p = plan_persistent<C>(H, B, int(sizeof(T)), d, backward);
  if (p.fits) {
    const int per_sm = ex.template persistent_blocks_per_sm<C, T>(p, backward);
    if (int64_t(per_sm) * d.multiprocessors < p.ctas) {
      p.fits = false;
      p.reason = std::to_string(p.ctas) + " blocks of " + std::to_string(p.threads) +
                 " threads and " + std::to_string(p.shared_bytes) +
                 " bytes of shared memory cannot all be resident (" + std::to_string(per_sm) +
                 " per multiprocessor)";
    }
  }
  if (!p.fits && mode == 1)
    throw std::invalid_argument(
        std::string("persistent: the persistent kernel was asked for (persistent='on' or "
                    "FASTRNN_CUDA_PERSISTENT=1) but cannot run this layer") +
        (backward ? "'s backward: " : ": ") + p.reason);
  return p;
}

// The forward recurrence of sequence_forward as one persistent launch. `f` is the standard
// path's FwdStep with its per-layer fields set; hb, hh, hn are its state and product buffers
// (hb[0] holding h0 in sorted rows); step_sizes is device scratch of 2 * T + 1 int64.
template <class C, class Exec, typename T>
void persistent_forward(const Exec& ex, const PersistentPlan& plan,
                        const gpu_kernels::FwdStep<C, T>& f, T* const hb[2], T* hh, T* hn,
                        const T* w_hh, const std::vector<int64_t>& active,
                        const std::vector<int64_t>& rowstart, int64_t B, int64_t* step_sizes) {
  const int64_t Tn = int64_t(active.size());
  std::vector<int64_t> m(size_t(2 * Tn + 1), 0);
  std::copy(active.begin(), active.end(), m.begin());  // m[Tn] = 0: no rows after the last step
  std::copy(rowstart.begin(), rowstart.begin() + Tn, m.begin() + Tn + 1);
  ex.upload(step_sizes, m.data(), sizeof(int64_t) * m.size());
  gpu_kernels::PersistFwd<C, T> p;
  p.step = f;
  p.hb[0] = hb[0];
  p.hb[1] = hb[1];
  p.hh = hh;
  p.hn = hn;
  p.w_hh = w_hh;
  p.active = step_sizes;
  p.rowstart = step_sizes + Tn + 1;
  p.steps = 0;  // rows run a prefix of the steps (lengths >= 1, sorted)
  while (p.steps < Tn && active[size_t(p.steps)] > 0) ++p.steps;
  p.H = f.H;
  p.B = B;
  p.units = plan.units;
  p.upp = plan.threads / gpu_kernels::kPersistSplit;
  p.passes = plan.passes;
  p.ctas = plan.ctas;
  p.threads = plan.threads;
  p.smem_elems = plan.shared_bytes / int64_t(sizeof(T));
  ex.persistent_run(p);
}

// The backward recurrence of sequence_backward as one persistent launch. `k` is the standard
// path's BwdStep with its per-layer fields set; dh holds dh_n in sorted rows; dg is the hidden
// side's gate gradients (dgh). Whether dh (+)= dG W_hh adds is the cell's C::kCarry.
template <class C, class Exec, typename T>
void persistent_backward(const Exec& ex, const PersistentPlan& plan,
                         const gpu_kernels::BwdStep<C, T>& k, T* dh, T* drh, const T* dg,
                         const T* w_hh, const std::vector<int64_t>& active,
                         const std::vector<int64_t>& rowstart, int64_t B, int64_t* step_sizes) {
  const int64_t Tn = int64_t(active.size());
  std::vector<int64_t> m(size_t(2 * Tn + 1), 0);
  std::copy(active.begin(), active.end(), m.begin());
  std::copy(rowstart.begin(), rowstart.begin() + Tn, m.begin() + Tn + 1);
  ex.upload(step_sizes, m.data(), sizeof(int64_t) * m.size());
  gpu_kernels::PersistBwd<C, T> p;
  p.step = k;
  p.dh = dh;
  p.drh = drh;
  p.dg = dg;
  p.w_hh = w_hh;
  p.active = step_sizes;
  p.rowstart = step_sizes + Tn + 1;
  p.steps = 0;
  while (p.steps < Tn && active[size_t(p.steps)] > 0) ++p.steps;
  p.H = k.H;
  p.B = B;
  p.units = plan.units;
  p.upp = plan.threads / gpu_kernels::kPersistSplit;
  p.passes = plan.passes;
  p.ctas = plan.ctas;
  p.threads = plan.threads;
  p.smem_elems = plan.shared_bytes / int64_t(sizeof(T));
  ex.persistent_run(p);
}

}  // namespace gpu
}  // namespace fastrnn
