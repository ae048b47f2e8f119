// module.cpp: fastrnn._C, the only C++ that sees Python. It checks arrays (dtype, shape; any
// memory layout is accepted and made C-contiguous), allocates NumPy outputs, dispatches on dtype
// and releases the GIL around the kernels. The friendlier argument checks live in Python
// (fastrnn/_checks.py); these are the last line of defence against a crash.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/arrays.h"
#include "bindings/lengths.h"
#include "bindings/shape_str.h"
#include "cpu/dispatch.h"
#include "cpu/layer.h"

namespace py = pybind11;
using fastrnn::Cell;
using fastrnn::shape_str;

namespace {

// A C-contiguous array of dtype T and the given shape, or an exception naming `name`. Arrays that
// already fit are passed through untouched (this is on the path of every streaming step).
template <typename T>
py::array_t<T> checked(const py::handle& obj, const char* name,
                       std::initializer_list<int64_t> shape) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::array arr = py::reinterpret_borrow<py::array>(obj);
  if (!arr.dtype().equal(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + ": expected dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(arr.dtype())));
  bool same = size_t(arr.ndim()) == shape.size();
  for (size_t i = 0; same && i < shape.size(); ++i) same = arr.shape(i) == shape.begin()[i];
  if (!same)
    throw std::invalid_argument(
        std::string(name) + ": expected shape " + shape_str(shape) + ", got " +
        shape_str(std::vector<int64_t>(arr.shape(), arr.shape() + arr.ndim())));
  return fastrnn::c_aligned<T>(arr);
}

// An absent optional array is an empty array_t (pybind11's default); present ones have size >= 1.
template <typename T>
bool present(const py::array_t<T>& a) {
  return a.size() > 0;
}
template <typename T>
const T* data_or_null(const py::array_t<T>& a) {
  return present(a) ? a.data() : nullptr;
}

template <typename T>
py::array_t<T> optional(const py::object& obj, const char* name,
                        std::initializer_list<int64_t> shape) {
  if (obj.is_none()) return py::array_t<T>();
  return checked<T>(obj, name, shape);
}

// Outputs the kernels write in full are allocated uninitialized; zeros only where a kernel skips
// elements (y at padded steps).
template <typename T>
py::array_t<T> empty(const std::vector<int64_t>& shape) {
  return py::array_t<T>(shape);
}

template <typename T>
py::array_t<T> zeros(const std::vector<int64_t>& shape) {
  py::array_t<T> a(shape);
  std::fill(a.mutable_data(), a.mutable_data() + a.size(), T(0));
  return a;
}

// The saved state of one training forward, for one backward.
struct SavedForBackward {
  std::shared_ptr<fastrnn::Context<float>> f32;
  std::shared_ptr<fastrnn::Context<double>> f64;
};

template <typename T>
std::shared_ptr<fastrnn::Context<T>>& ctx_of(SavedForBackward& c);
template <>
std::shared_ptr<fastrnn::Context<float>>& ctx_of<float>(SavedForBackward& c) {
  return c.f32;
}
template <>
std::shared_ptr<fastrnn::Context<double>>& ctx_of<double>(SavedForBackward& c) {
  return c.f64;
}

class PyWeights {
 public:
  PyWeights(const std::string& cell_name, const py::array& w_ih, const py::array& w_hh,
            const py::object& b_ih, const py::object& b_hh, const py::object& peephole)
      : cell_(fastrnn::parse_cell(cell_name)) {
    if (w_ih.ndim() != 2 || w_hh.ndim() != 2)
      throw std::invalid_argument("w_ih and w_hh must be 2-D (G*H, I) and (G*H, H)");
    const int64_t G = fastrnn::num_gates(cell_);
    hidden_ = w_hh.shape(1);
    input_ = w_ih.shape(1);
    if (hidden_ < 1 || input_ < 1)
      throw std::invalid_argument("w_ih, w_hh: input and hidden sizes must be >= 1");
    if (w_ih.dtype().equal(py::dtype::of<float>()))
      f32_ = make<float>(w_ih, w_hh, b_ih, b_hh, peephole, G);
    else if (w_ih.dtype().equal(py::dtype::of<double>()))
      f64_ = make<double>(w_ih, w_hh, b_ih, b_hh, peephole, G);
    else
      throw py::type_error("w_ih: expected dtype float32 or float64, got " +
                           std::string(py::str(w_ih.dtype())));
  }

  std::string cell() const { return fastrnn::cell_name(cell_); }
  int64_t input_size() const { return input_; }
  int64_t hidden_size() const { return hidden_; }
  py::dtype dtype() const { return f32_ ? py::dtype::of<float>() : py::dtype::of<double>(); }
  bool bf16() const { return f32_ && f32_->bf16(); }
  void set_bf16(bool on) {
    if (f32_)
      f32_->set_bf16(on);
    else if (on)
      throw std::invalid_argument("bf16: bfloat16 inference needs float32 weights");
  }
  bool i8() const { return f32_ && f32_->i8(); }
  void set_i8(bool on) {
    if (f32_)
      f32_->set_i8(on);
    else if (on)
      throw std::invalid_argument("i8: int8 inference needs float32 weights");
  }

  py::tuple forward(const py::object& x, const py::object& h0, const py::object& c0,
                    const py::object& lengths, bool reverse, bool training, bool autocast) {
    return f32_ ? forward_t<float>(*f32_, x, h0, c0, lengths, reverse, training, autocast)
                : forward_t<double>(*f64_, x, h0, c0, lengths, reverse, training, false);
  }
  py::tuple backward(SavedForBackward& ctx, const py::object& dy, const py::object& dh_n,
                     const py::object& dc_n) {
    return f32_ ? backward_t<float>(*f32_, ctx, dy, dh_n, dc_n)
                : backward_t<double>(*f64_, ctx, dy, dh_n, dc_n);
  }
  py::tuple step(const py::object& x, const py::object& h, const py::object& c, bool autocast) {
    return f32_ ? step_t<float>(*f32_, x, h, c, autocast) : step_t<double>(*f64_, x, h, c, false);
  }
  // the layer of one dtype, or null (stack_step)
  const fastrnn::Layer<float>* layer(float*) const { return f32_.get(); }
  const fastrnn::Layer<double>* layer(double*) const { return f64_.get(); }

 private:
  template <typename T>
  std::unique_ptr<fastrnn::Layer<T>> make(const py::array& w_ih, const py::array& w_hh,
                                          const py::object& b_ih, const py::object& b_hh,
                                          const py::object& peephole, int64_t G) {
    const int64_t H = hidden_, I = input_;
    auto wi = checked<T>(w_ih, "w_ih", {G * H, I});
    auto wh = checked<T>(w_hh, "w_hh", {G * H, H});
    auto bi = optional<T>(b_ih, "b_ih", {G * H});
    auto bh = optional<T>(b_hh, "b_hh", {G * H});
    if (present(bi) != present(bh))
      throw std::invalid_argument("b_ih, b_hh: give both biases or neither");
    auto p = optional<T>(peephole, "peephole", {3 * H});
    return std::make_unique<fastrnn::Layer<T>>(cell_, I, H, wi.data(), wh.data(), data_or_null(bi),
                                               data_or_null(bh), data_or_null(p));
  }

  template <typename T>
  py::tuple forward_t(const fastrnn::Layer<T>& layer, const py::object& x_obj,
                      const py::object& h0_obj, const py::object& c0_obj, const py::object& len_obj,
                      bool reverse, bool training, bool autocast) {
    if (!py::isinstance<py::array>(x_obj)) throw py::type_error("x: expected a numpy.ndarray");
    py::array xa = py::reinterpret_borrow<py::array>(x_obj);
    if (xa.ndim() != 3)
      throw std::invalid_argument("x: expected a 3-D array (T, B, I=" + std::to_string(input_) +
                                  "), got " + std::to_string(xa.ndim()) + "-D");
    const int64_t Tn = xa.shape(0), B = xa.shape(1), H = hidden_;
    if (Tn < 1 || B < 1)
      throw std::invalid_argument("x: T and B must be >= 1, got shape " +
                                  shape_str({Tn, B, int64_t(xa.shape(2))}));
    auto x = checked<T>(xa, "x", {Tn, B, input_});
    auto h0 = optional<T>(h0_obj, "h0", {B, H});
    const bool lstm = fastrnn::has_cell_state(cell_);
    if (!lstm && !c0_obj.is_none())
      throw std::invalid_argument("c0: only the LSTM has a cell state");
    auto c0 = lstm ? optional<T>(c0_obj, "c0", {B, H}) : py::array_t<T>();
    // lengths: the forward's plan (made once for every layer and direction), or an array
    std::shared_ptr<const fastrnn::LengthsPlan> plan = fastrnn::given_plan(len_obj, B, Tn);
    if (!plan && !len_obj.is_none()) {
      auto len = checked<int64_t>(len_obj, "lengths", {B});
      plan = std::make_shared<const fastrnn::LengthsPlan>(fastrnn::lengths_plan(len.data(), B, Tn));
    }
    auto y = plan ? zeros<T>({Tn, B, H}) : empty<T>({Tn, B, H});
    auto h_n = empty<T>({B, H});  // every sequence has a last step
    py::array_t<T> c_n = lstm ? empty<T>({B, H}) : py::array_t<T>();
    std::unique_ptr<fastrnn::Context<T>> ctx;
    {
      const T *xp = x.data(), *h0p = data_or_null(h0), *c0p = data_or_null(c0);
      T *yp = y.mutable_data(), *hp = h_n.mutable_data();
      T* cp = lstm ? c_n.mutable_data() : nullptr;
      py::gil_scoped_release nogil;
      ctx = layer.forward(Tn, B, xp, h0p, c0p, std::move(plan), reverse, training, autocast, yp, hp,
                          cp);
    }
    py::object c_out = lstm ? py::object(c_n) : py::none();
    py::object ctx_out = py::none();
    if (ctx) {
      SavedForBackward pc;
      ctx_of<T>(pc) = std::shared_ptr<fastrnn::Context<T>>(std::move(ctx));
      ctx_out = py::cast(std::move(pc));
    }
    return py::make_tuple(y, h_n, c_out, ctx_out);
  }

  template <typename T>
  py::tuple backward_t(const fastrnn::Layer<T>& layer, SavedForBackward& pc,
                       const py::object& dy_obj, const py::object& dh_obj,
                       const py::object& dc_obj) {
    auto& ctx = ctx_of<T>(pc);
    if (!ctx) throw py::type_error("ctx: it was made by a layer of another dtype");
    const int64_t Tn = ctx->steps, B = ctx->batch, H = hidden_, I = input_;
    const int64_t G = fastrnn::num_gates(cell_);
    const bool lstm = fastrnn::has_cell_state(cell_);
    auto dy = optional<T>(dy_obj, "dy", {Tn, B, H});
    auto dh_n = optional<T>(dh_obj, "dh_n", {B, H});
    auto dc_n = lstm ? optional<T>(dc_obj, "dc_n", {B, H}) : py::array_t<T>();
    // all written in full: products with beta = 0, copies and column sums
    auto dx = empty<T>({Tn, B, I});
    auto dh0 = empty<T>({B, H});
    py::array_t<T> dc0 = lstm ? empty<T>({B, H}) : py::array_t<T>();
    auto dw_ih = empty<T>({G * H, I});
    auto dw_hh = empty<T>({G * H, H});
    const bool bias = layer.has_bias(), peep = layer.has_peephole();
    py::array_t<T> db_ih = bias ? empty<T>({G * H}) : py::array_t<T>();
    py::array_t<T> db_hh = bias ? empty<T>({G * H}) : py::array_t<T>();
    py::array_t<T> dpeep = peep ? empty<T>({3 * H}) : py::array_t<T>();  // written in full
    {
      const T *dyp = data_or_null(dy), *dhp = data_or_null(dh_n), *dcp = data_or_null(dc_n);
      T* o[8] = {dx.mutable_data(),
                 dh0.mutable_data(),
                 lstm ? dc0.mutable_data() : nullptr,
                 dw_ih.mutable_data(),
                 dw_hh.mutable_data(),
                 bias ? db_ih.mutable_data() : nullptr,
                 bias ? db_hh.mutable_data() : nullptr,
                 peep ? dpeep.mutable_data() : nullptr};
      py::gil_scoped_release nogil;
      layer.backward(*ctx, dyp, dhp, dcp, o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]);
    }
    py::dict grads;
    grads["w_ih"] = dw_ih;
    grads["w_hh"] = dw_hh;
    grads["b_ih"] = bias ? py::object(db_ih) : py::none();
    grads["b_hh"] = bias ? py::object(db_hh) : py::none();
    grads["peephole"] = peep ? py::object(dpeep) : py::none();
    return py::make_tuple(dx, dh0, lstm ? py::object(dc0) : py::none(), grads);
  }

  template <typename T>
  py::tuple step_t(const fastrnn::Layer<T>& layer, const py::object& x_obj, const py::object& h_obj,
                   const py::object& c_obj, bool autocast) {
    if (!py::isinstance<py::array>(x_obj)) throw py::type_error("x: expected a numpy.ndarray");
    py::array xa = py::reinterpret_borrow<py::array>(x_obj);
    if (xa.ndim() != 2)
      throw std::invalid_argument("x: expected a 2-D array (B, I=" + std::to_string(input_) +
                                  "), got " + std::to_string(xa.ndim()) + "-D");
    const int64_t B = xa.shape(0), H = hidden_;
    if (B < 1) throw std::invalid_argument("x: the batch is empty");
    auto x = checked<T>(xa, "x", {B, input_});
    auto h = optional<T>(h_obj, "h", {B, H});
    const bool lstm = fastrnn::has_cell_state(cell_);
    if (!lstm && !c_obj.is_none()) throw std::invalid_argument("c: only the LSTM has a cell state");
    auto c = lstm ? optional<T>(c_obj, "c", {B, H}) : py::array_t<T>();
    py::array_t<T> h1({B, H});
    py::array_t<T> c1 = lstm ? py::array_t<T>({B, H}) : py::array_t<T>();
    {
      const T *xp = x.data(), *hp = data_or_null(h), *cp = data_or_null(c);
      T* h1p = h1.mutable_data();
      T* c1p = lstm ? c1.mutable_data() : nullptr;
      py::gil_scoped_release nogil;
      layer.step(B, xp, hp, cp, autocast, h1p, c1p);
    }
    return py::make_tuple(h1, lstm ? py::object(c1) : py::none());
  }

  Cell cell_;
  int64_t input_ = 0, hidden_ = 0;
  std::unique_ptr<fastrnn::Layer<float>> f32_;
  std::unique_ptr<fastrnn::Layer<double>> f64_;
};

// One eval-mode step (T = 1) of a stacked layer, every layer and direction in one call: what
// fastrnn.LSTM/GRU/RNN run when fed one step at a time (see _RNNBase._stream_step). w[k*D + d]
// is layer k's direction d; layer k > 0 reads layer k-1's directions side by side, as the
// sequence path joins them, and for T = 1 the reverse direction is the same step. x (1, B, I),
// (B, 1, I) with batch_first, or unbatched (1, I); h0, c0 (L*D, B, H), or (L*D, H) unbatched, or
// None. Returns (y, (h_n, c_n)) for the LSTM, else (y, h_n), in the same layouts, y with D*H
// features. Python checks first for its own messages; these checks keep any other call from
// reading out of bounds.
template <typename T>
py::tuple stack_step_t(const std::vector<const PyWeights*>& w, int64_t L, int64_t D, py::array xa,
                       const py::object& h0_obj, const py::object& c0_obj, bool batch_first) {
  std::vector<const fastrnn::Layer<T>*> layers;
  for (const PyWeights* p : w) {
    layers.push_back(p->layer(static_cast<T*>(nullptr)));
    if (!layers.back()) throw py::type_error("weights: every layer must have the same dtype");
  }
  const int64_t H = layers[0]->hidden_size(), I = layers[0]->input_size();
  const bool lstm = fastrnn::has_cell_state(layers[0]->cell());
  for (size_t j = 0; j < layers.size(); ++j) {
    const int64_t want = j < size_t(D) ? I : D * H;
    if (layers[j]->cell() != layers[0]->cell() || layers[j]->hidden_size() != H ||
        layers[j]->input_size() != want)
      throw std::invalid_argument("weights: the layers do not stack (cell, input or hidden size)");
  }
  const bool batched = xa.ndim() == 3;
  if (xa.ndim() != 2 && xa.ndim() != 3)
    throw std::invalid_argument("x: expected a 2-D or 3-D array");
  const int64_t B = batched ? xa.shape(batch_first ? 0 : 1) : 1;
  auto shape = [&](int64_t n) {
    return !batched      ? std::vector<int64_t>{1, n}
           : batch_first ? std::vector<int64_t>{B, 1, n}
                         : std::vector<int64_t>{1, B, n};
  };
  const std::vector<int64_t> state_shape =
      batched ? std::vector<int64_t>{L * D, B, H} : std::vector<int64_t>{L * D, H};
  auto array_of = [](const py::object& obj, const char* name, const std::vector<int64_t>& want) {
    if (!py::isinstance<py::array>(obj))
      throw py::type_error(std::string(name) + ": expected a numpy.ndarray");
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!a.dtype().equal(py::dtype::of<T>()))
      throw py::type_error(std::string(name) + ": expected dtype " +
                           std::string(py::str(py::dtype::of<T>())));
    if (std::vector<int64_t>(a.shape(), a.shape() + a.ndim()) != want)
      throw std::invalid_argument(std::string(name) + ": expected shape " + shape_str(want));
    return fastrnn::c_aligned<T>(a);
  };
  if (B < 1) throw std::invalid_argument("x: the batch is empty");
  auto x = array_of(xa, "x", shape(I));
  py::array_t<T> h0, c0;
  if (!h0_obj.is_none()) h0 = array_of(h0_obj, "h0", state_shape);
  if (!c0_obj.is_none()) {
    if (!lstm) throw std::invalid_argument("c0: only the LSTM has a cell state");
    c0 = array_of(c0_obj, "c0", state_shape);
  }
  py::array_t<T> y(shape(D * H)), h_n(state_shape);
  py::array_t<T> c_n = lstm ? py::array_t<T>(state_shape) : py::array_t<T>();
  {
    const T *xp = x.data(), *h0p = data_or_null(h0), *c0p = data_or_null(c0);
    T *yp = y.mutable_data(), *hp = h_n.mutable_data(), *cp = lstm ? c_n.mutable_data() : nullptr;
    py::gil_scoped_release nogil;
    std::vector<T> joined(L > 1 && D > 1 ? size_t(B * D * H) : 0);  // layer k's output [B, D*H]
    const T* in = xp;
    const int64_t BH = B * H;
    for (int64_t k = 0; k < L; ++k) {
      for (int64_t d = 0; d < D; ++d) {
        const int64_t j = k * D + d;
        layers[size_t(j)]->step(B, in, h0p ? h0p + j * BH : nullptr, c0p ? c0p + j * BH : nullptr,
                                false, hp + j * BH, cp ? cp + j * BH : nullptr);
      }
      const bool last = k == L - 1;
      if (D == 1 && !last) {  // [B, H] is already the next layer's input
        in = hp + k * BH;
        continue;
      }
      T* out = last ? yp : joined.data();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t d = 0; d < D; ++d)
          std::copy_n(hp + (k * D + d) * BH + b * H, H, out + (b * D + d) * H);
      in = out;
    }
  }
  if (lstm) return py::make_tuple(y, py::make_tuple(h_n, c_n));  // as the layers' forward returns
  return py::make_tuple(y, h_n);
}

py::tuple stack_step(const py::list& weights, const py::object& x_obj, const py::object& h0_obj,
                     const py::object& c0_obj, bool batch_first) {
  const int64_t L = int64_t(weights.size());
  int64_t D = 0;
  std::vector<const PyWeights*> w;
  for (const py::handle& per_dir : weights) {
    if (!py::isinstance<py::list>(per_dir))
      throw py::type_error("weights: expected a list of lists of Weights");
    const py::list dirs = py::reinterpret_borrow<py::list>(per_dir);
    if (D == 0) D = int64_t(dirs.size());
    if (int64_t(dirs.size()) != D || D < 1)
      throw std::invalid_argument("weights: every layer needs the same number of directions");
    for (const py::handle& h : dirs) w.push_back(&py::cast<const PyWeights&>(h));
  }
  if (L < 1) throw std::invalid_argument("weights: expected at least one layer");
  if (!py::isinstance<py::array>(x_obj)) throw py::type_error("x: expected a numpy.ndarray");
  const py::array xa = py::reinterpret_borrow<py::array>(x_obj);
  if (w[0]->dtype().equal(py::dtype::of<float>()))
    return stack_step_t<float>(w, L, D, xa, h0_obj, c0_obj, batch_first);
  return stack_step_t<double>(w, L, D, xa, h0_obj, c0_obj, batch_first);
}

template <typename T>
py::array_t<T> math_t(int which, const py::array_t<T>& x_in) {
  if (which < 0 || which > 5)
    throw std::invalid_argument("which: expected 0..5, got " + std::to_string(which));
  auto x = fastrnn::c_aligned<T>(x_in);
  py::array_t<T> y(std::vector<int64_t>(x.shape(), x.shape() + x.ndim()));
  fastrnn::kernels_for<T>().math(which, x.data(), y.mutable_data(), int64_t(x.size()));
  return y;
}

template <typename T>
T stream_read_t(const py::array_t<T>& x_in, int64_t threads) {
  auto x = fastrnn::c_aligned<T>(x_in);
  const T* p = x.data();
  const int64_t n = x.size();
  py::gil_scoped_release nogil;
  return fastrnn::kernels_for<T>().stream_read(p, n, fastrnn::cap_threads(threads));
}

}  // namespace

// csrc/bindings/nn.cpp: the building blocks of fastrnn.nn (embedding scatter-add).
void register_nn(py::module_& m);

// csrc/bindings/bleu.cpp: BLEU statistics and scores (fastrnn.bleu's _bleu_* helpers).
void register_bleu(pybind11::module_& m);

// csrc/bindings/embeddings.cpp: word2vec and GloVe (fastrnn.embeddings).
void register_embeddings(py::module_& m);

// csrc/bindings/cuda_module.cpp: the GPU path's host build (submodule _cuda_host, for tests).
void register_cuda_host(py::module_& m);

// csrc/bindings/ngram_lm.cpp: n-gram counting for Kneser-Ney (fastrnn.models.ngram).
void register_ngram_lm(py::module_& m);

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastrnn's compiled kernels (private; use the fastrnn package)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  py::class_<SavedForBackward>(m, "Context", "What a training forward saved for its backward.");
  fastrnn::register_lengths_plan(m);  // bindings/lengths.h

  py::class_<PyWeights>(m, "Weights")
      .def(py::init<const std::string&, const py::array&, const py::array&, const py::object&,
                    const py::object&, const py::object&>(),
           py::arg("cell"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = py::none(),
           py::arg("b_hh") = py::none(), py::arg("peephole") = py::none())
      .def_property_readonly("cell", &PyWeights::cell)
      .def_property_readonly("input_size", &PyWeights::input_size)
      .def_property_readonly("hidden_size", &PyWeights::hidden_size)
      .def_property_readonly("dtype", &PyWeights::dtype)
      .def_property("bf16", &PyWeights::bf16, &PyWeights::set_bf16,
                    "Inference forwards and steps read bfloat16 copies of the weights.")
      .def_property("i8", &PyWeights::i8, &PyWeights::set_i8,
                    "Inference forwards and steps read int8 copies of the weights, quantized per "
                    "output row (takes precedence over bf16).")
      .def("forward", &PyWeights::forward, py::arg("x"), py::arg("h0") = py::none(),
           py::arg("c0") = py::none(), py::arg("lengths") = py::none(), py::arg("reverse") = false,
           py::arg("training") = false, py::arg("autocast") = false,
           "autocast: bfloat16 products, float32 sums and state (float32 weights; ignored for "
           "float64). On AMX tiles where the CPU has them, training included (backward follows); "
           "elsewhere inference reads bfloat16 weight panels and training stays float32.")
      .def("backward", &PyWeights::backward, py::arg("ctx"), py::arg("dy") = py::none(),
           py::arg("dh_n") = py::none(), py::arg("dc_n") = py::none())
      .def("step", &PyWeights::step, py::arg("x"), py::arg("h") = py::none(),
           py::arg("c") = py::none(), py::arg("autocast") = false);
  m.def("stack_step", &stack_step, py::arg("weights"), py::arg("x"), py::arg("h0") = py::none(),
        py::arg("c0") = py::none(), py::arg("batch_first") = false);

  m.def("backends", [] {
    py::dict d;
    d["compiled"] = fastrnn::compiled_isas();
    d["supported"] = fastrnn::supported_isas();
    d["active"] = fastrnn::active_isa();
    return d;
  });
  m.def("set_isa", &fastrnn::set_isa, py::arg("name"));
  m.def("set_num_threads", &fastrnn::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &fastrnn::get_num_threads);
  m.def("cache_bytes_per_step",
        [](const std::string& cell, int64_t batch, int64_t hidden, int64_t itemsize) {
          const int64_t width = fastrnn::cache_width(fastrnn::parse_cell(cell));
          const char* what = "cache_bytes_per_step";
          return fastrnn::size_mul(fastrnn::size_mul(itemsize, batch, what),
                                   fastrnn::size_mul(hidden, width, what), what);
        });
  m.def("_math", &math_t<float>, py::arg("which"), py::arg("x"));
  m.def("_math", &math_t<double>, py::arg("which"), py::arg("x"));
  m.def("_stream_read", &stream_read_t<float>, py::arg("x"), py::arg("threads") = 1);
  m.def("_stream_read", &stream_read_t<double>, py::arg("x"), py::arg("threads") = 1);
  register_nn(m);
  register_bleu(m);
  register_cuda_host(m);
  register_embeddings(m);
  register_ngram_lm(m);
}
