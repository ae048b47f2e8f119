// sequence.h: whole-sequence forward and backward through time of the GPU path, written once
// over an executor `Exec` that owns memory and runs kernels: DeviceExec (runtime_cuda.cu) launches
// them on the GPU, HostExec (runtime_host.cpp) runs the same kernel bodies on the CPU.
//
// Forward:   Xg[R, I] = x gathered into packed rows (only steps a sequence runs)
//            XP[R, G*H] = Xg W_ih^T + biases                                (one product)
//            per step s: HH[n, G*H] = h_{s-1} W_hh^T (n = sequences still running)
//                        FwdStep: gates, h_s, c_s, y, h_n at each row's last step, cache
//            (a two-phase cell, the reset-before GRU: HH for r, z; FwdStep phase 0;
//             HN = (r h) W_hn^T; FwdStep phase 1)
//            or, B <= 8 where it fits, all steps in one persistent launch (persistent.h)
// Backward:  per step s from the last: BwdStep (gate gradients dG into packed rows, dc_{s-1},
//            the direct part of dh_{s-1}), then dh_{s-1} (+)= dG_s W_hh      (one product)
//            (B <= 8 where it fits: all steps in one persistent launch, persistent.h)
//            after the loop: dXg = dG W_ih (scattered into dx), dW_ih = dG^T Xg,
//            dW_hh = dG^T H_prev, db = column sums of dG, dpeep = column dots with c
//
// The drivers are templates over the cell type C (cells/*.h; run_forward and run_backward pick it
// with cells::with_cell once per call), so gate counts, the cache width, the phases and the bias
// rule are compile-time constants here and in every kernel launched (FwdStep<C>, BwdStep<C>,
// the persistent kernels).
//
// Lengths: the batch is sorted by decreasing length on the host (stable), so the rows running at
// step s are sorted rows [0, n_s) and every product covers exactly those; padded steps have no
// packed rows and are never computed. The sorting is the forward's LengthsPlan
// (lengths_plan.h), made once for all layers and directions and kept by a training forward for
// its backward. All sums run in a fixed order: results are deterministic.
//
// Storage and compute (cuda/half.h): T below is the storage type of the caller's arrays and the
// weights, A = accum_t<T> the type everything inside runs in. For float and double A is T. For
// bfloat16 / float16 A is float: every internal buffer is float - the gathered input Xg (an exact
// widening of x), the input projection, the state h and c carried between steps, the training
// cache, the gate gradients dG and the dh / dc carried backward - and a value is rounded only as
// it is written to an output (y, h_n, c_n, dx, dh0, dc0, the weight gradients). So a 16-bit run
// computes exactly what the float32 run computes on the widened inputs and weights, and its
// outputs are that run's outputs rounded once. Memory: the cache and dG cost what they cost in
// float32 (4 bytes x cw*H and x G*H per packed row), and Xg costs 4 bytes per input element
// instead of 2; the 16-bit saving is in the inputs, outputs and weights.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cells/cells.h"
#include "cuda/gemm.h"
#include "cuda/half.h"
#include "cuda/persistent.h"
#include "cuda/pointwise.h"
#include "cuda/runtime.h"
#include "fastrnn.h"
#include "lengths_plan.h"

namespace fastrnn {
namespace gpu {

// A device buffer of n elements, freed (stream-ordered) with its owner.
template <class Exec, typename T>
class Buf {
 public:
  Buf() = default;
  Buf(const Exec& ex, size_t n) : ex_(ex), n_(n) {
    p_ = n ? static_cast<T*>(ex_.alloc(n * sizeof(T))) : nullptr;
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  Buf(Buf&& o) noexcept : ex_(o.ex_), p_(o.p_), n_(o.n_) { o.p_ = nullptr; }
  Buf& operator=(Buf&& o) noexcept {
    if (this != &o) {
      reset();
      ex_ = o.ex_;
      p_ = o.p_;
      n_ = o.n_;
      o.p_ = nullptr;
    }
    return *this;
  }
  ~Buf() { reset(); }
  void reset() {
    if (p_) ex_.release(p_);
    p_ = nullptr;
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  Exec ex_{};
  T* p_ = nullptr;
  size_t n_ = 0;
};

// The saved state of a training forward, in device memory (T the storage type).
template <class Exec, typename T>
struct SeqContext {
  using A = accum_t<T>;
  std::shared_ptr<const LengthsPlan> plan;  // plan->active[s]: sequences running at step s
  std::vector<int64_t> rowstart;            // [T + 1] packed row of (s, 0)
  Buf<Exec, int64_t> order;                 // [B] sorted row -> batch row
  Buf<Exec, int64_t> row_t, row_b;          // [R] time and batch index of each packed row
  Buf<Exec, A> xg;                          // [R, I] the input in packed rows
  Buf<Exec, A> cache;                       // [R, cw * H]
  int64_t rows = 0;                         // R
  int persistent = -1;                      // the forward's ForwardIO::persistent, for the backward
};

template <class Exec, typename T, typename TB>
void run_gemm(const Exec& ex, const gpu_kernels::GemmArgs<T, TB>& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.m <= gpu_kernels::GemmSmall::BM)
    ex.template gemm<T, gpu_kernels::GemmSmall>(g);
  else
    ex.template gemm<T, gpu_kernels::GemmLarge>(g);
}

template <typename T, typename TB>
gpu_kernels::GemmArgs<T, TB> gemm_args(T* c, int64_t ldc, const T* a, int64_t lda, bool ta,
                                       const TB* b, int64_t ldb, bool tb, int64_t m, int64_t n,
                                       int64_t k, bool accumulate = false,
                                       const T* bias = nullptr) {
  gpu_kernels::GemmArgs<T, TB> g;
  g.c = c;
  g.a = a;
  g.b = b;
  g.bias = bias;
  g.m = m;
  g.n = n;
  g.k = k;
  g.lda = lda;
  g.ldb = ldb;
  g.ldc = ldc;
  g.trans_a = ta;
  g.trans_b = tb;
  g.accumulate = accumulate;
  return g;
}

// The persistent kernel keeps float32 or float64 weights on chip; 16-bit storage runs the
// standard path (asking for the persistent kernel there is an error, as where it does not fit).
template <class C, typename T, class Exec>
PersistentPlan choose_persistent_for(const Exec& ex, int64_t H, int64_t B, int mode,
                                     bool backward = false) {
  if constexpr (std::is_same<T, accum_t<T>>::value) {
    return choose_persistent<C, T>(ex, H, B, mode, backward);
  } else {
    if (mode == 1)
      throw std::invalid_argument(
          "persistent: the persistent kernel runs float32 and float64 layers only, not 16-bit "
          "storage");
    PersistentPlan p;
    p.reason = "16-bit storage";
    return p;
  }
}

// plan: the forward's LengthsPlan, made for (io.batch, io.steps); null when every sequence runs
// all steps.
template <class C, class Exec, typename T>
std::shared_ptr<SeqContext<Exec, T>> sequence_forward(const Exec& ex, const Weights<T>& w,
                                                      const ForwardIO<T>& io,
                                                      std::shared_ptr<const LengthsPlan> plan,
                                                      bool reverse, bool training) {
  using namespace gpu_kernels;
  using A = accum_t<T>;
  constexpr bool two_phase = C::kPhases == 2, lstm = C::kCellState;
  constexpr int64_t G = C::kGates, cw = C::kCacheWidth;
  constexpr int64_t G0 = G - (C::kPhases - 1);  // gates of the first phase's product
  const int64_t Tn = io.steps, B = io.batch, I = w.input, H = w.hidden, GH = G * H;
  if (Tn < 1 || B < 1) throw std::invalid_argument("x: T and B must be >= 1");
  if (plan)
    check_plan(*plan, B, Tn);
  else
    plan = std::make_shared<const LengthsPlan>(lengths_plan(nullptr, B, Tn));
  const PersistentPlan persist = choose_persistent_for<C, T>(ex, H, B, io.persistent);

  // The packed-row maps, on the host.
  auto ctx = std::make_shared<SeqContext<Exec, T>>();
  ctx->plan = plan;
  const std::vector<int64_t>& order = plan->order;
  const std::vector<int64_t>& active = plan->active;
  const int64_t* lengths = plan->lengths();
  auto len_of = [&](int64_t b) { return lengths ? lengths[b] : Tn; };
  ctx->rowstart.assign(Tn + 1, 0);
  for (int64_t s = 0; s < Tn; ++s) ctx->rowstart[s + 1] = ctx->rowstart[s] + active[s];
  const int64_t R = ctx->rowstart[Tn];
  ctx->rows = R;
  ctx->persistent = io.persistent;
  std::vector<int64_t> row_t(R), row_b(R);
  for (int64_t s = 0; s < Tn; ++s)
    for (int64_t sb = 0; sb < active[s]; ++sb) {
      const int64_t b = order[sb], P = ctx->rowstart[s] + sb;
      row_t[P] = reverse ? len_of(b) - 1 - s : s;
      row_b[P] = b;
    }
  ctx->order = Buf<Exec, int64_t>(ex, B);
  ctx->row_t = Buf<Exec, int64_t>(ex, R);
  ctx->row_b = Buf<Exec, int64_t>(ex, R);
  ex.upload(ctx->order.get(), order.data(), sizeof(int64_t) * B);
  ex.upload(ctx->row_t.get(), row_t.data(), sizeof(int64_t) * R);
  ex.upload(ctx->row_b.get(), row_b.data(), sizeof(int64_t) * R);

  // Input projection of every packed row: XP = Xg W_ih^T + biases.
  ctx->xg = Buf<Exec, A>(ex, size_t(R * I));
  ex.for_each(GatherRows<A, T>{ctx->xg.get(), io.x, ctx->row_t.get(), ctx->row_b.get(), io.x_st,
                               io.x_sb, I},
              R * I);
  Buf<Exec, A> xp(ex, size_t(R * GH));
  run_gemm(ex, gemm_args<A>(xp.get(), GH, ctx->xg.get(), I, false, w.w_ih, I, true, R, GH, I, false,
                            w.bias_x));
  if (!training) ctx->xg.reset();

  // State in sorted rows.
  Buf<Exec, A> hbuf0(ex, size_t(B * H)), hbuf1(ex, size_t(B * H));
  Buf<Exec, A> c(ex, lstm ? size_t(B * H) : 0);
  Buf<Exec, A> rh(ex, two_phase ? size_t(B * H) : 0), z(ex, two_phase ? size_t(B * H) : 0);
  const int64_t ldhh = G0 * H;
  Buf<Exec, A> hh(ex, size_t(B * ldhh)), hn(ex, two_phase ? size_t(B * H) : 0);
  ex.for_each(PermuteRows<A, T>{hbuf0.get(), io.h0, ctx->order.get(), H, true}, B * H);
  if constexpr (lstm)
    ex.for_each(PermuteRows<A, T>{c.get(), io.c0, ctx->order.get(), H, true}, B * H);
  if (training) ctx->cache = Buf<Exec, A>(ex, size_t(R * cw * H));

  FwdStep<C, A, T> f;
  f.y = io.y;
  f.h_n = io.h_n;
  f.c_n = lstm ? io.c_n : nullptr;
  f.c = c.get();
  f.cache = ctx->cache.get();
  f.rh = rh.get();
  f.z = z.get();
  f.xp = xp.get();
  f.row_t = ctx->row_t.get();
  f.row_b = ctx->row_b.get();
  f.b_hn = C::kInnerBiasGate >= 0 ? w.b_hn : nullptr;
  f.peep = C::kPeephole ? w.peep : nullptr;
  f.y_st = io.y_st;
  f.y_sb = io.y_sb;
  f.H = H;
  f.GH = GH;
  A* hb[2] = {hbuf0.get(), hbuf1.get()};
  if constexpr (std::is_same<T, A>::value) {
    if (persist.fits) {  // all steps in one launch
      Buf<Exec, int64_t> step_sizes(ex, size_t(2 * Tn + 1));
      persistent_forward(ex, persist, f, hb, hh.get(), hn.get(), w.w_hh, active, ctx->rowstart, B,
                         step_sizes.get());
      return ctx;
    }
  }
  for (int64_t s = 0; s < Tn; ++s) {
    const int64_t n = active[s];
    if (n == 0) continue;
    const A* hp = hb[s & 1];
    f.h = hb[(s + 1) & 1];
    f.h_prev = hp;
    f.row0 = ctx->rowstart[s];
    f.n_next = s + 1 < Tn ? active[s + 1] : 0;
    // HH = h_{s-1} W_hh^T (the first phase's gates: r, z for the reset-before GRU)
    run_gemm(ex, gemm_args<A>(hh.get(), ldhh, hp, H, false, w.w_hh, H, true, n, ldhh, H));
    f.hh = hh.get();
    f.ldhh = ldhh;
    f.phase = 0;
    ex.for_each(f, n * H);
    if constexpr (two_phase) {  // HN = (r h_{s-1}) W_hn^T, the last gate
      run_gemm(
          ex, gemm_args<A>(hn.get(), H, rh.get(), H, false, w.w_hh + G0 * H * H, H, true, n, H, H));
      f.hh = hn.get();
      f.ldhh = H;
      f.phase = 1;
      ex.for_each(f, n * H);
    }
  }
  return ctx;
}

template <class C, class Exec, typename T>
void sequence_backward(const Exec& ex, const Weights<T>& w, const Context& meta,
                       const SeqContext<Exec, T>& ctx, const BackwardIO<T>& io) {
  using namespace gpu_kernels;
  using A = accum_t<T>;
  constexpr bool two_phase = C::kPhases == 2, lstm = C::kCellState;
  constexpr bool gru = C::kSeparateHidden;  // dG's hidden side differs (dgh)
  constexpr bool carry = C::kCarry;         // dh already holds the direct part
  constexpr int64_t G = C::kGates, cw = C::kCacheWidth;
  constexpr int64_t G0 = G - (C::kPhases - 1);  // gates of the first phase's product
  const int64_t Tn = meta.steps, B = meta.batch, I = w.input, H = w.hidden;
  const int64_t GH = G * H, R = ctx.rows;
  const std::vector<int64_t>& active = ctx.plan->active;

  Buf<Exec, A> dgi(ex, size_t(R * GH)), dgh_own(ex, gru ? size_t(R * GH) : 0);
  A* dgh = gru ? dgh_own.get() : dgi.get();
  Buf<Exec, A> dh(ex, size_t(B * H)), dc(ex, lstm ? size_t(B * H) : 0);
  Buf<Exec, A> drh(ex, two_phase ? size_t(B * H) : 0);
  ex.for_each(PermuteRows<A, T>{dh.get(), io.dh_n, ctx.order.get(), H, true}, B * H);
  if constexpr (lstm)
    ex.for_each(PermuteRows<A, T>{dc.get(), io.dc_n, ctx.order.get(), H, true}, B * H);

  BwdStep<C, A, T> k;
  k.dgi = dgi.get();
  k.dgh = dgh;
  k.dh = dh.get();
  k.dc = dc.get();
  k.cache = ctx.cache.get();
  k.dy = io.dy;
  k.drh = drh.get();
  k.row_t = ctx.row_t.get();
  k.row_b = ctx.row_b.get();
  k.peep = C::kPeephole ? w.peep : nullptr;
  k.dy_st = io.dy_st;
  k.dy_sb = io.dy_sb;
  k.H = H;
  k.GH = GH;
  const int64_t K = G0 * H;  // depth of dh = dG W_hh
  const PersistentPlan persist = choose_persistent_for<C, T>(ex, H, B, ctx.persistent, true);
  if constexpr (std::is_same<T, A>::value) {
    if (persist.fits) {  // all steps in one launch
      Buf<Exec, int64_t> step_sizes(ex, size_t(2 * Tn + 1));
      persistent_backward(ex, persist, k, dh.get(), drh.get(), dgh, w.w_hh, active, ctx.rowstart, B,
                          step_sizes.get());
    }
  }
  for (int64_t s = persist.fits ? -1 : Tn - 1; s >= 0; --s) {  // the per-step path
    const int64_t n = active[s];
    if (n == 0) continue;
    const int64_t row0 = ctx.rowstart[s];
    k.row0 = row0;
    k.phase = 0;
    ex.for_each(k, n * H);
    if constexpr (two_phase) {  // drh = da_n W_hn (the last gate), then r's gradient
      run_gemm(ex, gemm_args<A>(drh.get(), H, dgi.get() + row0 * GH + G0 * H, GH, false,
                                w.w_hh + G0 * H * H, H, false, n, H, H));
      k.phase = 1;
      ex.for_each(k, n * H);
    }
    run_gemm(ex, gemm_args<A>(dh.get(), H, dgh + row0 * GH, GH, false, w.w_hh, H, false, n, H, K,
                              carry));
  }
  if (io.dh0) ex.for_each(PermuteRows<T, A>{io.dh0, dh.get(), ctx.order.get(), H, false}, B * H);
  if (lstm && io.dc0)
    ex.for_each(PermuteRows<T, A>{io.dc0, dc.get(), ctx.order.get(), H, false}, B * H);

  // Products over all steps.
  if (io.dx) {
    Buf<Exec, A> dxg(ex, size_t(R * I));
    run_gemm(ex, gemm_args<A>(dxg.get(), I, dgi.get(), GH, false, w.w_ih, I, false, R, I, GH));
    ex.for_each(ScatterRows<T, A>{io.dx, dxg.get(), ctx.row_t.get(), ctx.row_b.get(), io.dx_st,
                                  io.dx_sb, I, io.dx_accumulate},
                R * I);
  }
  // Weight gradients are summed in A: in place when T is A, else in a scratch rounded after.
  constexpr bool in_place = std::is_same<T, A>::value;
  Buf<Exec, A> dw_sum(ex, in_place ? 0 : size_t(GH * std::max(I, H)));
  auto sum_into = [&](T* dw) { return in_place ? reinterpret_cast<A*>(dw) : dw_sum.get(); };
  auto round_out = [&](T* dw, int64_t count) {
    if constexpr (!in_place) ex.for_each(Convert<T, A>{dw, dw_sum.get()}, count);
  };
  if (io.dw_ih) {
    run_gemm(ex, gemm_args<A>(sum_into(io.dw_ih), I, dgi.get(), GH, true, ctx.xg.get(), I, false,
                              GH, I, R));
    round_out(io.dw_ih, GH * I);
  }
  if (io.dw_hh) {
    A* dw_hh = sum_into(io.dw_hh);
    const A* h_prev = ctx.cache.get() + C::kHPrev * H;
    if constexpr (two_phase) {
      run_gemm(ex,
               gemm_args<A>(dw_hh, H, dgi.get(), GH, true, h_prev, cw * H, false, G0 * H, H, R));
      // W_hn's input is r * h_prev (the cache's column kRh)
      run_gemm(ex, gemm_args<A>(dw_hh + G0 * H * H, H, dgi.get() + G0 * H, GH, true,
                                ctx.cache.get() + C::kRh * H, cw * H, false, H, H, R));
    } else {
      run_gemm(ex, gemm_args<A>(dw_hh, H, dgh, GH, true, h_prev, cw * H, false, GH, H, R));
    }
    round_out(io.dw_hh, GH * H);
  }
  if (io.db_ih) ex.for_each(ColumnDot<A, T>{io.db_ih, dgi.get(), nullptr, R, GH, 0}, GH);
  if (io.db_hh) ex.for_each(ColumnDot<A, T>{io.db_hh, dgh, nullptr, R, GH, 0}, GH);
  if constexpr (C::kPeephole) {
    if (io.dpeep) {  // i and f see c_prev, o sees c (cells/lstm.h)
      const A* c_prev = ctx.cache.get() + C::kCPrev * H;
      const A* c = ctx.cache.get() + C::kC * H;
      ex.for_each(ColumnDot<A, T>{io.dpeep, dgi.get(), c_prev, R, GH, cw * H}, H);
      ex.for_each(ColumnDot<A, T>{io.dpeep + H, dgi.get() + H, c_prev, R, GH, cw * H}, H);
      ex.for_each(ColumnDot<A, T>{io.dpeep + 2 * H, dgi.get() + 3 * H, c, R, GH, cw * H}, H);
    }
  }
}

// The entry points of runtime.h, for one executor: the one switch to the cell type, per call.
template <class Exec, typename T>
Context run_forward(const Exec& ex, int device, const Weights<T>& w, const ForwardIO<T>& io,
                    std::shared_ptr<const LengthsPlan> plan, bool reverse, bool training) {
  auto seq = cells::with_cell(w.cell, [&](auto c) {
    return sequence_forward<decltype(c)>(ex, w, io, std::move(plan), reverse, training);
  });
  Context c;
  c.cell = w.cell;
  c.steps = io.steps;
  c.batch = io.batch;
  c.input = w.input;
  c.hidden = w.hidden;
  c.reverse = reverse;
  c.device = device;
  c.itemsize = int(sizeof(T));
  c.storage = storage_id<T>();
  if (training) c.impl = seq;
  return c;
}

template <class Exec, typename T>
void run_backward(const Exec& ex, const Weights<T>& w, const Context& c, const BackwardIO<T>& io) {
  if (!c.impl || c.itemsize != int(sizeof(T)) || c.storage != storage_id<T>())
    throw std::invalid_argument("ctx: not the context of a training forward of this dtype");
  if (c.cell != w.cell || c.input != w.input || c.hidden != w.hidden)
    throw std::invalid_argument("ctx: it comes from a different layer");
  const auto& seq = *static_cast<const SeqContext<Exec, T>*>(c.impl.get());
  cells::with_cell(w.cell,
                   [&](auto cell) { sequence_backward<decltype(cell)>(ex, w, c, seq, io); });
}

}  // namespace gpu
}  // namespace fastrnn
