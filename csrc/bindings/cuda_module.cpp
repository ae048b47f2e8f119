// cuda_module.cpp: the Python face of the GPU path, compiled twice:
//   into fastrnn._C_cuda (with runtime_cuda.cu) when the build finds nvcc, and
//   into fastrnn._C as the submodule _cuda_host (with runtime_host.cpp), the host build that runs
//   the same driver and kernel bodies on the CPU so the CPU test suite covers them.
// It converts device arrays (__cuda_array_interface__, DLPack, or its own DeviceArray) into
// pointers with shapes and strides, checks dtypes, shapes and devices, releases the GIL around the
// runtime calls and turns CUDA errors into Python exceptions. No arithmetic here. This file holds
// the registration; the rest is in bindings/gpu/, one part per concern.
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

#include "bindings/lengths.h"
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

// The parts, by concern, each building on the ones before (clang-format: keep the order).
// clang-format off
#include "bindings/gpu/dtypes.h"        // dtypes, host-side 16-bit rounding
#include "bindings/gpu/device_array.h"  // DeviceArray; import from __cuda_array_interface__, DLPack
#include "bindings/gpu/export.h"        // export as DLPack capsules, __cuda_array_interface__
#include "bindings/gpu/checks.h"        // argument checks (dtype, device, shape, overlap)
#include "bindings/gpu/weights.h"       // one layer and direction's weights: forward, backward
#include "bindings/gpu/probe.h"         // the device probe, registration helpers
// clang-format on

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
