// runtime_host.cpp: runtime.h for the host build of the GPU path (fastrnn._C._cuda_host). Host
// memory stands in for device memory and each kernel launch becomes a loop over its threads: the
// elementwise kernels call the same operator()(i) as on the GPU, the matrix product runs the same
// load / compute / store of every thread of every block, one barrier phase at a time. So the CPU
// test suite exercises the sequence driver, the kernels' indexing and the gate math of the GPU
// path; only the CUDA runtime calls and launch configurations are left to runtime_cuda.cu.
//
// Not fast, and not meant to be: it is compiled into the CPU module for the tests only.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "cuda/runtime.h"
#include "cuda/sequence.h"

namespace fastrnn {
namespace gpu {

namespace {

// The device the host build plans the persistent kernel for: an H100 (SXM) unless a test says
// otherwise.
std::mutex emulated_device_mu;
PersistentDevice emulated_device_now{132, 227 * 1024, true};

struct HostExec {
  void* alloc(size_t bytes) const {
    void* p = std::malloc(bytes ? bytes : 1);
    if (!p) throw OutOfMemory("out of memory (host emulation)");
    // Fill with NaN-like garbage so that a kernel reading memory it never wrote shows up in tests.
    std::memset(p, 0xff, bytes);
    return p;
  }
  void release(void* p) const noexcept { std::free(p); }
  void upload(void* dst, const void* src, size_t bytes) const {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  template <class Op>
  void for_each(const Op& op, int64_t count) const {
    for (int64_t i = 0; i < count; ++i) op(i);
  }
  // Every block, every thread, with the barriers of the kernel between the phases.
  template <typename T, class Cfg, typename TB>
  void gemm(const gpu_kernels::GemmArgs<T, TB>& g) const {
    using Tile = gpu_kernels::GemmTile<T, Cfg, TB>;
    std::vector<T> As(Cfg::BK * Cfg::BM), Bs(Cfg::BK * Cfg::BN);
    std::vector<typename Tile::Acc> acc(Cfg::NT);
    const int64_t mt = Tile::blocks_m(g), blocks = Tile::blocks(g);
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t m0 = (blk % mt) * Cfg::BM, n0 = (blk / mt) * Cfg::BN;
      for (auto& a : acc) a = typename Tile::Acc{};
      for (int64_t k0 = 0; k0 < g.k; k0 += Cfg::BK) {
        for (int t = 0; t < Cfg::NT; ++t) Tile::load(g, m0, n0, k0, t, As.data(), Bs.data());
        for (int t = 0; t < Cfg::NT; ++t) Tile::compute(t, As.data(), Bs.data(), acc[t]);
      }
      for (int t = 0; t < Cfg::NT; ++t) Tile::store(g, m0, n0, t, acc[t]);
    }
  }
  // The persistent kernel: blocks and threads as loops, barriers as loop boundaries.
  PersistentDevice persistent_device() const { return emulated_device(); }
  template <class C, typename T>
  int persistent_blocks_per_sm(const PersistentPlan&, bool) const {
    return 1;
  }
  template <class C, typename T>
  void persistent_run(const gpu_kernels::PersistFwd<C, T>& p) const {
    gpu_kernels::run_persistent_on_host(p);
  }
  template <class C, typename T>
  void persistent_run(const gpu_kernels::PersistBwd<C, T>& p) const {
    gpu_kernels::run_persistent_on_host(p);
  }
};

}  // namespace

Probe probe() {
  Probe p;
  p.emulated = true;
  DeviceInfo d;
  d.index = 0;
  d.name = "host emulation of the CUDA kernels";
  p.devices.push_back(d);
  return p;
}

bool emulated() { return true; }

PersistentDevice emulated_device() {
  std::lock_guard<std::mutex> lock(emulated_device_mu);
  return emulated_device_now;
}

void set_emulated_device(const PersistentDevice& d) {
  std::lock_guard<std::mutex> lock(emulated_device_mu);
  emulated_device_now = d;
}

PersistentPlan persistent_plan(int, Cell cell, int64_t hidden, int64_t batch, int itemsize) {
  return cells::with_cell(cell, [&](auto c) {
    using C = decltype(c);
    return itemsize == 4 ? choose_persistent<C, float>(HostExec{}, hidden, batch, -1)
                         : choose_persistent<C, double>(HostExec{}, hidden, batch, -1);
  });
}

int dlpack_device_type() { return 1; }  // kDLCPU

void* alloc(int, size_t bytes) { return HostExec{}.alloc(bytes); }
void release(int, void* p) noexcept { HostExec{}.release(p); }
void copy(int, void* dst, const void* src, size_t bytes, Copy) {
  if (bytes) std::memmove(dst, src, bytes);
}
void zero(int, void* p, size_t bytes) {
  if (bytes) std::memset(p, 0, bytes);
}
int device_of(const void*) { return 0; }
void wait_for_stream(int, int64_t) {}
void synchronize(int) {}

template <typename T>
Context forward(int device, const Weights<T>& w, const ForwardIO<T>& io,
                std::shared_ptr<const LengthsPlan> plan, bool reverse, bool training) {
  return run_forward(HostExec{}, device, w, io, std::move(plan), reverse, training);
}

template <typename T>
void backward(int, const Weights<T>& w, const Context& ctx, const BackwardIO<T>& io) {
  run_backward(HostExec{}, w, ctx, io);
}

template <typename T>
void dropout(int, T* y, const T* x, int64_t n, double p, uint64_t seed) {
  HostExec{}.for_each(gpu_kernels::Dropout<T>{y, x, seed, p, accum_t<T>(1.0 / (1.0 - p))}, n);
}

template <typename T>
void strided_copy(int, T* dst, const T* src, int ndim, const int64_t* shape,
                  const int64_t* strides) {
  int64_t n = 0;
  const auto op = gpu_kernels::StridedCopy<T>::of(dst, src, ndim, shape, strides, &n);
  HostExec{}.for_each(op, n);
}

#include "cuda/instantiate.inc"

}  // namespace gpu
}  // namespace fastrnn
