// cuda_module.cpp: the Python face of the GPU path, compiled twice:
//   into fastrnn._C_cuda (with runtime_cuda.cu) when the build finds nvcc, and
//   into fastrnn._C as the submodule _cuda_host (with runtime_host.cpp), the host build that runs
//   the same driver and kernel bodies on the CPU so the CPU test suite covers them.
// It converts device arrays (__cuda_array_interface__, DLPack, or its own DeviceArray) into
// pointers with shapes and strides, checks dtypes, shapes and devices, releases the GIL around the
// runtime calls and turns CUDA errors into Python exceptions. No arithmetic here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/shape_str.h"
#include "cell_names.h"
#include "cuda/dlpack.h"
#include "cuda/half.h"
#include "cuda/runtime.h"

namespace py = pybind11;
using fastrnn::shape_str;
namespace gpu = fastrnn::gpu;
using fastrnn::Cell;
using fastrnn::cell_name;
using fastrnn::parse_cell;

namespace {

// ------------------------------------------------------------------------------------------------
// dtypes

// kBF16, kF16: 16-bit storage of the float types (cuda/half.h). NumPy has float16 but no
// bfloat16: a bfloat16 array comes to NumPy through ml_dtypes (if installed) or widened to float32,
// and its `dtype` is the string "bfloat16". __cuda_array_interface__ spells bfloat16 "<V2" (the
// typestr of ml_dtypes and PyTorch); DLPack has a code of its own.
enum class DType { kF32, kF64, kI32, kI64, kBF16, kF16 };

struct DTypeInfo {
  const char* name;
  const char* typestr;
  int itemsize;
  uint8_t dl_code;
};

const DTypeInfo& info(DType d) {
  static const DTypeInfo t[] = {
      {"float32", "<f4", 4, kFastrnnDLFloat},   {"float64", "<f8", 8, kFastrnnDLFloat},
      {"int32", "<i4", 4, kFastrnnDLInt},       {"int64", "<i8", 8, kFastrnnDLInt},
      {"bfloat16", "<V2", 2, kFastrnnDLBfloat}, {"float16", "<f2", 2, kFastrnnDLFloat}};
  return t[int(d)];
}

bool is_16bit(DType d) { return d == DType::kBF16 || d == DType::kF16; }

DType dtype_from_name(const std::string& s, const char* what) {
  for (DType d : {DType::kF32, DType::kF64, DType::kI32, DType::kI64, DType::kBF16, DType::kF16})
    if (s == info(d).name || s == info(d).typestr || s == info(d).typestr + 1) return d;
  throw py::type_error(std::string(what) + ": unsupported dtype " + s +
                       " (expected float32, float64, bfloat16, float16, int32 or int64)");
}

// The dtype as Python sees it: a numpy.dtype, except "bfloat16", which NumPy lacks (a string).
py::object dtype_object(DType d) {
  if (d == DType::kBF16) return py::str("bfloat16");
  return py::dtype(info(d).name);
}

// Calls f(T{}) with T the storage type of a float dtype.
template <class F>
auto dispatch_float(DType d, F&& f) {
  switch (d) {
    case DType::kF32:
      return f(float{});
    case DType::kF64:
      return f(double{});
    case DType::kBF16:
      return f(fastrnn::bfloat16{});
    case DType::kF16:
      return f(fastrnn::float16{});
    default:
      throw py::type_error(std::string("expected a float dtype, got ") + info(d).name);
  }
}

// ------------------------------------------------------------------------------------------------
// Host-side conversions to and from the 16-bit types (the device kernels use the same functions).

// double -> float rounded to odd: then rounding that float to 16 bits (<= 11 significant bits)
// gives the correctly rounded result of the double, with no double-rounding error.
float round_to_odd(double d) {
  float f = float(d);
  if (std::isfinite(f) && double(f) != d) {
    uint32_t u = fastrnn::bits_of(f);
    if (!(u & 1u)) u = std::fabs(d) > std::fabs(double(f)) ? u + 1 : u - 1;
    f = fastrnn::float_of(u);
  }
  return f;
}

uint16_t narrow_bits(float v, DType s) {
  return s == DType::kBF16 ? fastrnn::to_bfloat16(v).bits : fastrnn::to_float16(v).bits;
}

float widen_bits(uint16_t b, DType s) {
  return s == DType::kBF16 ? fastrnn::to_float(fastrnn::bfloat16{b})
                           : fastrnn::to_float(fastrnn::float16{b});
}

// A host float array (float64, float32, float16 or ml_dtypes' bfloat16) rounded to the 16-bit
// storage type s (nearest even), as its bits.
std::vector<uint16_t> storage_bits(const py::array& in, DType s, const char* name) {
  py::array a = py::array::ensure(in, py::array::c_style);
  if (!a) throw py::type_error(std::string(name) + ": expected an array");
  const DType from = dtype_from_name(py::str(a.dtype()), name);
  const int64_t n = a.size();
  std::vector<uint16_t> out(size_t(n), 0);
  switch (from) {
    case DType::kF32: {
      const float* p = static_cast<const float*>(a.data());
      for (int64_t i = 0; i < n; ++i) out[i] = narrow_bits(p[i], s);
      break;
    }
    case DType::kF64: {
      const double* p = static_cast<const double*>(a.data());
      for (int64_t i = 0; i < n; ++i) out[i] = narrow_bits(round_to_odd(p[i]), s);
      break;
    }
    case DType::kBF16:
    case DType::kF16: {
      const uint16_t* p = static_cast<const uint16_t*>(a.data());
      for (int64_t i = 0; i < n; ++i)
        out[i] = from == s ? p[i] : narrow_bits(widen_bits(p[i], from), s);
      break;
    }
    default:
      throw py::type_error(std::string(name) + ": expected a float array, got dtype " +
                           info(from).name);
  }
  return out;
}

DType dtype_of(const py::handle& obj) {  // a numpy dtype, a string, or torch.float32-like
  std::string s = py::str(obj);
  if (s.rfind("torch.", 0) == 0) s = s.substr(6);
  return dtype_from_name(s, "dtype");
}

std::string device_str(int device) {
  return (gpu::emulated() ? "cuda-host-emulation:" : "cuda:") + std::to_string(device);
}

// ------------------------------------------------------------------------------------------------
// DeviceArray: a strided view of device memory that we own or that a producer lends us.

struct Storage {
  int device;
  void* ptr;
  size_t bytes;
  Storage(int d, size_t b) : device(d), ptr(gpu::alloc(d, b)), bytes(b) {}
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() { gpu::release(device, ptr); }
};

// A producer's memory: the object we read __cuda_array_interface__ from, or a consumed DLPack
// tensor whose deleter we call when done. Destroyed with the GIL held.
struct Foreign {
  py::object owner;
  DLManagedTensor* managed = nullptr;
  Foreign() = default;
  Foreign(const Foreign&) = delete;
  Foreign& operator=(const Foreign&) = delete;
  ~Foreign() {
    if (managed && managed->deleter) managed->deleter(managed);
  }
};

class DeviceArray {
 public:
  std::shared_ptr<Storage> storage;  // ours, or
  std::shared_ptr<Foreign> foreign;  // a producer's
  char* lo = nullptr;                // the bytes this array may touch: [lo, hi)
  char* hi = nullptr;
  char* ptr = nullptr;  // element 0
  DType dtype = DType::kF32;
  int device = 0;
  bool readonly = false;
  std::vector<int64_t> shape, strides;  // strides in elements

  int itemsize() const { return info(dtype).itemsize; }
  int64_t size() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
  bool contiguous() const {
    int64_t expect = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      if (shape[d] != 1 && strides[d] != expect) return false;
      expect *= shape[d];
    }
    return true;
  }
  template <typename T>
  T* data() const {
    return reinterpret_cast<T*>(ptr);
  }

  // [min, max] element offsets reachable from ptr
  std::pair<int64_t, int64_t> reach() const {
    int64_t mn = 0, mx = 0;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 0) return {0, -1};
      const int64_t e = (shape[d] - 1) * strides[d];
      (e < 0 ? mn : mx) += e;
    }
    return {mn, mx};
  }

  // A view of the same memory: element offset, shape and strides relative to this array.
  DeviceArray view(int64_t offset, const std::vector<int64_t>& shp,
                   const std::vector<int64_t>& str) const {
    if (shp.size() != str.size() || shp.size() > 4)
      throw std::invalid_argument("view: shape and strides need the same length (at most 4)");
    for (int64_t s : shp)
      if (s < 0) throw std::invalid_argument("view: negative extent");
    DeviceArray v = *this;
    v.ptr = ptr + offset * itemsize();
    v.shape = shp;
    v.strides = str;
    auto r = v.reach();
    if (r.second >= r.first &&
        (v.ptr + r.first * itemsize() < lo || v.ptr + (r.second + 1) * itemsize() > hi))
      throw std::invalid_argument("view: outside the array's memory");
    return v;
  }

  static DeviceArray empty(const std::vector<int64_t>& shape, DType dt, int device) {
    DeviceArray a;
    a.dtype = dt;
    a.device = device;
    a.shape = shape;
    a.strides.assign(shape.size(), 1);
    int64_t n = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      if (shape[d] < 0) throw std::invalid_argument("shape: negative extent");
      a.strides[d] = n;
      n *= shape[d];
    }
    const size_t bytes = size_t(n) * info(dt).itemsize;
    {
      py::gil_scoped_release nogil;
      a.storage = std::make_shared<Storage>(device, bytes);
    }
    a.ptr = a.lo = static_cast<char*>(a.storage->ptr);
    a.hi = a.lo + bytes;
    return a;
  }

  // A contiguous copy (or this array itself when already contiguous).
  DeviceArray contiguous_copy(bool force = false) const {
    if (contiguous() && !force) return *this;
    DeviceArray out = empty(shape, dtype, device);
    if (size() == 0) return out;
    std::vector<int64_t> shp = shape, str = strides;
    if (shp.empty()) {
      shp = {1};
      str = {1};
    }
    py::gil_scoped_release nogil;
    switch (dtype) {
      case DType::kF32:
        gpu::strided_copy(device, out.data<float>(), data<float>(), int(shp.size()), shp.data(),
                          str.data());
        break;
      case DType::kF64:
        gpu::strided_copy(device, out.data<double>(), data<double>(), int(shp.size()), shp.data(),
                          str.data());
        break;
      case DType::kI32:
        gpu::strided_copy(device, out.data<int32_t>(), data<int32_t>(), int(shp.size()), shp.data(),
                          str.data());
        break;
      case DType::kI64:
        gpu::strided_copy(device, out.data<int64_t>(), data<int64_t>(), int(shp.size()), shp.data(),
                          str.data());
        break;
      case DType::kBF16:
      case DType::kF16:
        gpu::strided_copy(device, out.data<uint16_t>(), data<uint16_t>(), int(shp.size()),
                          shp.data(), str.data());
        break;
    }
    return out;
  }

  // A host copy in this array's dtype, or (`as`) a 16-bit float array widened to "float32"
  // (exact) or its bits as "uint16". bfloat16 in its own dtype needs ml_dtypes.
  py::array numpy(const py::object& as = py::none()) const {
    bool widen = false, bits = false;
    if (!as.is_none()) {
      std::string w = py::str(as);
      if (w.rfind("torch.", 0) == 0) w = w.substr(6);
      if (is_16bit(dtype) && w == "uint16")
        bits = true;
      else if (is_16bit(dtype) && w == "float32")
        widen = true;
      else if (w != info(dtype).name)
        throw py::type_error(
            std::string("numpy: a ") + info(dtype).name + " array converts to its own dtype" +
            (is_16bit(dtype) ? ", float32 or uint16 (its bits)" : "") + ", not " + w);
    }
    py::dtype raw = is_16bit(dtype) ? py::dtype("uint16") : py::dtype(info(dtype).name);
    if (dtype == DType::kF16 && !bits && !widen) raw = py::dtype("float16");
    if (dtype == DType::kBF16 && !bits && !widen) {
      try {
        raw = py::dtype::from_args(py::module_::import("ml_dtypes").attr("bfloat16"));
      } catch (py::error_already_set&) {
        throw py::type_error(
            "numpy: NumPy has no bfloat16 dtype; use .numpy('float32') (exact) or "
            ".numpy('uint16') (the bits), or install ml_dtypes");
      }
    }
    DeviceArray c = contiguous_copy();
    py::array out(raw, shape);
    const size_t bytes = size_t(size()) * itemsize();
    void* dst = out.mutable_data();
    {
      py::gil_scoped_release nogil;
      gpu::copy(device, dst, c.ptr, bytes, gpu::Copy::kDeviceToHost);
    }
    if (!widen) return out;
    py::array_t<float> f(shape);
    const uint16_t* b = static_cast<const uint16_t*>(out.data());
    float* o = f.mutable_data();
    for (int64_t i = 0, n = size(); i < n; ++i) o[i] = widen_bits(b[i], dtype);
    return f;
  }
};

DeviceArray upload(const void* src, const std::vector<int64_t>& shape, DType dt, int device) {
  DeviceArray a = DeviceArray::empty(shape, dt, device);
  const size_t bytes = size_t(a.size()) * a.itemsize();
  py::gil_scoped_release nogil;
  gpu::copy(device, a.ptr, src, bytes, gpu::Copy::kHostToDevice);
  return a;
}

// A device copy of a host array; `as` bfloat16 or float16 rounds a float array (nearest even).
DeviceArray from_numpy(const py::array& arr_in, int device, const py::object& as = py::none()) {
  py::array arr = py::array::ensure(arr_in, py::array::c_style);
  if (!arr) throw py::type_error("expected an array");
  std::vector<int64_t> shape(arr.shape(), arr.shape() + arr.ndim());
  const DType given = dtype_of(arr.dtype());
  const DType dt = as.is_none() ? given : dtype_of(as);
  if (dt != given) {
    if (!is_16bit(dt))
      throw py::type_error(std::string("dtype: converts only to bfloat16 or float16, not ") +
                           info(dt).name + " (convert the array on the host)");
    const std::vector<uint16_t> bits = storage_bits(arr, dt, "array");
    return upload(bits.data(), shape, dt, device);
  }
  return upload(arr.data(), shape, dt, device);
}

// Fills lo/hi of a borrowed array from its reach. A data pointer not aligned to the item size is
// refused here: on a GPU the first load from it is a misaligned-address error that poisons the
// process's CUDA context.
void set_bounds(DeviceArray& a) {
  if (reinterpret_cast<uintptr_t>(a.ptr) % uintptr_t(a.itemsize()) != 0)
    throw std::invalid_argument("device array: its data pointer is not aligned to its item size (" +
                                std::to_string(a.itemsize()) + " bytes)");
  auto r = a.reach();
  if (r.second < r.first) {
    a.lo = a.hi = a.ptr;
    return;
  }
  a.lo = a.ptr + r.first * a.itemsize();
  a.hi = a.ptr + (r.second + 1) * a.itemsize();
}

DeviceArray from_cuda_array_interface(const py::object& obj) {
  py::dict cai = obj.attr("__cuda_array_interface__");
  if (cai.contains("mask") && !cai["mask"].is_none())
    throw py::type_error("__cuda_array_interface__ with a mask is not supported");
  DeviceArray a;
  a.dtype = dtype_from_name(py::str(cai["typestr"]), "__cuda_array_interface__");
  for (auto s : py::tuple(cai["shape"])) a.shape.push_back(s.cast<int64_t>());
  py::tuple data = cai["data"];
  a.ptr = reinterpret_cast<char*>(data[0].cast<uintptr_t>());
  a.readonly = data[1].cast<bool>();
  if (cai.contains("strides") && !cai["strides"].is_none()) {
    for (auto s : py::tuple(cai["strides"])) {
      const int64_t b = s.cast<int64_t>();
      if (b % a.itemsize()) throw py::type_error("strides must be multiples of the item size");
      a.strides.push_back(b / a.itemsize());
    }
  } else {
    a.strides.assign(a.shape.size(), 1);
    int64_t n = 1;
    for (size_t d = a.shape.size(); d-- > 0;) {
      a.strides[d] = n;
      n *= a.shape[d];
    }
  }
  if (a.strides.size() != a.shape.size())
    throw py::type_error("__cuda_array_interface__: shape and strides differ in length");
  a.device = a.size() ? gpu::device_of(a.ptr) : 0;
  if (a.device < 0)
    throw std::invalid_argument("__cuda_array_interface__: the data pointer is not device memory");
  if (cai.contains("stream") && !cai["stream"].is_none()) {
    const int64_t stream = cai["stream"].cast<int64_t>();
    py::gil_scoped_release nogil;
    gpu::wait_for_stream(a.device, stream);
  }
  a.foreign = std::make_shared<Foreign>();
  a.foreign->owner = obj;
  set_bounds(a);
  return a;
}

DeviceArray from_dlpack(const py::object& obj) {
  py::tuple dev = obj.attr("__dlpack_device__")();
  const int type = dev[0].cast<int>();
  const bool ok =
      type == gpu::dlpack_device_type() || (!gpu::emulated() && type == kFastrnnDLCUDAManaged);
  if (!ok)
    throw py::type_error("expected a CUDA array, got a DLPack array of device type " +
                         std::to_string(type) + (type == kFastrnnDLCPU ? " (CPU)" : ""));
  py::object cap;
  if (gpu::emulated()) {
    cap = obj.attr("__dlpack__")();
  } else {
    try {  // we work on the legacy default stream: 1
      cap = obj.attr("__dlpack__")(py::arg("stream") = 1);
    } catch (py::error_already_set& e) {
      if (!e.matches(PyExc_TypeError)) throw;
      cap = obj.attr("__dlpack__")();
    }
  }
  PyObject* c = cap.ptr();
  if (!PyCapsule_IsValid(c, "dltensor"))
    throw py::type_error("__dlpack__ did not return a 'dltensor' capsule");
  auto* mt = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(c, "dltensor"));
  PyCapsule_SetName(c, "used_dltensor");  // ours now: the Foreign below calls its deleter
  auto foreign = std::make_shared<Foreign>();
  foreign->managed = mt;
  const DLTensor& t = mt->dl_tensor;
  DeviceArray a;
  a.foreign = foreign;
  if (t.dtype.lanes != 1) throw py::type_error("DLPack: vector dtypes are not supported");
  if (t.dtype.code == kFastrnnDLFloat && t.dtype.bits == 32)
    a.dtype = DType::kF32;
  else if (t.dtype.code == kFastrnnDLFloat && t.dtype.bits == 16)
    a.dtype = DType::kF16;
  else if (t.dtype.code == kFastrnnDLBfloat && t.dtype.bits == 16)
    a.dtype = DType::kBF16;
  else if (t.dtype.code == kFastrnnDLFloat && t.dtype.bits == 64)
    a.dtype = DType::kF64;
  else if (t.dtype.code == kFastrnnDLInt && t.dtype.bits == 32)
    a.dtype = DType::kI32;
  else if (t.dtype.code == kFastrnnDLInt && t.dtype.bits == 64)
    a.dtype = DType::kI64;
  else
    throw py::type_error("DLPack: unsupported dtype (code " + std::to_string(t.dtype.code) + ", " +
                         std::to_string(t.dtype.bits) + " bits)");
  a.shape.assign(t.shape, t.shape + t.ndim);
  if (t.strides) {
    a.strides.assign(t.strides, t.strides + t.ndim);
  } else {
    a.strides.assign(t.ndim, 1);
    int64_t n = 1;
    for (int d = t.ndim; d-- > 0;) {
      a.strides[d] = n;
      n *= a.shape[d];
    }
  }
  a.ptr = static_cast<char*>(t.data) + t.byte_offset;
  a.device = gpu::emulated() ? 0 : t.device.device_id;
  set_bounds(a);
  return a;
}

bool is_dlpack_device_array(const py::object& obj) {
  if (!py::hasattr(obj, "__dlpack_device__") || !py::hasattr(obj, "__dlpack__")) return false;
  try {
    py::tuple dev = obj.attr("__dlpack_device__")();
    const int type = dev[0].cast<int>();
    return type == gpu::dlpack_device_type() || (!gpu::emulated() && type == kFastrnnDLCUDAManaged);
  } catch (py::error_already_set&) {
    return false;
  }
}

// Our DeviceArray as is; a CUDA array through __cuda_array_interface__ (no copy) or DLPack.
DeviceArray as_device_array(const py::object& obj, const char* name) {
  if (py::isinstance<DeviceArray>(obj)) return obj.cast<DeviceArray>();
  if (!gpu::emulated() && py::hasattr(obj, "__cuda_array_interface__"))
    return from_cuda_array_interface(obj);
  if (py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) +
                         ": expected a device array (CuPy, PyTorch CUDA tensor, ...), got a "
                         "numpy.ndarray");
  if (is_dlpack_device_array(obj)) return from_dlpack(obj);
  throw py::type_error(std::string(name) +
                       ": expected a CUDA device array (__cuda_array_interface__ or DLPack), got " +
                       std::string(py::str(py::type::of(obj).attr("__name__"))));
}

// ------------------------------------------------------------------------------------------------
// Exporting: DLPack capsules and __cuda_array_interface__.

struct Export {
  DLManagedTensor mt;
  DeviceArray keep;
  std::vector<int64_t> shape, strides;
};

void export_deleter(DLManagedTensor* self) {
  py::gil_scoped_acquire gil;
  delete static_cast<Export*>(self->manager_ctx);
}

void capsule_destructor(PyObject* cap) {
  if (PyCapsule_IsValid(cap, "dltensor")) {  // never consumed
    auto* mt = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
    if (mt && mt->deleter) mt->deleter(mt);
  } else {
    PyErr_Clear();
  }
}

py::capsule to_dlpack(const DeviceArray& a) {
  auto* e = new Export();
  e->keep = a;
  e->shape = a.shape;
  e->strides = a.strides;
  DLTensor& t = e->mt.dl_tensor;
  t.data = a.ptr;  // element 0 itself, as NumPy and CuPy export views
  t.byte_offset = 0;
  t.device.device_type = gpu::dlpack_device_type();
  t.device.device_id = gpu::emulated() ? 0 : a.device;
  t.ndim = int32_t(a.shape.size());
  t.dtype.code = info(a.dtype).dl_code;
  t.dtype.bits = uint8_t(8 * a.itemsize());
  t.dtype.lanes = 1;
  t.shape = e->shape.data();
  t.strides = e->strides.data();
  e->mt.manager_ctx = e;
  e->mt.deleter = export_deleter;
  PyObject* cap = PyCapsule_New(&e->mt, "dltensor", capsule_destructor);
  if (!cap) {
    delete e;
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(cap);
}

py::dict cuda_array_interface(const DeviceArray& a) {
  if (gpu::emulated())
    throw py::attribute_error("__cuda_array_interface__: the host emulation has no device memory");
  py::dict d;
  d["version"] = 3;
  d["shape"] = py::tuple(py::cast(a.shape));
  d["typestr"] = info(a.dtype).typestr;
  d["data"] = py::make_tuple(reinterpret_cast<uintptr_t>(a.ptr), a.readonly);
  if (a.contiguous()) {
    d["strides"] = py::none();
  } else {
    std::vector<int64_t> b;
    for (int64_t s : a.strides) b.push_back(s * a.itemsize());
    d["strides"] = py::tuple(py::cast(b));
  }
  d["stream"] = py::none();  // every call synchronizes before it returns
  return d;
}

// ------------------------------------------------------------------------------------------------
// Argument checks

struct Expect {
  DType dtype;
  int device;
};

// Whether two indices of `a` may reach the same element. Sorted by stride, each dimension of
// extent > 1 must step past the farthest element the smaller-stride dimensions reach (every
// strided view of a dense buffer passes: transposed, batch-first, one direction's half of a
// bidirectional output); zero or negative strides fail.
bool overlapping(const DeviceArray& a) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, extent)
  for (size_t d = 0; d < a.shape.size(); ++d)
    if (a.shape[d] > 1) dims.emplace_back(a.strides[d], a.shape[d]);
  std::sort(dims.begin(), dims.end());
  int64_t farthest = 0;  // offset of the farthest element the dimensions so far reach
  for (const auto& [stride, extent] : dims) {
    if (stride <= farthest) return true;
    farthest += stride * (extent - 1);
  }
  return false;
}

// A device array argument of the expected dtype, device and shape; `last_contiguous`: the last
// dimension has stride 1; `contiguous`: the whole array is C-contiguous.
DeviceArray check_arg(DeviceArray a, const char* name, const Expect& ex,
                      const std::vector<int64_t>& shape, bool output, bool contiguous,
                      bool last_contiguous = true) {
  if (a.dtype != ex.dtype)
    throw py::type_error(std::string(name) + ": expected dtype " + info(ex.dtype).name + ", got " +
                         info(a.dtype).name);
  if (a.device != ex.device)
    throw std::invalid_argument(std::string(name) + ": the array is on " + device_str(a.device) +
                                ", the weights on " + device_str(ex.device) +
                                " (mismatched devices)");
  if (a.shape != shape)
    throw std::invalid_argument(std::string(name) + ": expected shape " + shape_str(shape) +
                                ", got " + shape_str(a.shape));
  if (contiguous && !a.contiguous())
    throw std::invalid_argument(std::string(name) + ": expected a C-contiguous array");
  if (last_contiguous && !shape.empty() && shape.back() > 1 && a.strides.back() != 1)
    throw std::invalid_argument(std::string(name) +
                                ": the last dimension must be contiguous (stride 1)");
  if (output && a.readonly) throw std::invalid_argument(std::string(name) + ": read-only array");
  if (output && overlapping(a))
    throw std::invalid_argument(std::string(name) + ": the output's elements overlap (strides " +
                                shape_str(a.strides) +
                                "): GPU threads writing them at once would race");
  return a;
}

DeviceArray device_arg(const py::object& obj, const char* name, const Expect& ex,
                       const std::vector<int64_t>& shape, bool output, bool contiguous) {
  return check_arg(as_device_array(obj, name), name, ex, shape, output, contiguous);
}

template <typename T>
const T* ptr_or_null(const DeviceArray* a) {
  return a ? a->data<T>() : nullptr;
}

// The persistent kernel's mode (ForwardIO::persistent): the argument, else the environment
// variable FASTRNN_CUDA_PERSISTENT, else auto. -1 auto, 0 off, 1 on.
int persistent_mode(const py::object& arg) {
  auto parse = [](std::string v, const std::string& what) {
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    if (v == "auto" || v.empty()) return -1;
    if (v == "0" || v == "off" || v == "false") return 0;
    if (v == "1" || v == "on" || v == "true") return 1;
    throw std::invalid_argument(what + ": expected 'auto', 'on' (1) or 'off' (0), got '" + v + "'");
  };
  if (arg.is_none()) {
    const char* env = std::getenv("FASTRNN_CUDA_PERSISTENT");
    return env ? parse(env, "FASTRNN_CUDA_PERSISTENT") : -1;
  }
  if (py::isinstance<py::bool_>(arg)) return arg.cast<bool>() ? 1 : 0;
  if (!py::isinstance<py::str>(arg))
    throw py::type_error("persistent: expected None, a bool or 'auto' / 'on' / 'off'");
  return parse(arg.cast<std::string>(), "persistent");
}

py::dict plan_dict(const gpu::PersistentPlan& p) {
  py::dict d;
  d["fits"] = p.fits;
  d["reason"] = p.fits ? py::object(py::none()) : py::object(py::str(p.reason));
  d["blocks"] = p.ctas;
  d["units_per_block"] = p.units;
  d["threads"] = p.threads;
  d["passes"] = p.passes;
  d["shared_bytes"] = p.shared_bytes;
  return d;
}

// ------------------------------------------------------------------------------------------------
// One layer and direction's weights on one device.

struct ContextHandle {
  gpu::Context ctx;
};

class Weights {
 public:
  // dtype: the storage type, by default w_hh's. bfloat16 / float16 round float weights once here
  // (nearest even); the input-side bias sum b_ih + b_hh is then formed in float from the rounded
  // values and kept in float (the compute type), so a 16-bit layer computes exactly what a
  // float32 layer with the rounded weights computes.
  Weights(const std::string& cell_name_, const py::object& w_ih, const py::object& w_hh,
          const py::object& b_ih, const py::object& b_hh, const py::object& peephole, int device,
          const py::object& dtype)
      : cell_(parse_cell(cell_name_)), device_(device) {
    if (device < 0) throw std::invalid_argument("device: expected an ordinal >= 0");
    DType given = DType::kF32;
    py::array wi = host_copy(w_ih, "w_ih"), wh = host_copy(w_hh, "w_hh", &given);
    if (wi.ndim() != 2 || wh.ndim() != 2)
      throw std::invalid_argument("w_ih and w_hh must be 2-D (G*H, I) and (G*H, H)");
    dtype_ = dtype.is_none() ? given : dtype_of(dtype);
    if (dtype_ == DType::kI32 || dtype_ == DType::kI64)
      throw py::type_error("w_hh: expected dtype float32, float64, bfloat16 or float16");
    if (is_16bit(dtype_)) {
      init_16bit(wi, wh, b_ih, b_hh, peephole);
      return;
    }
    const int64_t G = fastrnn::num_gates(cell_);
    hidden_ = wh.shape(1);
    input_ = wi.shape(1);
    if (hidden_ < 1 || input_ < 1)
      throw std::invalid_argument("w_ih, w_hh: input and hidden sizes must be >= 1");
    const int64_t GH = G * hidden_;
    check_host(wi, "w_ih", {GH, input_});
    check_host(wh, "w_hh", {GH, hidden_});
    w_ih_ = from_numpy(wi, device);
    w_hh_ = from_numpy(wh, device);
    const bool has_bi = !b_ih.is_none(), has_bh = !b_hh.is_none();
    if (has_bi != has_bh) throw std::invalid_argument("b_ih, b_hh: give both biases or neither");
    if (has_bi) {
      py::array bi = host_copy(b_ih, "b_ih"), bh = host_copy(b_hh, "b_hh");
      check_host(bi, "b_ih", {GH});
      check_host(bh, "b_hh", {GH});
      // b_ih + b_hh on the input side, except the cell's inner bias (the bias rule, cells/all.h)
      py::array bx = dtype_ == DType::kF32 ? input_bias<float>(bi, bh) : input_bias<double>(bi, bh);
      bias_x_ = std::make_unique<DeviceArray>(from_numpy(bx, device));
      if (const int g = fastrnn::cells::inner_bias_gate(cell_); g >= 0) {
        py::array bhn = py::array(bh[py::slice(g * hidden_, (g + 1) * hidden_, 1)]);
        b_hn_ = std::make_unique<DeviceArray>(from_numpy(bhn, device));
      }
      has_bias_ = true;
    }
    if (!peephole.is_none()) {
      if (!fastrnn::has_peephole(cell_))
        throw std::invalid_argument("peephole: only the LSTM has peephole weights");
      py::array p = host_copy(peephole, "peephole");
      check_host(p, "peephole", {3 * hidden_});
      peep_ = std::make_unique<DeviceArray>(from_numpy(p, device));
    }
  }

  std::string cell() const { return cell_name(cell_); }
  int64_t input_size() const { return input_; }
  int64_t hidden_size() const { return hidden_; }
  py::object dtype() const { return dtype_object(dtype_); }
  int device() const { return device_; }
  bool has_bias() const { return has_bias_; }
  bool has_peephole() const { return bool(peep_); }

  // Writes y (a [T, B, H] view, zero-filled by the caller), h_n, c_n; returns the context of a
  // training forward, else None.
  py::object forward(const py::object& x, const py::object& h0, const py::object& c0,
                     const py::object& lengths, bool reverse, bool training, const py::object& y,
                     const py::object& h_n, const py::object& c_n, const py::object& persistent) {
    const Expect ex{dtype_, device_};
    const int mode = persistent_mode(persistent);
    DeviceArray xa = as_device_array(x, "x");
    if (xa.shape.size() != 3)
      throw std::invalid_argument("x: expected a 3-D array (T, B, I=" + std::to_string(input_) +
                                  "), got shape " + shape_str(xa.shape));
    const int64_t Tn = xa.shape[0], B = xa.shape[1], H = hidden_;
    if (Tn < 1 || B < 1) throw std::invalid_argument("x: T and B must be >= 1");
    xa = check_arg(xa, "x", ex, {Tn, B, input_}, false, false);
    const bool lstm = fastrnn::has_cell_state(cell_);
    std::unique_ptr<DeviceArray> h0a, c0a, cna;
    if (!h0.is_none())
      h0a = std::make_unique<DeviceArray>(device_arg(h0, "h0", ex, {B, H}, false, true));
    if (!c0.is_none()) {
      if (!lstm) throw std::invalid_argument("c0: only the LSTM has a cell state");
      c0a = std::make_unique<DeviceArray>(device_arg(c0, "c0", ex, {B, H}, false, true));
    }
    DeviceArray ya = device_arg(y, "y", ex, {Tn, B, H}, true, false);
    DeviceArray hna = device_arg(h_n, "h_n", ex, {B, H}, true, true);
    if (lstm) {
      if (c_n.is_none()) throw std::invalid_argument("c_n: the LSTM needs a c_n output");
      cna = std::make_unique<DeviceArray>(device_arg(c_n, "c_n", ex, {B, H}, true, true));
    }
    std::vector<int64_t> len;
    if (!lengths.is_none()) {
      auto l = py::array_t < int64_t, py::array::c_style | py::array::forcecast > ::ensure(lengths);
      if (!l || l.ndim() != 1 || l.shape(0) != B)
        throw std::invalid_argument("lengths: expected " + std::to_string(B) + " integers");
      len.assign(l.data(), l.data() + B);
    }
    const gpu::Context ctx = dispatch_float(dtype_, [&](auto tag) {
      return run_forward<decltype(tag)>(xa, h0a.get(), c0a.get(), len, reverse, training, ya, hna,
                                        cna.get(), mode);
    });
    if (!training) return py::none();
    return py::cast(ContextHandle{ctx});
  }

  // Writes dx (a [T, B, I] view: zero-filled by the caller, or accumulated into), dh0, dc0;
  // returns the weight gradients as new device arrays.
  py::dict backward(const ContextHandle& pc, const py::object& dy, const py::object& dh_n,
                    const py::object& dc_n, const py::object& dx, bool dx_accumulate,
                    const py::object& dh0, const py::object& dc0) {
    const gpu::Context& ctx = pc.ctx;
    if (ctx.itemsize != info(dtype_).itemsize || ctx.cell != cell_ || ctx.input != input_ ||
        ctx.hidden != hidden_ || ctx.device != device_)
      throw std::invalid_argument("ctx: it comes from a different layer");
    const Expect ex{dtype_, device_};
    const int64_t Tn = ctx.steps, B = ctx.batch, H = hidden_, I = input_;
    const int64_t GH = fastrnn::num_gates(cell_) * H;
    const bool lstm = fastrnn::has_cell_state(cell_);
    std::unique_ptr<DeviceArray> dya, dhna, dcna, dc0a;
    if (!dy.is_none())
      dya = std::make_unique<DeviceArray>(device_arg(dy, "dy", ex, {Tn, B, H}, false, false));
    if (!dh_n.is_none())
      dhna = std::make_unique<DeviceArray>(device_arg(dh_n, "dh_n", ex, {B, H}, false, true));
    if (!dc_n.is_none() && lstm)
      dcna = std::make_unique<DeviceArray>(device_arg(dc_n, "dc_n", ex, {B, H}, false, true));
    DeviceArray dxa = device_arg(dx, "dx", ex, {Tn, B, I}, true, false);
    DeviceArray dh0a = device_arg(dh0, "dh0", ex, {B, H}, true, true);
    if (lstm) {
      if (dc0.is_none()) throw std::invalid_argument("dc0: the LSTM needs a dc0 output");
      dc0a = std::make_unique<DeviceArray>(device_arg(dc0, "dc0", ex, {B, H}, true, true));
    }
    DeviceArray dw_ih = DeviceArray::empty({GH, I}, dtype_, device_);
    DeviceArray dw_hh = DeviceArray::empty({GH, H}, dtype_, device_);
    std::unique_ptr<DeviceArray> db_ih, db_hh, dpeep;
    if (has_bias_) {
      db_ih = std::make_unique<DeviceArray>(DeviceArray::empty({GH}, dtype_, device_));
      db_hh = std::make_unique<DeviceArray>(DeviceArray::empty({GH}, dtype_, device_));
    }
    if (peep_) dpeep = std::make_unique<DeviceArray>(DeviceArray::empty({3 * H}, dtype_, device_));
    dispatch_float(dtype_, [&](auto tag) {
      run_backward<decltype(tag)>(ctx, dya.get(), dhna.get(), dcna.get(), dxa, dx_accumulate, dh0a,
                                  dc0a.get(), dw_ih, dw_hh, db_ih.get(), db_hh.get(), dpeep.get());
    });
    py::dict g;
    g["w_ih"] = dw_ih;
    g["w_hh"] = dw_hh;
    g["b_ih"] = db_ih ? py::cast(*db_ih) : py::none();
    g["b_hh"] = db_hh ? py::cast(*db_hh) : py::none();
    g["peephole"] = dpeep ? py::cast(*dpeep) : py::none();
    return g;
  }

 private:
  // A host array of a weight given as NumPy, a torch CPU tensor or a device array (16-bit device
  // arrays come back widened to float32, exactly); `dt` gets the dtype as given.
  static py::array host_copy(const py::object& obj, const char* name, DType* dt = nullptr) {
    if (!py::isinstance<py::array>(obj) &&
        (py::isinstance<DeviceArray>(obj) || py::hasattr(obj, "__cuda_array_interface__") ||
         is_dlpack_device_array(obj))) {
      DeviceArray d = as_device_array(obj, name);
      if (dt) *dt = d.dtype;
      return is_16bit(d.dtype) ? d.numpy(py::str("float32")) : d.numpy();
    }
    py::array a = py::array::ensure(obj, py::array::c_style);
    if (!a) throw py::type_error(std::string(name) + ": expected an array");
    if (dt) *dt = dtype_from_name(py::str(a.dtype()), name);
    return a;
  }

  void check_shape(const py::array& a, const char* name, const std::vector<int64_t>& shape) const {
    std::vector<int64_t> got(a.shape(), a.shape() + a.ndim());
    if (got != shape)
      throw std::invalid_argument(std::string(name) + ": expected shape " + shape_str(shape) +
                                  ", got " + shape_str(got));
  }

  // The constructor for bfloat16 / float16 storage: any float host array is rounded once.
  void init_16bit(const py::array& wi, const py::array& wh, const py::object& b_ih,
                  const py::object& b_hh, const py::object& peephole) {
    const int64_t G = fastrnn::num_gates(cell_);
    hidden_ = wh.shape(1);
    input_ = wi.shape(1);
    if (hidden_ < 1 || input_ < 1)
      throw std::invalid_argument("w_ih, w_hh: input and hidden sizes must be >= 1");
    const int64_t GH = G * hidden_, H = hidden_;
    check_shape(wi, "w_ih", {GH, input_});
    check_shape(wh, "w_hh", {GH, hidden_});
    w_ih_ = upload(storage_bits(wi, dtype_, "w_ih").data(), {GH, input_}, dtype_, device_);
    w_hh_ = upload(storage_bits(wh, dtype_, "w_hh").data(), {GH, hidden_}, dtype_, device_);
    const bool has_bi = !b_ih.is_none(), has_bh = !b_hh.is_none();
    if (has_bi != has_bh) throw std::invalid_argument("b_ih, b_hh: give both biases or neither");
    if (has_bi) {
      py::array bi = host_copy(b_ih, "b_ih"), bh = host_copy(b_hh, "b_hh");
      check_shape(bi, "b_ih", {GH});
      check_shape(bh, "b_hh", {GH});
      const std::vector<uint16_t> i16 = storage_bits(bi, dtype_, "b_ih");
      const std::vector<uint16_t> h16 = storage_bits(bh, dtype_, "b_hh");
      std::vector<float> bx(size_t(GH), 0.0f);  // in float, from the rounded values
      for (int64_t i = 0; i < GH; ++i) {
        bx[i] = widen_bits(i16[i], dtype_);
        if (fastrnn::cells::folds_hidden_bias(cell_, i, H)) bx[i] += widen_bits(h16[i], dtype_);
      }
      bias_x_ = std::make_unique<DeviceArray>(upload(bx.data(), {GH}, DType::kF32, device_));
      if (const int g = fastrnn::cells::inner_bias_gate(cell_); g >= 0)
        b_hn_ = std::make_unique<DeviceArray>(upload(h16.data() + g * H, {H}, dtype_, device_));
      has_bias_ = true;
    }
    if (!peephole.is_none()) {
      if (!fastrnn::has_peephole(cell_))
        throw std::invalid_argument("peephole: only the LSTM has peephole weights");
      py::array p = host_copy(peephole, "peephole");
      check_shape(p, "peephole", {3 * H});
      peep_ = std::make_unique<DeviceArray>(
          upload(storage_bits(p, dtype_, "peephole").data(), {3 * H}, dtype_, device_));
    }
  }

  void check_host(const py::array& a, const char* name, const std::vector<int64_t>& shape) const {
    if (dtype_of(a.dtype()) != dtype_)
      throw py::type_error(std::string(name) + ": expected dtype " + info(dtype_).name + ", got " +
                           std::string(py::str(a.dtype())));
    std::vector<int64_t> got(a.shape(), a.shape() + a.ndim());
    if (got != shape)
      throw std::invalid_argument(std::string(name) + ": expected shape " + shape_str(shape) +
                                  ", got " + shape_str(got));
  }

  template <typename T>
  py::array input_bias(const py::array& bi, const py::array& bh) const {
    auto a = py::array_t<T, py::array::c_style>::ensure(bi);
    auto b = py::array_t<T, py::array::c_style>::ensure(bh);
    const int64_t GH = a.shape(0), H = hidden_;
    py::array_t<T> out(GH);
    for (int64_t i = 0; i < GH; ++i) {
      T v = a.data()[i];
      if (fastrnn::cells::folds_hidden_bias(cell_, i, H)) v += b.data()[i];
      out.mutable_data()[i] = v;
    }
    return out;
  }

  template <typename T>
  gpu::Weights<T> weights() const {
    gpu::Weights<T> w;
    w.cell = cell_;
    w.input = input_;
    w.hidden = hidden_;
    w.w_ih = w_ih_.data<T>();
    w.w_hh = w_hh_.data<T>();
    w.bias_x = ptr_or_null<fastrnn::accum_t<T>>(bias_x_.get());
    w.b_hn = ptr_or_null<T>(b_hn_.get());
    w.peep = ptr_or_null<T>(peep_.get());
    return w;
  }

  template <typename T>
  gpu::Context run_forward(const DeviceArray& x, const DeviceArray* h0, const DeviceArray* c0,
                           const std::vector<int64_t>& len, bool reverse, bool training,
                           const DeviceArray& y, const DeviceArray& h_n, const DeviceArray* c_n,
                           int persistent) {
    gpu::ForwardIO<T> io;
    io.persistent = persistent;
    io.x = x.data<T>();
    io.x_st = x.strides[0];
    io.x_sb = x.strides[1];
    io.h0 = ptr_or_null<T>(h0);
    io.c0 = ptr_or_null<T>(c0);
    io.y = y.data<T>();
    io.y_st = y.strides[0];
    io.y_sb = y.strides[1];
    io.h_n = h_n.data<T>();
    io.c_n = c_n ? c_n->data<T>() : nullptr;
    io.steps = x.shape[0];
    io.batch = x.shape[1];
    const gpu::Weights<T> w = weights<T>();
    const int64_t* lp = len.empty() ? nullptr : len.data();
    py::gil_scoped_release nogil;
    return gpu::forward<T>(device_, w, io, lp, reverse, training);
  }

  template <typename T>
  void run_backward(const gpu::Context& ctx, const DeviceArray* dy, const DeviceArray* dh_n,
                    const DeviceArray* dc_n, const DeviceArray& dx, bool dx_accumulate,
                    const DeviceArray& dh0, const DeviceArray* dc0, const DeviceArray& dw_ih,
                    const DeviceArray& dw_hh, const DeviceArray* db_ih, const DeviceArray* db_hh,
                    const DeviceArray* dpeep) {
    gpu::BackwardIO<T> io;
    io.dy = ptr_or_null<T>(dy);
    if (dy) {
      io.dy_st = dy->strides[0];
      io.dy_sb = dy->strides[1];
    }
    io.dh_n = ptr_or_null<T>(dh_n);
    io.dc_n = ptr_or_null<T>(dc_n);
    io.dx = dx.data<T>();
    io.dx_st = dx.strides[0];
    io.dx_sb = dx.strides[1];
    io.dx_accumulate = dx_accumulate;
    io.dh0 = dh0.data<T>();
    io.dc0 = dc0 ? dc0->data<T>() : nullptr;
    io.dw_ih = dw_ih.data<T>();
    io.dw_hh = dw_hh.data<T>();
    io.db_ih = db_ih ? db_ih->data<T>() : nullptr;
    io.db_hh = db_hh ? db_hh->data<T>() : nullptr;
    io.dpeep = dpeep ? dpeep->data<T>() : nullptr;
    const gpu::Weights<T> w = weights<T>();
    py::gil_scoped_release nogil;
    gpu::backward<T>(device_, w, ctx, io);
  }

  Cell cell_;
  int device_;
  DType dtype_ = DType::kF32;
  int64_t input_ = 0, hidden_ = 0;
  bool has_bias_ = false;
  DeviceArray w_ih_, w_hh_;
  std::unique_ptr<DeviceArray> bias_x_, b_hn_, peep_;  // bias_x_: float for the 16-bit types
};

// ------------------------------------------------------------------------------------------------

py::dict probe_dict() {
  gpu::Probe p = gpu::probe();
  py::dict d;
  d["emulated"] = p.emulated;
  py::list devs;
  for (const auto& i : p.devices) {
    py::dict e;
    e["index"] = i.index;
    e["name"] = i.name;
    e["capability"] = py::make_tuple(i.major, i.minor);
    e["total_memory"] = i.total_memory;
    e["multiprocessors"] = i.multiprocessors;
    devs.append(e);
  }
  d["devices"] = devs;
  d["error"] = p.error.empty() ? py::object(py::none()) : py::object(py::str(p.error));
  d["runtime_version"] = p.runtime_version;
  d["driver_version"] = p.driver_version;
  return d;
}

DeviceArray dropout(const py::object& x_obj, double p, uint64_t seed) {
  DeviceArray x = as_device_array(x_obj, "x").contiguous_copy();
  if (x.dtype == DType::kI32 || x.dtype == DType::kI64)
    throw py::type_error("x: expected a float dtype, got " + std::string(info(x.dtype).name));
  if (!(p >= 0.0 && p < 1.0)) throw std::invalid_argument("p: expected 0 <= p < 1");
  DeviceArray y = DeviceArray::empty(x.shape, x.dtype, x.device);
  const int64_t n = x.size();
  py::gil_scoped_release nogil;
  dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    gpu::dropout(x.device, y.data<T>(), x.data<T>(), n, p, seed);
  });
  return y;
}

std::vector<int64_t> shape_arg(const py::object& shape) {
  std::vector<int64_t> s;
  if (py::isinstance<py::int_>(shape)) return {shape.cast<int64_t>()};
  for (auto v : shape) s.push_back(v.cast<int64_t>());
  return s;
}

}  // namespace

// Registers the GPU path's classes and functions on m: fastrnn._C_cuda itself, or the submodule
// fastrnn._C._cuda_host in the host build.
void register_gpu_module(py::module_& m) {
  // Exception classes live as long as the interpreter: references deliberately never released
  // (a static py::object would be destroyed after the interpreter at exit).
  const std::string prefix = std::string(py::str(m.attr("__name__"))) + ".";
  static PyObject* cuda_error = nullptr;
  static PyObject* oom = nullptr;
  cuda_error = PyErr_NewException((prefix + "CudaError").c_str(), PyExc_RuntimeError, nullptr);
  if (!cuda_error) throw py::error_already_set();
  py::tuple oom_bases = py::make_tuple(py::handle(cuda_error), py::handle(PyExc_MemoryError));
  oom = PyErr_NewException((prefix + "CudaOutOfMemoryError").c_str(), oom_bases.ptr(), nullptr);
  if (!oom) throw py::error_already_set();
  m.attr("CudaError") = py::handle(cuda_error);
  m.attr("CudaOutOfMemoryError") = py::handle(oom);
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const gpu::OutOfMemory& e) {
      PyErr_SetString(oom, e.what());
    } catch (const gpu::Error& e) {
      PyErr_SetString(cuda_error, e.what());
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.attr("emulated") = gpu::emulated();

  py::class_<DeviceArray>(m, "DeviceArray", py::module_local(),
                          "A strided view of device memory, owned or borrowed (no copy). Exports "
                          "__cuda_array_interface__ and DLPack; strides are in elements.")
      .def_property_readonly("shape",
                             [](const DeviceArray& a) { return py::tuple(py::cast(a.shape)); })
      .def_property_readonly("strides",
                             [](const DeviceArray& a) { return py::tuple(py::cast(a.strides)); })
      .def_property_readonly(
          "dtype", [](const DeviceArray& a) { return dtype_object(a.dtype); },
          "A numpy.dtype, or the string 'bfloat16' (NumPy has none).")
      .def_property_readonly("device", [](const DeviceArray& a) { return a.device; })
      .def_property_readonly("ndim", [](const DeviceArray& a) { return a.shape.size(); })
      .def_property_readonly("size", &DeviceArray::size)
      .def_property_readonly(
          "ptr", [](const DeviceArray& a) { return reinterpret_cast<uintptr_t>(a.ptr); })
      .def_property_readonly("is_contiguous", &DeviceArray::contiguous)
      .def_property_readonly("__cuda_array_interface__", &cuda_array_interface)
      .def(
          "__dlpack__", [](const DeviceArray& a, const py::object&) { return to_dlpack(a); },
          py::arg("stream") = py::none())
      .def("__dlpack_device__",
           [](const DeviceArray& a) {
             return py::make_tuple(gpu::dlpack_device_type(), gpu::emulated() ? 0 : a.device);
           })
      .def("numpy", &DeviceArray::numpy, py::arg("dtype") = py::none(),
           "A host copy (numpy.ndarray). 16-bit arrays: dtype='float32' widens (exactly), "
           "'uint16' gives the bits; bfloat16 in its own dtype needs ml_dtypes.")
      .def(
          "contiguous", [](const DeviceArray& a) { return a.contiguous_copy(); },
          "This array if C-contiguous, else a contiguous copy.")
      .def("copy", [](const DeviceArray& a) { return a.contiguous_copy(true); })
      .def("view", &DeviceArray::view, py::arg("offset"), py::arg("shape"), py::arg("strides"),
           "A view of the same memory: element offset, shape, strides (elements).")
      .def("__getitem__",
           [](const DeviceArray& a, int64_t i) {
             if (a.shape.empty()) throw py::index_error("0-d array");
             if (i < 0) i += a.shape[0];
             if (i < 0 || i >= a.shape[0]) throw py::index_error("index out of range");
             return a.view(i * a.strides[0],
                           std::vector<int64_t>(a.shape.begin() + 1, a.shape.end()),
                           std::vector<int64_t>(a.strides.begin() + 1, a.strides.end()));
           })
      .def(py::pickle(  // through a host copy (16-bit types: their bits), back onto the same
                        // device ordinal
          [](const DeviceArray& a) -> py::tuple {
            if (is_16bit(a.dtype))
              return py::make_tuple(a.numpy(py::str("uint16")), a.device, info(a.dtype).name);
            return py::make_tuple(a.numpy(), a.device);
          },
          [](const py::tuple& t) {
            py::array arr = t[0].cast<py::array>();
            if (t.size() < 3) return from_numpy(arr, t[1].cast<int>());
            arr = py::array::ensure(arr, py::array::c_style);
            std::vector<int64_t> shape(arr.shape(), arr.shape() + arr.ndim());
            return upload(arr.data(), shape, dtype_of(t[2]), t[1].cast<int>());
          }))
      .def("__len__",
           [](const DeviceArray& a) {
             if (a.shape.empty()) throw py::type_error("len() of a 0-d array");
             return a.shape[0];
           })
      .def("__repr__", [](const DeviceArray& a) {
        return "DeviceArray(shape=" + shape_str(a.shape) + ", dtype=" + info(a.dtype).name +
               ", device='" + device_str(a.device) + "')";
      });

  py::class_<ContextHandle>(m, "Context", py::module_local(),
                            "What a training forward saved for its backward (device memory).");

  py::class_<Weights>(m, "Weights", py::module_local(),
                      "One layer and direction's weights, copied to one device once.")
      .def(py::init<const std::string&, const py::object&, const py::object&, const py::object&,
                    const py::object&, const py::object&, int, const py::object&>(),
           py::arg("cell"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = py::none(),
           py::arg("b_hh") = py::none(), py::arg("peephole") = py::none(), py::arg("device") = 0,
           py::arg("dtype") = py::none())
      .def_property_readonly("cell", &Weights::cell)
      .def_property_readonly("input_size", &Weights::input_size)
      .def_property_readonly("hidden_size", &Weights::hidden_size)
      .def_property_readonly("dtype", &Weights::dtype)
      .def_property_readonly("device", &Weights::device)
      .def_property_readonly("has_bias", &Weights::has_bias)
      .def_property_readonly("has_peephole", &Weights::has_peephole)
      .def("forward", &Weights::forward, py::arg("x"), py::arg("h0"), py::arg("c0"),
           py::arg("lengths"), py::arg("reverse"), py::arg("training"), py::arg("y"),
           py::arg("h_n"), py::arg("c_n") = py::none(), py::arg("persistent") = py::none(),
           "persistent: the small-batch persistent kernel, 'auto' (where it fits), 'on' (error "
           "where it cannot run) or 'off'; None reads FASTRNN_CUDA_PERSISTENT (default auto).")
      .def("backward", &Weights::backward, py::arg("ctx"), py::arg("dy"), py::arg("dh_n"),
           py::arg("dc_n"), py::arg("dx"), py::arg("dx_accumulate"), py::arg("dh0"),
           py::arg("dc0") = py::none());

  m.def(
      "persistent_plan",
      [](const std::string& cell, int64_t hidden, int64_t batch, const py::object& dtype,
         int device) {
        const DType dt = dtype_of(dtype);
        if (dt != DType::kF32 && dt != DType::kF64)
          throw py::type_error("dtype: expected float32 or float64");
        if (hidden < 1 || batch < 1)
          throw std::invalid_argument("hidden, batch: expected sizes >= 1");
        const Cell c = parse_cell(cell);
        gpu::PersistentPlan p;
        {
          py::gil_scoped_release nogil;
          p = gpu::persistent_plan(device, c, hidden, batch, info(dt).itemsize);
        }
        return plan_dict(p);
      },
      py::arg("cell"), py::arg("hidden"), py::arg("batch"), py::arg("dtype"), py::arg("device") = 0,
      "The launch the persistent small-batch kernel would make for a layer: {'fits', 'reason', "
      "'blocks', 'units_per_block', 'threads', 'passes', 'shared_bytes'}; with "
      "persistent='auto' a forward uses it exactly where 'fits'.");
  m.def("probe", &probe_dict,
        "{'emulated', 'devices': [{'index', 'name', 'capability', 'total_memory', "
        "'multiprocessors'}], 'error': why there are none, 'runtime_version', 'driver_version'}");
  m.def(
      "empty",
      [](const py::object& shape, const py::object& dtype, int device) {
        return DeviceArray::empty(shape_arg(shape), dtype_of(dtype), device);
      },
      py::arg("shape"), py::arg("dtype"), py::arg("device") = 0);
  m.def(
      "zeros",
      [](const py::object& shape, const py::object& dtype, int device) {
        DeviceArray a = DeviceArray::empty(shape_arg(shape), dtype_of(dtype), device);
        const size_t bytes = size_t(a.size()) * a.itemsize();
        py::gil_scoped_release nogil;
        gpu::zero(device, a.ptr, bytes);
        return a;
      },
      py::arg("shape"), py::arg("dtype"), py::arg("device") = 0);
  m.def("to_device", &from_numpy, py::arg("array"), py::arg("device") = 0,
        py::arg("dtype") = py::none(),
        "A device copy of a host (NumPy) array; dtype='bfloat16' or 'float16' rounds a float "
        "array to that type (nearest even).");
  m.def(
      "as_device_array", [](const py::object& obj) { return as_device_array(obj, "array"); },
      py::arg("array"), "A DeviceArray viewing a device array's memory (no copy), or TypeError.");
  m.def("is_device_array", [](const py::object& obj) {
    if (py::isinstance<DeviceArray>(obj)) return true;
    if (py::isinstance<py::array>(obj)) return false;
    if (!gpu::emulated() && py::hasattr(obj, "__cuda_array_interface__")) return true;
    return !gpu::emulated() && is_dlpack_device_array(obj);
  });
  m.def("dropout", &dropout, py::arg("x"), py::arg("p"), py::arg("seed"),
        "x * mask / (1 - p) with a mask that is a function of (seed, element index) only.");
  m.def(
      "synchronize",
      [](int device) {
        py::gil_scoped_release nogil;
        gpu::synchronize(device);
      },
      py::arg("device") = 0);
}

#if defined(FASTRNN_GPU_MODULE)
PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "fastrnn's CUDA kernels (private; use the fastrnn package, device='cuda')";
  register_gpu_module(m);
}
#else
// fastrnn._C._cuda_host: the same API on the host build of the kernels, for the CPU test suite.
void register_cuda_host(py::module_& m) {
  py::module_ sub = m.def_submodule(
      "_cuda_host", "The GPU path's driver and kernels run on the CPU (tests only; slow).");
  register_gpu_module(sub);
  sub.def(
      "_emulated_device",
      [](const py::object& multiprocessors, const py::object& shared_per_block,
         const py::object& cooperative) {
        gpu::PersistentDevice d = gpu::emulated_device();
        py::dict old;
        old["multiprocessors"] = d.multiprocessors;
        old["shared_per_block"] = d.shared_per_block;
        old["cooperative"] = d.cooperative;
        if (!multiprocessors.is_none()) d.multiprocessors = multiprocessors.cast<int>();
        if (!shared_per_block.is_none()) d.shared_per_block = shared_per_block.cast<int64_t>();
        if (!cooperative.is_none()) d.cooperative = cooperative.cast<bool>();
        gpu::set_emulated_device(d);
        return old;
      },
      py::arg("multiprocessors") = py::none(), py::arg("shared_per_block") = py::none(),
      py::arg("cooperative") = py::none(),
      "Tests: set what the host build pretends the device offers the persistent kernel; returns "
      "the previous settings.");
#if defined(FASTRNN_CUDA_BUILD_STATUS)
  sub.attr("build_status") = FASTRNN_CUDA_BUILD_STATUS;
#else
  sub.attr("build_status") = "unknown";
#endif
}
#endif
