// probe.h: part of bindings/cuda_module.cpp (the device probe and small helpers of the
// registration). Included inside that file's anonymous namespace, after its includes and aliases;
// not a standalone header.

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
