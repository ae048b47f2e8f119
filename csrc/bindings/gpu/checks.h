// checks.h: part of bindings/cuda_module.cpp (argument checks: dtype, device, shape, overlap; the
// persistent-kernel mode). Included inside that file's anonymous namespace, after its includes and
// aliases; not a standalone header.

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
