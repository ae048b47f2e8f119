// nn.cpp: the pybind11 glue of the sequence-modeling building blocks (fastrnn.nn): validate,
// dispatch on dtype, release the GIL. The friendly argument checks live in Python
// (fastrnn/nn/_checks.py); these are the last line of defence against a crash.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "bindings/arrays.h"
#include "cpu/dispatch.h"
#include "nn/embedding.h"

namespace py = pybind11;

namespace {

template <typename T>
void embedding_backward_t(py::array_t<T> dweight, const py::array& ids_obj,
                          const py::array& dout_obj, int64_t padding_idx) {
  // dweight must be the caller's own C-contiguous array: it is updated in place.
  fastrnn::check_inplace(dweight, "dweight");
  if (dweight.ndim() != 2) throw std::invalid_argument("dweight: expected a 2-D array (V, D)");
  if (ids_obj.dtype().kind() != 'i' && ids_obj.dtype().kind() != 'u')
    throw py::type_error("ids: expected an integer array, got dtype " +
                         std::string(py::str(ids_obj.dtype())));
  if (ids_obj.dtype().kind() == 'u' && ids_obj.itemsize() >= 8)
    throw py::type_error("ids: uint64 ids may not fit int64; give int64 ids");
  auto ids = fastrnn::c_aligned<int64_t>(ids_obj);
  if (!dout_obj.dtype().equal(py::dtype::of<T>()))
    throw py::type_error("dout: dtype does not match dweight's");
  auto dout = fastrnn::c_aligned<T>(dout_obj);
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

// C = beta * C + op(A) op(B) through fastrnn's own GEMM and thread pool. NumPy's BLAS keeps
// its own threads spinning after each call, which on a small machine steals the cores that
// fastrnn's recurrence threads are about to use (measured: a language-model step 2x slower);
// routing the building blocks' products here keeps one thread pool.
template <typename T>
py::array_t<T> matmul_t(const py::array_t<T>& a_in, const py::array_t<T>& b_in, bool ta, bool tb,
                        const py::object& out_obj, double beta, bool autocast) {
  if (a_in.ndim() != 2 || b_in.ndim() != 2)
    throw std::invalid_argument("a, b: expected 2-D arrays");
  auto a = fastrnn::c_aligned<T>(a_in), b = fastrnn::c_aligned<T>(b_in);
  const int64_t m = ta ? a.shape(1) : a.shape(0), k = ta ? a.shape(0) : a.shape(1);
  const int64_t kb = tb ? b.shape(1) : b.shape(0), n = tb ? b.shape(0) : b.shape(1);
  if (k != kb)
    throw std::invalid_argument("a, b: inner dimensions differ (" + std::to_string(k) + " vs " +
                                std::to_string(kb) + ")");
  py::array_t<T> c;
  if (out_obj.is_none()) {
    c = py::array_t<T>({m, n});
    beta = 0.0;
  } else {
    if (!py::isinstance<py::array_t<T>>(out_obj))
      throw py::type_error("out: dtype does not match a's");
    c = py::reinterpret_borrow<py::array_t<T>>(out_obj);
    fastrnn::check_inplace(c, "out");
    if (c.ndim() != 2 || c.shape(0) != m || c.shape(1) != n)
      throw std::invalid_argument("out: expected shape (" + std::to_string(m) + ", " +
                                  std::to_string(n) + ")");
  }
  const T *ap = a.data(), *bp = b.data();
  T* cp = c.mutable_data();
  const int64_t lda = a.shape(1), ldb = b.shape(1);
  const int threads = fastrnn::get_num_threads();
  if (m == 0 || n == 0) return c;
  py::gil_scoped_release nogil;
  if (k == 0) {
    for (int64_t i = 0; i < m * n; ++i) cp[i] = beta == 0.0 ? T(0) : T(beta) * cp[i];
  } else {
    const fastrnn::Kernels<T>& kern = fastrnn::kernels_for<T>();
    auto gemm = autocast && kern.gemm_bf16 ? kern.gemm_bf16 : kern.gemm;
    gemm(ta, tb, m, n, k, ap, lda, bp, ldb, T(beta), cp, n, threads);
  }
  return c;
}

}  // namespace

void register_nn(py::module_& m) {
  m.def("embedding_backward", &embedding_backward_t<float>, py::arg("dweight").noconvert(),
        py::arg("ids"), py::arg("dout"), py::arg("padding_idx") = -1,
        "dweight[ids[n]] += dout[n] in place (rows equal to padding_idx skipped); ids (N,), "
        "dout (N, D), dweight (V, D).");
  m.def("embedding_backward", &embedding_backward_t<double>, py::arg("dweight").noconvert(),
        py::arg("ids"), py::arg("dout"), py::arg("padding_idx") = -1);
  m.def("nn_matmul", &matmul_t<float>, py::arg("a").noconvert(), py::arg("b").noconvert(),
        py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("out") = py::none(),
        py::arg("beta") = 0.0, py::arg("autocast") = false,
        "C = beta * out + op(a) op(b) (new array when out is None), a and b 2-D C-contiguous of "
        "one dtype; fastrnn's GEMM and threads. autocast: bfloat16 operands and float32 sums on "
        "AMX tiles where the CPU has them (float32 elsewhere).");
  m.def("nn_matmul", &matmul_t<double>, py::arg("a").noconvert(), py::arg("b").noconvert(),
        py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("out") = py::none(),
        py::arg("beta") = 0.0, py::arg("autocast") = false);
}
