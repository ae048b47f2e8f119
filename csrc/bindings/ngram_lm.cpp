// ngram_lm.cpp: pybind11 glue for csrc/ngram_lm (fastrnn._C._ngram_count, private; the public API
// and its friendlier checks are fastrnn/models/ngram.py). Sizes are checked here without overflow
// before any allocation, and the counting runs without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "ngram_lm/count.h"

namespace py = pybind11;
namespace nl = fastrnn::ngram_lm;

namespace {

using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
  py::array_t<T> a(shape);
  if (!v.empty()) std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

// ids (N,) int64 in [0, vocab_size), offsets (S+1,) from 0 to N, non-decreasing.
py::list ngram_count(const I64& ids, const I64& offsets, int order, int64_t vocab_size) {
  if (order < 1 || order > 64)
    throw std::invalid_argument("order: expected an int in [1, 64], got " + std::to_string(order));
  if (vocab_size < 1 || vocab_size > int64_t(std::numeric_limits<int32_t>::max()))
    throw std::invalid_argument("vocab_size: expected 1 <= V < 2^31, got " +
                                std::to_string(vocab_size));
  if (ids.ndim() != 1 || offsets.ndim() != 1 || offsets.size() < 1)
    throw std::invalid_argument("ids, offsets: expected 1-D arrays, offsets non-empty");
  const int64_t n = ids.size(), s = offsets.size() - 1;
  // ranks are 32-bit: fewer than 2^32 positions
  if (uint64_t(n) >= (uint64_t(1) << 32))
    throw std::invalid_argument("ids: at most 2^32 - 1 tokens (padding included), got " +
                                std::to_string(n));
  const int64_t* o = offsets.data();
  if (o[0] != 0 || o[s] != n)
    throw std::invalid_argument("offsets: expected to run from 0 to len(ids) = " +
                                std::to_string(n));
  for (int64_t i = 0; i < s; ++i)
    if (o[i + 1] < o[i]) throw std::invalid_argument("offsets: decrease at " + std::to_string(i));
  const int64_t* src = ids.data();
  std::vector<int32_t> ids32(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (src[i] < 0 || src[i] >= vocab_size)
      throw std::invalid_argument("ids[" + std::to_string(i) + "]: expected an id in [0, " +
                                  std::to_string(vocab_size) + "), got " + std::to_string(src[i]));
    ids32[size_t(i)] = int32_t(src[i]);
  }
  std::vector<nl::OrderTable> tables;
  {
    py::gil_scoped_release nogil;
    tables = nl::count_ngrams(ids32.data(), n, o, s, order);
  }
  py::list out;
  for (auto& t : tables) {
    const py::ssize_t m = py::ssize_t(t.count.size()), k = t.order;
    py::dict d;
    d["grams"] = to_numpy(std::move(t.grams), {m, k});
    d["count"] = to_numpy(std::move(t.count), {m});
    d["left"] = to_numpy(std::move(t.left), {m});
    d["prefix"] = to_numpy(std::move(t.prefix), {k >= 2 ? m : 0});
    d["suffix"] = to_numpy(std::move(t.suffix), {k >= 2 ? m : 0});
    out.append(d);
  }
  return out;
}

}  // namespace

void register_ngram_lm(py::module_& m) {
  m.def("_ngram_count", &ngram_count, py::arg("ids"), py::arg("offsets"), py::arg("order"),
        py::arg("vocab_size"),
        "Distinct k-grams (k = 1..order) of padded sentences, with counts, left-extension counts "
        "and prefix/suffix rows (private; see fastrnn.models.ngram.KneserNeyLM).");
}
