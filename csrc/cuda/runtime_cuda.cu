// runtime_cuda.cu: runtime.h on the GPU (fastrnn._C_cuda): CUDA runtime calls, the kernels of
// gemm.h and pointwise.h as __global__ functions, and DeviceExec, the executor of sequence.h.
//
// All work of a call runs on the legacy default stream, which orders itself with the other
// blocking streams (PyTorch's default stream among them); memory is stream-ordered
// (cudaMallocAsync) where the device supports it. The bindings synchronize at the end of every
// call, so results are ready on any stream and asynchronous errors surface in the call that
// caused them. Every CUDA error becomes gpu::Error with CUDA's error string; nothing aborts.
//
// Untested on a real GPU at the time of writing: the host build (runtime_host.cpp) tests the
// driver and the kernel bodies, not the launches below.
#include <cuda_runtime.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cuda/runtime.h"
#include "cuda/sequence.h"

namespace fastrnn {
namespace gpu {

namespace {

constexpr cudaStream_t kStream = 0;  // the legacy default stream
constexpr int kThreads = 256;        // threads per block of the elementwise kernels

[[noreturn]] void fail(cudaError_t e, const char* what) {
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  std::string msg = std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e) + " (" +
                    cudaGetErrorName(e) + ")";
  if (e == cudaErrorMemoryAllocation) throw OutOfMemory(msg);
  throw Error(msg);
}

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(e, what);
}

// Makes `device` current for the scope and restores the caller's device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&prev_), "cudaGetDevice");
    if (prev_ != device) check(cudaSetDevice(device), "cudaSetDevice");
    changed_ = prev_ != device;
  }
  ~DeviceGuard() {
    if (changed_) cudaSetDevice(prev_);
  }

 private:
  int prev_ = 0;
  bool changed_ = false;
};

bool pools_supported(int device) {
  static std::mutex mu;
  static std::vector<int> known;  // -1 unknown, 0 no, 1 yes
  std::lock_guard<std::mutex> lock(mu);
  if (device >= int(known.size())) known.resize(device + 1, -1);
  if (known[device] < 0) {
    int v = 0;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMemoryPoolsSupported, device) != cudaSuccess) {
      cudaGetLastError();
      v = 0;
    }
    if (v) {  // keep freed blocks in the pool: by default every synchronization unmaps them
      cudaMemPool_t pool;
      uint64_t keep = UINT64_MAX;
      if (cudaDeviceGetDefaultMemPool(&pool, device) != cudaSuccess ||
          cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) != cudaSuccess)
        cudaGetLastError();
    }
    known[device] = v ? 1 : 0;
  }
  return known[device] == 1;
}

// What device `device` offers the persistent kernel (attributes read once per device).
PersistentDevice persistent_device_of(int device) {
  static std::mutex mu;
  static std::vector<std::pair<bool, PersistentDevice>> known;
  std::lock_guard<std::mutex> lock(mu);
  if (device >= int(known.size())) known.resize(device + 1);
  if (!known[device].first) {
    int sms = 0, smem = 0, coop = 0;
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
          "cudaDeviceGetAttribute");
    check(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
          "cudaDeviceGetAttribute");
    check(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, device),
          "cudaDeviceGetAttribute");
    known[device] = {true, PersistentDevice{sms, smem, coop != 0}};
  }
  return known[device].second;
}

template <class Op>
__global__ void __launch_bounds__(kThreads) for_each_kernel(Op op, int64_t count) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i < count) op(i);
}

template <typename T, class Cfg, typename TB>
__global__ void __launch_bounds__(Cfg::NT) gemm_kernel(gpu_kernels::GemmArgs<T, TB> g, int64_t mt) {
  using Tile = gpu_kernels::GemmTile<T, Cfg, TB>;
  __shared__ T As[Cfg::BK * Cfg::BM];
  __shared__ T Bs[Cfg::BK * Cfg::BN];
  const int64_t blk = blockIdx.x;
  const int64_t m0 = (blk % mt) * Cfg::BM, n0 = (blk / mt) * Cfg::BN;
  const int tid = threadIdx.x;
  typename Tile::Acc acc;
  for (int i = 0; i < Cfg::TM; ++i)
    for (int j = 0; j < Cfg::TN; ++j) acc.v[i][j] = T(0);
  for (int64_t k0 = 0; k0 < g.k; k0 += Cfg::BK) {
    Tile::load(g, m0, n0, k0, tid, As, Bs);
    __syncthreads();
    Tile::compute(tid, As, Bs, acc);
    __syncthreads();
  }
  Tile::store(g, m0, n0, tid, acc);
}

struct DeviceExec {
  int device = -1;

  void* alloc(size_t bytes) const {
    void* p = nullptr;
    if (bytes == 0) bytes = 1;
    if (pools_supported(device))
      check(cudaMallocAsync(&p, bytes, kStream), "cudaMallocAsync");
    else
      check(cudaMalloc(&p, bytes), "cudaMalloc");
    return p;
  }
  // On the buffer's device, whichever is current: a training context's buffers are released
  // when Python drops it, possibly while another device is current.
  void release(void* p) const noexcept {
    if (!p) return;
    int prev = 0;
    if (cudaGetDevice(&prev) != cudaSuccess ||
        (prev != device && cudaSetDevice(device) != cudaSuccess)) {
      cudaGetLastError();  // destructors cannot throw; the memory is lost
      return;
    }
    cudaError_t e;
    if (pools_supported(device)) {
      e = cudaFreeAsync(p, kStream);  // stream-ordered: after the kernels queued before it
    } else {
      e = cudaStreamSynchronize(kStream);  // cudaFree does not wait for queued kernels
      if (e == cudaSuccess) e = cudaFree(p);
    }
    if (e != cudaSuccess) cudaGetLastError();
    if (prev != device) cudaSetDevice(prev);
  }
  void upload(void* dst, const void* src, size_t bytes) const {
    if (bytes)
      check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, kStream), "cudaMemcpyAsync");
    // pageable source: the copy has finished reading `src` when cudaMemcpyAsync returns
  }
  template <class Op>
  void for_each(const Op& op, int64_t count) const {
    if (count <= 0) return;
    const int64_t blocks = (count + kThreads - 1) / kThreads;
    if (blocks > 0x7fffffffLL) throw Error("CUDA kernel launch: too many elements");
    for_each_kernel<Op><<<unsigned(blocks), kThreads, 0, kStream>>>(op, count);
    check(cudaGetLastError(), "kernel launch");
  }
  template <typename T, class Cfg, typename TB>
  void gemm(const gpu_kernels::GemmArgs<T, TB>& g) const {
    using Tile = gpu_kernels::GemmTile<T, Cfg, TB>;
    const int64_t blocks = Tile::blocks(g);
    if (blocks <= 0) return;
    if (blocks > 0x7fffffffLL) throw Error("CUDA matrix product: too many tiles");
    gemm_kernel<T, Cfg, TB><<<unsigned(blocks), Cfg::NT, 0, kStream>>>(g, Tile::blocks_m(g));
    check(cudaGetLastError(), "matrix product launch");
  }
  PersistentDevice persistent_device() const { return persistent_device_of(device); }
  template <class C, typename T>
  int persistent_blocks_per_sm(const PersistentPlan& plan, bool backward) const {
    int n = 0;
    check(gpu_kernels::persistent_blocks_per_sm<C, T>(plan, backward,
                                                      persistent_device().shared_per_block, &n),
          "persistent kernel occupancy");
    return n;
  }
  template <class C, typename T>
  void persistent_run(const gpu_kernels::PersistFwd<C, T>& p) const {
    check(gpu_kernels::persistent_launch(p, kStream), "persistent kernel launch");
  }
  template <class C, typename T>
  void persistent_run(const gpu_kernels::PersistBwd<C, T>& p) const {
    check(gpu_kernels::persistent_launch(p, kStream), "persistent kernel launch (backward)");
  }
};

}  // namespace

Probe probe() {
  Probe p;
  p.emulated = false;
  cudaRuntimeGetVersion(&p.runtime_version);
  if (cudaDriverGetVersion(&p.driver_version) != cudaSuccess) cudaGetLastError();
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    p.error = std::string(cudaGetErrorString(e)) + " (" + cudaGetErrorName(e) + ")";
    return p;
  }
  if (n == 0) p.error = "no CUDA device is visible";
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, i);
    if (e != cudaSuccess) {
      cudaGetLastError();
      p.error = std::string(cudaGetErrorString(e)) + " (" + cudaGetErrorName(e) + ")";
      continue;
    }
    DeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.major = prop.major;
    d.minor = prop.minor;
    d.total_memory = int64_t(prop.totalGlobalMem);
    d.multiprocessors = prop.multiProcessorCount;
    p.devices.push_back(d);
  }
  return p;
}

bool emulated() { return false; }

PersistentPlan persistent_plan(int device, Cell cell, int64_t hidden, int64_t batch, int itemsize) {
  DeviceGuard g(device);
  const DeviceExec ex{device};
  return cells::with_cell(cell, [&](auto c) {
    using C = decltype(c);
    return itemsize == 4 ? choose_persistent<C, float>(ex, hidden, batch, -1)
                         : choose_persistent<C, double>(ex, hidden, batch, -1);
  });
}
int dlpack_device_type() { return 2; }  // kDLCUDA

// Like every entry point, these finish before returning: a caller may hand the memory to a
// stream of its own (CuPy, torch) that does not wait for ours.
void* alloc(int device, size_t bytes) {
  DeviceGuard g(device);
  void* p = DeviceExec{device}.alloc(bytes);
  check(cudaStreamSynchronize(kStream), "cudaStreamSynchronize");
  return p;
}

void release(int device, void* p) noexcept { DeviceExec{device}.release(p); }

void copy(int device, void* dst, const void* src, size_t bytes, Copy kind) {
  if (!bytes) return;
  DeviceGuard g(device);
  const cudaMemcpyKind k = kind == Copy::kHostToDevice   ? cudaMemcpyHostToDevice
                           : kind == Copy::kDeviceToHost ? cudaMemcpyDeviceToHost
                                                         : cudaMemcpyDeviceToDevice;
  check(cudaMemcpyAsync(dst, src, bytes, k, kStream), "cudaMemcpyAsync");
  check(cudaStreamSynchronize(kStream), "cudaStreamSynchronize");
}

void zero(int device, void* p, size_t bytes) {
  if (!bytes) return;
  DeviceGuard g(device);
  check(cudaMemsetAsync(p, 0, bytes, kStream), "cudaMemsetAsync");
  check(cudaStreamSynchronize(kStream), "cudaStreamSynchronize");
}

int device_of(const void* p) {
  cudaPointerAttributes a;
  cudaError_t e = cudaPointerGetAttributes(&a, p);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  if (a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged) return a.device;
  return -1;
}

void wait_for_stream(int device, int64_t stream) {
  DeviceGuard g(device);
  cudaStream_t s = stream == 1   ? cudaStreamLegacy
                   : stream == 2 ? cudaStreamPerThread
                                 : reinterpret_cast<cudaStream_t>(stream);
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize (the producer's stream)");
}

void synchronize(int device) {
  DeviceGuard g(device);
  check(cudaStreamSynchronize(kStream), "cudaStreamSynchronize");
}

template <typename T>
Context forward(int device, const Weights<T>& w, const ForwardIO<T>& io,
                std::shared_ptr<const LengthsPlan> plan, bool reverse, bool training) {
  DeviceGuard g(device);
  Context c = run_forward(DeviceExec{device}, device, w, io, std::move(plan), reverse, training);
  check(cudaStreamSynchronize(kStream), "forward");
  return c;
}

template <typename T>
void backward(int device, const Weights<T>& w, const Context& ctx, const BackwardIO<T>& io) {
  DeviceGuard g(device);
  run_backward(DeviceExec{device}, w, ctx, io);
  check(cudaStreamSynchronize(kStream), "backward");
}

template <typename T>
void dropout(int device, T* y, const T* x, int64_t n, double p, uint64_t seed) {
  DeviceGuard g(device);
  DeviceExec{device}.for_each(gpu_kernels::Dropout<T>{y, x, seed, p, accum_t<T>(1.0 / (1.0 - p))},
                              n);
  check(cudaStreamSynchronize(kStream), "dropout");
}

template <typename T>
void strided_copy(int device, T* dst, const T* src, int ndim, const int64_t* shape,
                  const int64_t* strides) {
  DeviceGuard g(device);
  int64_t n = 0;
  const auto op = gpu_kernels::StridedCopy<T>::of(dst, src, ndim, shape, strides, &n);
  DeviceExec{device}.for_each(op, n);
  check(cudaStreamSynchronize(kStream), "strided copy");
}

#include "cuda/instantiate.inc"

}  // namespace gpu
}  // namespace fastrnn
