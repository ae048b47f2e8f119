// arrays.h: the bindings' shared last line of defence: sizes multiplied without overflow, and
// arrays that kernels may read through typed pointers. Baseline-compiled, bindings only.
#pragma once

#include <pybind11/numpy.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace fastrnn {

// a * b for sizes (both >= 0), or std::invalid_argument naming what overflowed
inline int64_t size_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
    throw std::invalid_argument(std::string(what) + ": size " + std::to_string(a) + " x " +
                                std::to_string(b) + " is negative or overflows");
  return r;
}

inline int64_t size_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r))
    throw std::invalid_argument(std::string(what) + ": size " + std::to_string(a) + " + " +
                                std::to_string(b) + " is negative or overflows");
  return r;
}

// `arr` if it is C-contiguous and aligned for its dtype, else a C-contiguous aligned copy. NumPy
// arrays can be misaligned (views of byte buffers, offset slices of structured data): reading
// them through T* would be undefined behaviour, so the kernels never see one.
template <typename T>
pybind11::array_t<T> c_aligned(const pybind11::array& arr) {
  namespace py = pybind11;
  constexpr int ready =
      py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if ((arr.flags() & ready) == ready && arr.dtype().equal(py::dtype::of<T>()))
    return py::reinterpret_borrow<py::array_t<T>>(arr);
  // ndarray.copy() allocates anew (aligned); astype converts dtype first where needed
  py::object out = arr.dtype().equal(py::dtype::of<T>())
                       ? arr.attr("copy")("C")
                       : arr.attr("astype")(py::dtype::of<T>(), "C");
  return py::reinterpret_borrow<py::array_t<T>>(out);
}

// An output array written in place: it must be the caller's own C-contiguous, aligned,
// writeable array (a copy would silently drop the result).
inline void check_inplace(const pybind11::array& arr, const char* name) {
  namespace py = pybind11;
  constexpr int need = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ |
                       py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                       py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  if ((arr.flags() & need) != need)
    throw std::invalid_argument(std::string(name) +
                                ": expected a writeable, C-contiguous, aligned array (it is "
                                "updated in place)");
}

}  // namespace fastrnn
