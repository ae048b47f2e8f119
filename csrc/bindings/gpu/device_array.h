// device_array.h: part of bindings/cuda_module.cpp (DeviceArray: owned or borrowed device memory,
// imported from __cuda_array_interface__ or DLPack). Included inside that file's anonymous
// namespace, after its includes and aliases; not a standalone header.

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
