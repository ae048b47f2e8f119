// sequence.h: whole-sequence forward and backward through time of the GPU path, written once
// over an executor `Exec` that owns memory and runs kernels: DeviceExec (runtime_cuda.cu) launches
// them on the GPU, HostExec (runtime_host.cpp) runs the same kernel bodies on the CPU.
//
// Forward:   Xg[R, I] = x gathered into packed rows (only steps a sequence runs)
//            XP[R, G*H] = Xg W_ih^T + biases                                (one product)
//            per step s: HH[n, G*H] = h_{s-1} W_hh^T (n = sequences still running)
//                        FwdStep: gates, h_s, c_s, y, h_n at each row's last step, cache
//            (reset-before GRU: HH for r, z; FwdStep half 1; HN = (r h) W_hn^T; FwdStep half 2)
//            or, B <= 8 where it fits, all steps in one persistent launch (persistent.h)
// Backward:  per step s from the last: BwdStep (gate gradients dG into packed rows, dc_{s-1},
//            the direct part of dh_{s-1}), then dh_{s-1} (+)= dG_s W_hh      (one product)
//            (B <= 8 where it fits: all steps in one persistent launch, persistent.h)
//            after the loop: dXg = dG W_ih (scattered into dx), dW_ih = dG^T Xg,
//            dW_hh = dG^T H_prev, db = column sums of dG, dpeep = column dots with c
//
// Lengths: the batch is sorted by decreasing length on the host (stable), so the rows running at
// step s are sorted rows [0, n_s) and every product covers exactly those; padded steps have no
// packed rows and are never computed. All sums run in a fixed order: results are deterministic.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/gemm.h"
#include "cuda/persistent.h"
#include "cuda/pointwise.h"
#include "cuda/runtime.h"
#include "fastrnn.h"

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

// The saved state of a training forward, in device memory.
template <class Exec, typename T>
struct SeqContext {
  std::vector<int64_t> active;    // [T] sequences running at step s
  std::vector<int64_t> rowstart;  // [T + 1] packed row of (s, 0)
  Buf<Exec, int64_t> order;       // [B] sorted row -> batch row
  Buf<Exec, int64_t> row_t, row_b;  // [R] time and batch index of each packed row
  Buf<Exec, T> xg;                // [R, I] the input in packed rows
  Buf<Exec, T> cache;             // [R, cw * H]
  int64_t rows = 0;               // R
  int persistent = -1;            // the forward's ForwardIO::persistent, for the backward
};

template <class Exec, typename T>
void run_gemm(const Exec& ex, const gpu_kernels::GemmArgs<T>& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.m <= gpu_kernels::GemmSmall::BM)
    ex.template gemm<T, gpu_kernels::GemmSmall>(g);
  else
    ex.template gemm<T, gpu_kernels::GemmLarge>(g);
}

template <typename T>
gpu_kernels::GemmArgs<T> gemm_args(T* c, int64_t ldc, const T* a, int64_t lda, bool ta, const T* b,
                                   int64_t ldb, bool tb, int64_t m, int64_t n, int64_t k,
                                   bool accumulate = false, const T* bias = nullptr) {
  gpu_kernels::GemmArgs<T> g;
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

template <class Exec, typename T>
std::shared_ptr<SeqContext<Exec, T>> sequence_forward(const Exec& ex, const Weights<T>& w,
                                                      const ForwardIO<T>& io,
                                                      const int64_t* lengths, bool reverse,
                                                      bool training) {
  using namespace gpu_kernels;
  const Cell cell = w.cell;
  const int64_t Tn = io.steps, B = io.batch, I = w.input, H = w.hidden;
  const int64_t G = num_gates(cell), GH = G * H, cw = cache_width(cell);
  const bool rb = cell == Cell::kGruResetBefore, lstm = cell == Cell::kLstm;
  if (Tn < 1 || B < 1) throw std::invalid_argument("x: T and B must be >= 1");
  const PersistentPlan persist = choose_persistent<T>(ex, cell, H, B, io.persistent);

  // Sorting and the packed-row maps, on the host.
  auto ctx = std::make_shared<SeqContext<Exec, T>>();
  std::vector<int64_t> order(B);
  std::iota(order.begin(), order.end(), int64_t(0));
  if (lengths) {
    for (int64_t b = 0; b < B; ++b)
      if (lengths[b] < 1 || lengths[b] > Tn)
        throw std::invalid_argument("lengths: every length must be in [1, T=" +
                                    std::to_string(Tn) + "], got " + std::to_string(lengths[b]));
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  }
  auto len_of = [&](int64_t b) { return lengths ? lengths[b] : Tn; };
  ctx->active.assign(Tn, 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < len_of(b); ++s) ctx->active[s]++;
  ctx->rowstart.assign(Tn + 1, 0);
  for (int64_t s = 0; s < Tn; ++s) ctx->rowstart[s + 1] = ctx->rowstart[s] + ctx->active[s];
  const int64_t R = ctx->rowstart[Tn];
  ctx->rows = R;
  ctx->persistent = io.persistent;
  std::vector<int64_t> row_t(R), row_b(R);
  for (int64_t s = 0; s < Tn; ++s)
    for (int64_t sb = 0; sb < ctx->active[s]; ++sb) {
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
  ctx->xg = Buf<Exec, T>(ex, size_t(R * I));
  ex.for_each(GatherRows<T>{ctx->xg.get(), io.x, ctx->row_t.get(), ctx->row_b.get(), io.x_st,
                            io.x_sb, I},
              R * I);
  Buf<Exec, T> xp(ex, size_t(R * GH));
  run_gemm(ex, gemm_args<T>(xp.get(), GH, ctx->xg.get(), I, false, w.w_ih, I, true, R, GH, I,
                            false, w.bias_x));
  if (!training) ctx->xg.reset();

  // State in sorted rows.
  Buf<Exec, T> hbuf0(ex, size_t(B * H)), hbuf1(ex, size_t(B * H));
  Buf<Exec, T> c(ex, lstm ? size_t(B * H) : 0);
  Buf<Exec, T> rh(ex, rb ? size_t(B * H) : 0), z(ex, rb ? size_t(B * H) : 0);
  const int64_t ldhh = rb ? 2 * H : GH;
  Buf<Exec, T> hh(ex, size_t(B * ldhh)), hn(ex, rb ? size_t(B * H) : 0);
  ex.for_each(PermuteRows<T>{hbuf0.get(), io.h0, ctx->order.get(), H, true}, B * H);
  if (lstm) ex.for_each(PermuteRows<T>{c.get(), io.c0, ctx->order.get(), H, true}, B * H);
  if (training) ctx->cache = Buf<Exec, T>(ex, size_t(R * cw * H));

  FwdStep<T> f;
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
  f.b_hn = cell == Cell::kGru ? w.b_hn : nullptr;
  f.peep = lstm ? w.peep : nullptr;
  f.y_st = io.y_st;
  f.y_sb = io.y_sb;
  f.H = H;
  f.GH = GH;
  f.cw = cw;
  f.cell = cell;
  T* hb[2] = {hbuf0.get(), hbuf1.get()};
  if (persist.fits) {  // all steps in one launch
    Buf<Exec, int64_t> step_sizes(ex, size_t(2 * Tn + 1));
    persistent_forward(ex, persist, f, hb, hh.get(), hn.get(), w.w_hh, ctx->active, ctx->rowstart,
                       B, step_sizes.get());
    return ctx;
  }
  for (int64_t s = 0; s < Tn; ++s) {
    const int64_t n = ctx->active[s];
    if (n == 0) continue;
    const T* hp = hb[s & 1];
    f.h = hb[(s + 1) & 1];
    f.h_prev = hp;
    f.row0 = ctx->rowstart[s];
    f.n_next = s + 1 < Tn ? ctx->active[s + 1] : 0;
    // HH = h_{s-1} W_hh^T (the (r, z) rows only for the reset-before GRU)
    run_gemm(ex, gemm_args<T>(hh.get(), ldhh, hp, H, false, w.w_hh, H, true, n, ldhh, H));
    f.hh = hh.get();
    f.ldhh = ldhh;
    f.phase = 0;
    ex.for_each(f, n * H);
    if (rb) {  // HN = (r h_{s-1}) W_hn^T
      run_gemm(ex, gemm_args<T>(hn.get(), H, rh.get(), H, false, w.w_hh + 2 * H * H, H, true, n,
                                H, H));
      f.hh = hn.get();
      f.ldhh = H;
      f.phase = 1;
      ex.for_each(f, n * H);
    }
  }
  return ctx;
}

template <class Exec, typename T>
void sequence_backward(const Exec& ex, const Weights<T>& w, const Context& meta,
                       const SeqContext<Exec, T>& ctx, const BackwardIO<T>& io) {
  using namespace gpu_kernels;
  const Cell cell = w.cell;
  const int64_t Tn = meta.steps, B = meta.batch, I = w.input, H = w.hidden;
  const int64_t G = num_gates(cell), GH = G * H, cw = cache_width(cell), R = ctx.rows;
  const bool rb = cell == Cell::kGruResetBefore, lstm = cell == Cell::kLstm;
  const bool gru = cell == Cell::kGru;

  Buf<Exec, T> dgi(ex, size_t(R * GH)), dgh_own(ex, gru ? size_t(R * GH) : 0);
  T* dgh = gru ? dgh_own.get() : dgi.get();
  Buf<Exec, T> dh(ex, size_t(B * H)), dc(ex, lstm ? size_t(B * H) : 0);
  Buf<Exec, T> drh(ex, rb ? size_t(B * H) : 0);
  ex.for_each(PermuteRows<T>{dh.get(), io.dh_n, ctx.order.get(), H, true}, B * H);
  if (lstm) ex.for_each(PermuteRows<T>{dc.get(), io.dc_n, ctx.order.get(), H, true}, B * H);

  BwdStep<T> k;
  k.dgi = dgi.get();
  k.dgh = dgh;
  k.dh = dh.get();
  k.dc = dc.get();
  k.cache = ctx.cache.get();
  k.dy = io.dy;
  k.drh = drh.get();
  k.row_t = ctx.row_t.get();
  k.row_b = ctx.row_b.get();
  k.peep = lstm ? w.peep : nullptr;
  k.dy_st = io.dy_st;
  k.dy_sb = io.dy_sb;
  k.H = H;
  k.GH = GH;
  k.cw = cw;
  k.cell = cell;
  const int64_t K = rb ? 2 * H : GH;  // depth of dh = dG W_hh
  const bool carry = gru || rb;       // dh already holds the direct part
  const PersistentPlan persist = choose_persistent<T>(ex, cell, H, B, ctx.persistent, true);
  if (persist.fits) {  // all steps in one launch
    Buf<Exec, int64_t> step_sizes(ex, size_t(2 * Tn + 1));
    persistent_backward(ex, persist, k, dh.get(), drh.get(), dgh, w.w_hh, carry, ctx.active,
                        ctx.rowstart, B, step_sizes.get());
  }
  for (int64_t s = persist.fits ? -1 : Tn - 1; s >= 0; --s) {  // the per-step path
    const int64_t n = ctx.active[s];
    if (n == 0) continue;
    const int64_t row0 = ctx.rowstart[s];
    k.row0 = row0;
    k.phase = 0;
    ex.for_each(k, n * H);
    if (rb) {  // drh = da_n W_hn, then r's gradient
      run_gemm(ex, gemm_args<T>(drh.get(), H, dgi.get() + row0 * GH + 2 * H, GH, false,
                                w.w_hh + 2 * H * H, H, false, n, H, H));
      k.phase = 1;
      ex.for_each(k, n * H);
    }
    run_gemm(ex, gemm_args<T>(dh.get(), H, dgh + row0 * GH, GH, false, w.w_hh, H, false, n, H, K,
                              carry));
  }
  if (io.dh0) ex.for_each(PermuteRows<T>{io.dh0, dh.get(), ctx.order.get(), H, false}, B * H);
  if (lstm && io.dc0)
    ex.for_each(PermuteRows<T>{io.dc0, dc.get(), ctx.order.get(), H, false}, B * H);

  // Products over all steps.
  if (io.dx) {
    Buf<Exec, T> dxg(ex, size_t(R * I));
    run_gemm(ex, gemm_args<T>(dxg.get(), I, dgi.get(), GH, false, w.w_ih, I, false, R, I, GH));
    ex.for_each(ScatterRows<T>{io.dx, dxg.get(), ctx.row_t.get(), ctx.row_b.get(), io.dx_st,
                               io.dx_sb, I, io.dx_accumulate},
                R * I);
  }
  if (io.dw_ih)
    run_gemm(ex, gemm_args<T>(io.dw_ih, I, dgi.get(), GH, true, ctx.xg.get(), I, false, GH, I, R));
  if (io.dw_hh) {
    const T* h_prev = ctx.cache.get();  // cache column 0
    if (rb) {
      run_gemm(ex, gemm_args<T>(io.dw_hh, H, dgi.get(), GH, true, h_prev, cw * H, false, 2 * H, H,
                                R));
      // W_hn's input is rh (cache column 4)
      run_gemm(ex, gemm_args<T>(io.dw_hh + 2 * H * H, H, dgi.get() + 2 * H, GH, true,
                                h_prev + 4 * H, cw * H, false, H, H, R));
    } else {
      run_gemm(ex, gemm_args<T>(io.dw_hh, H, dgh, GH, true, h_prev, cw * H, false, GH, H, R));
    }
  }
  if (io.db_ih) ex.for_each(ColumnDot<T>{io.db_ih, dgi.get(), nullptr, R, GH, 0}, GH);
  if (io.db_hh) ex.for_each(ColumnDot<T>{io.db_hh, dgh, nullptr, R, GH, 0}, GH);
  if (lstm && io.dpeep) {
    const T* cache = ctx.cache.get();
    // i and f see c_prev (cache column 6), o sees c (column 5)
    ex.for_each(ColumnDot<T>{io.dpeep, dgi.get(), cache + 6 * H, R, GH, cw * H}, H);
    ex.for_each(ColumnDot<T>{io.dpeep + H, dgi.get() + H, cache + 6 * H, R, GH, cw * H}, H);
    ex.for_each(ColumnDot<T>{io.dpeep + 2 * H, dgi.get() + 3 * H, cache + 5 * H, R, GH, cw * H},
                H);
  }
}

// The entry points of runtime.h, for one executor.
template <class Exec, typename T>
Context run_forward(const Exec& ex, int device, const Weights<T>& w, const ForwardIO<T>& io,
                    const int64_t* lengths, bool reverse, bool training) {
  auto seq = sequence_forward(ex, w, io, lengths, reverse, training);
  Context c;
  c.cell = w.cell;
  c.steps = io.steps;
  c.batch = io.batch;
  c.input = w.input;
  c.hidden = w.hidden;
  c.reverse = reverse;
  c.device = device;
  c.itemsize = int(sizeof(T));
  if (training) c.impl = seq;
  return c;
}

template <class Exec, typename T>
void run_backward(const Exec& ex, const Weights<T>& w, const Context& c, const BackwardIO<T>& io) {
  if (!c.impl || c.itemsize != int(sizeof(T)))
    throw std::invalid_argument("ctx: not the context of a training forward of this dtype");
  if (c.cell != w.cell || c.input != w.input || c.hidden != w.hidden)
    throw std::invalid_argument("ctx: it comes from a different layer");
  const auto& seq = *static_cast<const SeqContext<Exec, T>*>(c.impl.get());
  sequence_backward(ex, w, c, seq, io);
}

}  // namespace gpu
}  // namespace fastrnn
