// runtime.h: what the Python bindings of the GPU path (csrc/bindings/cuda_module.cpp) may call.
// Plain C++: no CUDA and no Python types, so the bindings compile with the host compiler.
//
// Two implementations, one per extension module:
//   runtime_cuda.cu   the GPU (fastrnn._C_cuda): CUDA runtime calls and kernel launches
//   runtime_host.cpp  the host build (fastrnn._C._cuda_host): the same sequence driver, kernels and
//                     bindings with host memory standing in for device memory and loops for
//                     launches, so the CPU test suite runs everything but the CUDA calls.
//
// Errors: Error (a CUDA error, with CUDA's error string) and OutOfMemory; invalid arguments are
// std::invalid_argument. Nothing aborts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/half.h"
#include "fastrnn.h"
#include "lengths_plan.h"

namespace fastrnn {
namespace gpu {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class OutOfMemory : public Error {
 public:
  using Error::Error;
};

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int64_t total_memory = 0;  // bytes
  int multiprocessors = 0;
};

struct Probe {
  bool emulated = false;  // the host build
  std::vector<DeviceInfo> devices;
  std::string error;  // why there are no devices (CUDA's error string), else empty
  int runtime_version = 0, driver_version = 0;
};

Probe probe();
bool emulated();
int dlpack_device_type();  // kDLCUDA (2), or kDLCPU (1) in the host build

// Memory of device `device` (stream-ordered where the device supports it).
void* alloc(int device, size_t bytes);
void release(int device, void* p) noexcept;
enum class Copy { kHostToDevice, kDeviceToHost, kDeviceToDevice };
void copy(int device, void* dst, const void* src, size_t bytes, Copy kind);
void zero(int device, void* p, size_t bytes);
// The device a pointer lives on, or -1 if it is not device memory (the host build says 0).
int device_of(const void* p);
// Make this module's work on `device` wait for a producer's stream (a __cuda_array_interface__
// "stream": 1 legacy default, 2 per-thread default, else a cudaStream_t).
void wait_for_stream(int device, int64_t stream);
void synchronize(int device);

// One layer and direction's weights on the device (pointers to device memory). T is the storage
// type: float, double, or bfloat16 / float16 (cuda/half.h), which compute in float.
template <typename T>
struct Weights {
  Cell cell = Cell::kLstm;
  int64_t input = 0, hidden = 0;
  const T* w_ih = nullptr;  // [G*H, I]
  const T* w_hh = nullptr;  // [G*H, H]
  // [G*H] b_ih + b_hh, except b_hn for PyTorch's GRU; null: no bias. Summed once on the host
  // and kept in the compute type (float for the 16-bit types: the sum is not rounded).
  const accum_t<T>* bias_x = nullptr;
  const T* b_hn = nullptr;  // [H] PyTorch's GRU only, or null
  const T* peep = nullptr;  // [3*H] or null
};

// Sequence inputs and outputs; [T, B, F] arrays are views with element strides (t, b) and
// features contiguous. Outputs as fastrnn.h's rule says: in full, except y and dx at padded steps,
// which a caller that passes lengths zero-fills (and dx_accumulate adds to dx).
template <typename T>
struct ForwardIO {
  const T* x = nullptr;  // [T, B, I] view
  int64_t x_st = 0, x_sb = 0;
  const T* h0 = nullptr;  // [B, H] or null
  const T* c0 = nullptr;  // [B, H] or null
  T* y = nullptr;         // [T, B, H] view
  int64_t y_st = 0, y_sb = 0;
  T* h_n = nullptr;  // [B, H]
  T* c_n = nullptr;  // [B, H] (LSTM)
  int64_t steps = 0, batch = 0;
  int persistent = -1;  // the persistent kernel (persistent.h): -1 where it fits, 0 never, 1 must
};

template <typename T>
struct BackwardIO {
  const T* dy = nullptr;  // [T, B, H] view or null
  int64_t dy_st = 0, dy_sb = 0;
  const T* dh_n = nullptr;  // [B, H] or null
  const T* dc_n = nullptr;
  T* dx = nullptr;  // [T, B, I] view
  int64_t dx_st = 0, dx_sb = 0;
  bool dx_accumulate = false;  // dx += (the second direction of a layer)
  T* dh0 = nullptr;            // [B, H]
  T* dc0 = nullptr;
  T* dw_ih = nullptr;  // [G*H, I]
  T* dw_hh = nullptr;  // [G*H, H]
  T* db_ih = nullptr;  // [G*H] or null
  T* db_hh = nullptr;
  T* dpeep = nullptr;  // [3*H] or null
};

// What a training forward keeps for its backward (device buffers behind `impl`).
struct Context {
  Cell cell = Cell::kLstm;
  int64_t steps = 0, batch = 0, input = 0, hidden = 0;
  bool reverse = false;
  int device = 0;
  int itemsize = 0;
  int storage = 0;  // storage_id<T>(): bfloat16 and float16 have the same itemsize
  std::shared_ptr<void> impl;
};

// plan: the forward's lengths plan, made for (io.batch, io.steps) (one per forward of a
// multi-layer RNN, shared by its layers and directions), or null when every sequence runs all
// steps; a training forward keeps it for the backward. Returns a Context with impl set when
// training.
template <typename T>
Context forward(int device, const Weights<T>& w, const ForwardIO<T>& io,
                std::shared_ptr<const LengthsPlan> plan, bool reverse, bool training);
template <typename T>
void backward(int device, const Weights<T>& w, const Context& ctx, const BackwardIO<T>& io);

// The persistent small-batch forward kernel (persistent.h): what a device offers it, and the
// launch it would make for a layer (fits false with the reason when it cannot run there).
struct PersistentDevice {
  int multiprocessors = 0;
  int64_t shared_per_block = 0;  // bytes, opt-in maximum
  bool cooperative = false;      // cooperative launches (the grid barrier) supported
};
struct PersistentPlan {
  bool fits = false;
  std::string reason;
  int ctas = 0, units = 0, threads = 0, passes = 0;  // units: hidden units per block
  int64_t shared_bytes = 0;                          // per block
};
PersistentPlan persistent_plan(int device, Cell cell, int64_t hidden, int64_t batch, int itemsize);
// Host build only (runtime_host.cpp): the device the host build stands for when it plans the
// persistent kernel.
PersistentDevice emulated_device();
void set_emulated_device(const PersistentDevice& d);

// y[i] = x[i] * mask(seed, i) / (1 - p), n contiguous elements (y may be x)
template <typename T>
void dropout(int device, T* y, const T* x, int64_t n, double p, uint64_t seed);
// dst (contiguous) = src viewed with shape / strides in elements, ndim <= 4
template <typename T>
void strided_copy(int device, T* dst, const T* src, int ndim, const int64_t* shape,
                  const int64_t* strides);

}  // namespace gpu
}  // namespace fastrnn
