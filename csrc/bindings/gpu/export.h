// export.h: part of bindings/cuda_module.cpp (exporting DeviceArrays: DLPack capsules and
// __cuda_array_interface__). Included inside that file's anonymous namespace, after its includes
// and aliases; not a standalone header.

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
