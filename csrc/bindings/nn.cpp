// nn.cpp: the pybind11 glue of the sequence-modeling building blocks (fastrnn.nn): validate,
// dispatch on dtype, release the GIL. The friendly argument checks live in Python
// (fastrnn/nn/_checks.py); these are the last line of defence against a crash.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "cpu/dispatch.h"
#include "nn/embedding.h"

namespace py = pybind11;

namespace {

template <typename T>
void embedding_backward_t(py::array_t<T> dweight, const py::array& ids_obj,
                          const py::array& dout_obj, int64_t padding_idx) {
  // dweight must be the caller's own C-contiguous array: it is updated in place.
  if (!(dweight.flags() & py::array::c_style) || !dweight.writeable() || dweight.ndim() != 2)
    throw std::invalid_argument("dweight: expected a writeable C-contiguous 2-D array (V, D)");
  auto ids = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(ids_obj);
  if (!ids) throw std::invalid_argument("ids: expected an integer array");
  if (!py::isinstance<py::array_t<T>>(dout_obj))
    throw py::type_error("dout: dtype does not match dweight's");
  auto dout = py::array_t<T, py::array::c_style>::ensure(dout_obj);
  const int64_t V = dweight.shape(0), D = dweight.shape(1), N = ids.size();
  if (dout.ndim() != 2 || dout.shape(0) != N || dout.shape(1) != D)
    throw std::invalid_argument("dout: expected shape (N, D) = (" + std::to_string(N) + ", " +
                                std::to_string(D) + ")");
  T* w = dweight.mutable_data();
  const int64_t* i = ids.data();
  const T* g = dout.data();
  const int threads = fastrnn::get_num_threads();
  py::gil_scoped_release nogil;
  fastrnn::embedding_backward<T>(w, i, g, V, D, N, padding_idx, threads);
}

}  // namespace

void register_nn(py::module_& m) {
  m.def("embedding_backward", &embedding_backward_t<float>, py::arg("dweight").noconvert(),
        py::arg("ids"), py::arg("dout"), py::arg("padding_idx") = -1,
        "dweight[ids[n]] += dout[n] in place (rows equal to padding_idx skipped); ids (N,), "
        "dout (N, D), dweight (V, D).");
  m.def("embedding_backward", &embedding_backward_t<double>, py::arg("dweight").noconvert(),
        py::arg("ids"), py::arg("dout"), py::arg("padding_idx") = -1);
}
