// layer.cpp: baseline-compiled glue between the layer objects and the ISA kernels: the lengths
// plan handed to them, scratch allocation, packed-weight caching. The arithmetic is all in isa/.
#include "cpu/layer.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <numeric>
#include <stdexcept>

#include "cpu/dispatch.h"

namespace fastrnn {

namespace {

// The scratch pool: blocks of at least kPooled bytes are kept after release, at most kBlocks of
// them and kBytes together (the oldest go first); smaller blocks are plain heap allocations.
constexpr size_t kPooled = size_t(1) << 20, kBlocks = 4, kBytes = size_t(1) << 29;
constexpr std::align_val_t kAlign{64};

struct ScratchPool {
  std::mutex mutex;
  std::vector<std::pair<void*, size_t>> free;  // oldest first
  size_t bytes = 0;
};

ScratchPool& scratch_pool() {
  static ScratchPool* pool = new ScratchPool;  // never destroyed: safe at interpreter exit
  return *pool;
}

}  // namespace

void* scratch_acquire(size_t& bytes) {
  if (bytes >= kPooled) {
    ScratchPool& pool = scratch_pool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    // the smallest block that fits without wasting more than half of itself
    size_t best = pool.free.size();
    for (size_t i = 0; i < pool.free.size(); ++i) {
      const size_t cap = pool.free[i].second;
      const bool fits = cap >= bytes && cap / 2 <= bytes;
      if (fits && (best == pool.free.size() || cap < pool.free[best].second)) best = i;
    }
    if (best < pool.free.size()) {
      void* p = pool.free[best].first;
      bytes = pool.free[best].second;
      pool.bytes -= bytes;
      pool.free.erase(pool.free.begin() + std::ptrdiff_t(best));
      return p;
    }
  }
  return ::operator new(bytes, kAlign);
}

void scratch_release(void* p, size_t bytes) noexcept {
  if (bytes >= kPooled && bytes <= kBytes) {
    ScratchPool& pool = scratch_pool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    pool.free.emplace_back(p, bytes);
    pool.bytes += bytes;
    while (pool.free.size() > kBlocks || pool.bytes > kBytes) {
      ::operator delete(pool.free.front().first, kAlign);
      pool.bytes -= pool.free.front().second;
      pool.free.erase(pool.free.begin());
    }
    return;
  }
  ::operator delete(p, kAlign);
}

namespace {
template <typename T>
std::vector<T> copy_of(const T* p, int64_t n) {
  return p ? std::vector<T>(p, p + n) : std::vector<T>();
}
template <typename T>
const T* ptr_or_null(const std::vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}
// The kernels' view of a plan: null pointers when every sequence runs all steps.
template <typename T>
void set_plan(SeqArgs<T>& a, const LengthsPlan* p) {
  const bool full = !p || !p->lengths();
  a.len = full ? nullptr : p->lengths();
  a.order = full ? nullptr : p->order.data();
  a.active = full ? nullptr : p->active.data();
}
}  // namespace

template <typename T>
Layer<T>::Layer(Cell cell, int64_t input, int64_t hidden, const T* w_ih, const T* w_hh,
                const T* b_ih, const T* b_hh, const T* peephole)
    : cell_(cell), input_(input), hidden_(hidden) {
  if (input < 1 || hidden < 1)
    throw std::invalid_argument("input_size and hidden_size must be >= 1");
  if (peephole && !cells::has_peephole(cell))
    throw std::invalid_argument("peephole: only the LSTM has peephole weights");
  const int64_t gh = num_gates(cell) * hidden;
  w_ih_ = copy_of(w_ih, gh * input);
  w_hh_ = copy_of(w_hh, gh * hidden);
  b_ih_ = copy_of(b_ih, gh);
  b_hh_ = copy_of(b_hh, gh);
  peep_ = copy_of(peephole, 3 * hidden);
}

template <typename T>
void Layer<T>::set_bf16(bool on) {
  if (on && sizeof(T) != 4) throw std::invalid_argument("bfloat16 inference needs a float32 layer");
  bf16_ = on;
}

template <typename T>
void Layer<T>::set_i8(bool on) {
  if (on && sizeof(T) != 4) throw std::invalid_argument("int8 inference needs a float32 layer");
  i8_ = on;
}

namespace {

// Symmetric per-row int8 quantization of w [rows, K]: s[r] = max_k |w[r][k]| / 127 and
// q[r][k] = round-half-even(w[r][k] / s[r]) in [-127, 127]; an all-zero row gets s = 0, q = 0.
template <typename T>
void quantize_rows(const std::vector<T>& w, int64_t rows, int64_t K, std::vector<int8_t>& q,
                   std::vector<float>& s) {
  q.assign(size_t(rows * K), 0);
  s.assign(size_t(rows), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = w.data() + r * K;
    float m = 0.0f;
    for (int64_t k = 0; k < K; ++k) m = std::max(m, std::fabs(float(row[k])));
    const float scale = m / 127.0f;
    s[size_t(r)] = scale;
    if (!(scale > 0.0f) || !std::isfinite(scale)) continue;
    for (int64_t k = 0; k < K; ++k) {
      const float v = std::nearbyint(float(row[k]) / scale);
      q[size_t(r * K + k)] = int8_t(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
    }
  }
}

}  // namespace

template <typename T>
std::shared_ptr<const PackedWeights<T>> Layer<T>::packed(const Kernels<T>& k, bool bf16, bool i8,
                                                         bool amx) const {
  i8 = i8 && k.pack_i8;
  bf16 = bf16 && !i8 && k.pack_bf16;
  amx = amx && k.pack_amx;
  std::lock_guard<std::mutex> lock(pack_mutex_);
  // The AMX tiles, once made, stay: a model that alternates autocast and float32 calls keeps them.
  if (packed_ && packed_->kernels == &k && packed_->bf16 == bf16 && packed_->i8 == i8 &&
      (packed_->amx || !amx))
    return packed_;
  amx = amx || (packed_ && packed_->kernels == &k && packed_->amx);
  auto p = std::make_shared<PackedWeights<T>>();
  p->kernels = &k;
  p->bf16 = bf16;
  p->i8 = i8;
  p->amx = amx;
  p->panels.assign(k.packed_size(cell_, input_, hidden_), T(0));
  k.pack(cell_, input_, hidden_, w_ih_.data(), w_hh_.data(), p->panels.data(), &p->views);
  if (bf16) {
    p->panels_bf16.assign(k.packed_bf16_size(cell_, input_, hidden_), 0);
    k.pack_bf16(cell_, input_, hidden_, w_ih_.data(), w_hh_.data(), p->panels_bf16.data(),
                &p->views);
  }
  if (amx) {
    p->panels_amx.assign(k.packed_amx_size(cell_, input_, hidden_), 0);
    k.pack_amx(cell_, input_, hidden_, w_ih_.data(), w_hh_.data(), p->panels_amx.data(), &p->views);
  }
  if (i8) {
    const int64_t gh = num_gates(cell_) * hidden_;
    std::vector<int8_t> q_ih, q_hh;
    std::vector<float> s_ih, s_hh;
    quantize_rows(w_ih_, gh, input_, q_ih, s_ih);
    quantize_rows(w_hh_, gh, hidden_, q_hh, s_hh);
    size_t n_scales = 0;
    p->panels_i8.assign(k.packed_i8_size(cell_, input_, hidden_, &n_scales), 0);
    p->scales_i8.assign(n_scales, 0.0f);
    k.pack_i8(cell_, input_, hidden_, q_ih.data(), q_hh.data(), s_ih.data(), s_hh.data(),
              p->panels_i8.data(), p->scales_i8.data(), &p->views);
  }
  packed_ = p;
  return p;
}

template <typename T>
SeqArgs<T> Layer<T>::base_args(const Kernels<T>& k, bool bf16, bool i8, bool use_reduced,
                               std::shared_ptr<const PackedWeights<T>>& hold, bool amx) const {
  SeqArgs<T> a;
  a.cell = cell_;
  a.input = input_;
  a.hidden = hidden_;
  a.w_ih = w_ih_.data();
  a.w_hh = w_hh_.data();
  a.b_ih = ptr_or_null(b_ih_);
  a.b_hh = ptr_or_null(b_hh_);
  a.peep = ptr_or_null(peep_);
  // A float32 pass in a bfloat16 layer reuses the bfloat16 packing's float32 panels.
  hold = packed(k, bf16, i8, amx);
  a.packed = hold->views;
  a.amx = amx && hold->amx;
  if (!a.amx) a.packed.amx_ih = a.packed.amx_hh = a.packed.amx_hn = a.packed.amx_bwd_hh = nullptr;
  if (!use_reduced) {
    a.packed.bf16_ih = a.packed.bf16_hh = a.packed.bf16_hn = nullptr;
    a.packed.i8_ih = a.packed.i8_hh = a.packed.i8_hn = nullptr;
  }
  a.threads = get_num_threads();
  return a;
}

template <typename T>
std::unique_ptr<Context<T>> Layer<T>::forward(int64_t steps, int64_t batch, const T* x, const T* h0,
                                              const T* c0, std::shared_ptr<const LengthsPlan> plan,
                                              bool reverse, bool training, bool autocast, T* y,
                                              T* h_n, T* c_n) const {
  if (plan) check_plan(*plan, batch, steps);
  const Kernels<T>& k = kernels_for<T>();
  auto ctx = std::make_unique<Context<T>>();
  ctx->cell = cell_;
  ctx->steps = steps;
  ctx->batch = batch;
  ctx->input = input_;
  ctx->hidden = hidden_;
  ctx->reverse = reverse;
  ctx->plan = std::move(plan);
  std::shared_ptr<const PackedWeights<T>> hold;
  const bool i8 = i8_.load();
  // Autocast runs on AMX tiles where the ISA has them (int8 inference takes precedence); elsewhere
  // inference reads the bfloat16 panels and training stays float32.
  const bool amx = autocast && k.pack_amx && !(i8 && !training);
  const bool bf16 = bf16_.load() || (autocast && !amx);
  SeqArgs<T> a = base_args(k, bf16, i8, (bf16 || i8) && !training && !amx, hold, amx);
  ctx->amx = a.amx;
  a.steps = steps;
  a.batch = batch;
  a.reverse = reverse;
  a.x = x;
  a.h0 = h0;
  a.c0 = has_cell_state(cell_) ? c0 : nullptr;
  set_plan(a, ctx->plan.get());
  a.y = y;
  a.h_n = h_n;
  a.c_n = has_cell_state(cell_) ? c_n : nullptr;
  if (training) {
    ctx->cache = Scratch<T>(size_t(steps * batch * cache_width(cell_) * hidden_));
    a.cache = ctx->cache.get();
  }
  auto work = Scratch<T>(k.forward_work(a));
  a.work = work.get();
  k.forward(a);
  if (!training) return nullptr;
  ctx->x = Scratch<T>(size_t(steps * batch * input_));
  std::copy(x, x + steps * batch * input_, ctx->x.get());
  return ctx;
}

template <typename T>
void Layer<T>::backward(const Context<T>& ctx, const T* dy, const T* dh_n, const T* dc_n, T* dx,
                        T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dpeep) const {
  if (ctx.cell != cell_ || ctx.input != input_ || ctx.hidden != hidden_)
    throw std::invalid_argument("backward: the context comes from a different layer");
  const Kernels<T>& k = kernels_for<T>();
  std::shared_ptr<const PackedWeights<T>> hold;
  // AMX autocast as the forward was (a table without AMX, after set_isa, runs float32)
  SeqArgs<T> a = base_args(k, bf16_.load(), i8_.load(), false, hold, ctx.amx && k.pack_amx);
  a.steps = ctx.steps;
  a.batch = ctx.batch;
  a.reverse = ctx.reverse;
  a.x = ctx.x.get();
  set_plan(a, ctx.plan.get());
  a.cache = ctx.cache.get();
  a.dy = dy;
  a.dh_n = dh_n;
  a.dc_n = has_cell_state(cell_) ? dc_n : nullptr;
  a.dx = dx;
  a.dh0 = dh0;
  a.dc0 = has_cell_state(cell_) ? dc0 : nullptr;
  a.dw_ih = dw_ih;
  a.dw_hh = dw_hh;
  a.db_ih = has_bias() ? db_ih : nullptr;
  a.db_hh = has_bias() ? db_hh : nullptr;
  a.dpeep = has_peephole() ? dpeep : nullptr;
  auto work = Scratch<T>(k.backward_work(a));
  a.work = work.get();
  k.backward(a);
}

template <typename T>
void Layer<T>::step(int64_t batch, const T* x, const T* h, const T* c, bool autocast, T* h1,
                    T* c1) const {
  const Kernels<T>& k = kernels_for<T>();
  if (autocast && k.pack_amx && !i8_.load()) {
    // AMX autocast: the sequence's path for one step (its bits, whatever the batch; at B >= 8
    // also the faster, e.g. 5x at B=64, H=512)
    forward(1, batch, x, h, c, nullptr, false, false, true, h1, nullptr, c1);
    return;
  }
  std::shared_ptr<const PackedWeights<T>> hold;
  const bool bf16 = bf16_.load() || (autocast && sizeof(T) == 4), i8 = i8_.load();
  SeqArgs<T> a = base_args(k, bf16, i8, bf16 || i8, hold);
  a.steps = 1;
  a.batch = batch;
  a.x = x;
  a.h0 = h;
  a.c0 = has_cell_state(cell_) ? c : nullptr;
  a.y = h1;
  a.c_n = has_cell_state(cell_) ? c1 : nullptr;
  // Small steps reuse one thread-local scratch buffer: allocation would dominate them.
  thread_local aligned_vector<T> work;
  const size_t need = k.forward_work(a);
  if (work.size() < need) work.resize(need);
  a.work = work.data();
  k.step(a);
}

template class Layer<float>;
template class Layer<double>;

}  // namespace fastrnn
