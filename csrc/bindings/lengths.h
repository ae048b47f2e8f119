// bindings/lengths.h: the Python face of the lengths plan (csrc/lengths_plan.h).
//
// fastrnn._C.LengthsPlan(lengths, steps) checks the lengths once and sorts the batch; the layer
// loop (python/fastrnn/_layer_loop.py) makes one per forward and passes it as `lengths` to every
// layer and direction, on the CPU (_C.Weights.forward) and the GPU (_C_cuda.Weights.forward and
// its host build _C._cuda_host). The type is registered by _C only, and not module-local, so the
// GPU module, built with the same pybind11, recognizes _C's plans (given_plan below). Those
// forwards still take a plain lengths array (fastrnn.functional passes one), from which they make
// the same plan themselves.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bindings/shape_str.h"
#include "lengths_plan.h"

namespace fastrnn {

// The plan a forward over x [T, B, ...] got as `lengths`, if it is a LengthsPlan (checked to be
// made for T and B); null for None or anything else (an array, which the caller reads itself).
inline std::shared_ptr<const LengthsPlan> given_plan(const pybind11::handle& obj, int64_t B,
                                                     int64_t T) {
  if (obj.is_none() || !pybind11::isinstance<LengthsPlan>(obj)) return nullptr;
  std::shared_ptr<const LengthsPlan> p = obj.cast<std::shared_ptr<LengthsPlan>>();
  check_plan(*p, B, T);
  return p;
}

// Registers fastrnn._C.LengthsPlan (in _C only: a second registration would clash).
inline void register_lengths_plan(pybind11::module_& m) {
  namespace py = pybind11;
  auto copy = [](const std::vector<int64_t>& v) {
    py::array_t<int64_t> a(int64_t(v.size()));
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
  };
  py::class_<LengthsPlan, std::shared_ptr<LengthsPlan>>(
      m, "LengthsPlan",
      "The batch of a forward with lengths, checked once and sorted by decreasing length "
      "(stable): one per forward, shared by every layer and direction.")
      .def(py::init([](const py::object& lengths, int64_t steps) {
             if (steps < 1)
               throw std::invalid_argument("steps: expected T >= 1, got " + std::to_string(steps));
             if (!py::isinstance<py::array>(lengths))
               throw py::type_error("lengths: expected a numpy.ndarray of integers, got " +
                                    std::string(py::str(py::type::of(lengths).attr("__name__"))));
             py::array arr = py::reinterpret_borrow<py::array>(lengths);
             const char kind = arr.dtype().kind();
             if (kind != 'i' && kind != 'u')
               throw py::type_error("lengths: expected integers, got dtype " +
                                    std::string(py::str(arr.dtype())));
             if (arr.ndim() != 1 || arr.shape(0) < 1)
               throw std::invalid_argument(
                   "lengths: expected a 1-D array of B >= 1 integers, got shape " +
                   shape_str(std::vector<int64_t>(arr.shape(), arr.shape() + arr.ndim())));
             auto len = py::array_t < int64_t,
                  py::array::c_style | py::array::forcecast > ::ensure(arr);
             if (!len) throw py::error_already_set();
             return std::make_shared<LengthsPlan>(lengths_plan(len.data(), len.shape(0), steps));
           }),
           py::arg("lengths"), py::arg("steps"))
      .def_readonly("batch", &LengthsPlan::batch)
      .def_readonly("steps", &LengthsPlan::steps)
      .def_property_readonly(
          "lengths", [=](const LengthsPlan& p) { return copy(p.len); }, "[B] as given")
      .def_property_readonly(
          "order", [=](const LengthsPlan& p) { return copy(p.order); },
          "[B] the batch row of each sorted row, longest first")
      .def_property_readonly(
          "active", [=](const LengthsPlan& p) { return copy(p.active); },
          "[T] sequences still running at each step")
      .def("__repr__", [](const LengthsPlan& p) {
        return "LengthsPlan(steps=" + std::to_string(p.steps) +
               ", batch=" + std::to_string(p.batch) + ")";
      });
}

}  // namespace fastrnn
