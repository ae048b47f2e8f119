// bleu.cpp: pybind11 glue for csrc/bleu (fastrnn._C._bleu_* functions, private; the public API
// and its argument checks are fastrnn/bleu/). Strings are read in place through CPython's cached
// UTF-8 form, kept alive by a tuple of the caller's items, and all work runs without the GIL.
// Type checks here are the last line of defence: Python validates first.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <string_view>
#include <vector>

#include "bleu/bleu.h"
#include "bleu/chrf.h"
#include "cpu/dispatch.h"

namespace py = pybind11;
namespace bl = fastrnn::bleu;

namespace {

// UTF-8 views of a list of lines (None allowed where `allow_none`; it reads as absent).
struct Lines {
  std::vector<std::string_view> views;
  std::vector<uint8_t> present;
  std::vector<py::object> owners;

  void add(const py::handle& item, const std::string& where, bool allow_none) {
    if (item.is_none() && allow_none) {
      views.emplace_back();
      present.push_back(0);
      return;
    }
    if (!PyUnicode_Check(item.ptr()))
      throw py::type_error(where + ": expected str, got " +
                           std::string(py::str(py::type::of(item).attr("__name__"))));
    Py_ssize_t size = 0;
    const char* p = PyUnicode_AsUTF8AndSize(item.ptr(), &size);
    if (!p) {  // lone surrogates: encode them as Python's "surrogatepass" does
      PyErr_Clear();
      py::object b = py::reinterpret_steal<py::object>(
          PyUnicode_AsEncodedString(item.ptr(), "utf-8", "surrogatepass"));
      if (!b) throw py::error_already_set();
      p = PyBytes_AS_STRING(b.ptr());
      size = PyBytes_GET_SIZE(b.ptr());
      owners.push_back(std::move(b));
    } else {
      owners.push_back(py::reinterpret_borrow<py::object>(item));
    }
    views.emplace_back(p, size_t(size));
    present.push_back(1);
  }
};

py::tuple as_tuple(const py::handle& seq, const char* name) {
  if (!PyList_Check(seq.ptr()) && !PyTuple_Check(seq.ptr()))
    throw py::type_error(std::string(name) + ": expected a list of str");
  return py::tuple(py::reinterpret_borrow<py::object>(seq));
}

Lines read_lines(const py::handle& seq, const char* name) {
  py::tuple t = as_tuple(seq, name);
  Lines lines;
  lines.views.reserve(t.size());
  for (size_t i = 0; i < t.size(); ++i)
    lines.add(t[i], std::string(name) + "[" + std::to_string(i) + "]", false);
  return lines;
}

// refs: R streams of N lines each, flattened stream-major.
Lines read_streams(const py::handle& seq, size_t n) {
  py::tuple streams = as_tuple(seq, "refs");
  Lines lines;
  lines.views.reserve(streams.size() * n);
  for (size_t r = 0; r < streams.size(); ++r) {
    py::tuple s = as_tuple(streams[r], "refs");
    if (s.size() != n)
      throw std::invalid_argument("refs[" + std::to_string(r) + "]: expected " + std::to_string(n) +
                                  " lines (one per hypothesis), got " + std::to_string(s.size()));
    for (size_t i = 0; i < n; ++i)
      lines.add(s[i], "refs[" + std::to_string(r) + "][" + std::to_string(i) + "]", true);
  }
  return lines;
}

const uint8_t* flags_of(const py::object& table) {
  if (table.is_none()) return nullptr;
  if (!PyBytes_Check(table.ptr()) || PyBytes_GET_SIZE(table.ptr()) != bl::kUnicodeSize)
    throw std::invalid_argument("table: expected 0x110000 bytes of Unicode category flags");
  return reinterpret_cast<const uint8_t*>(PyBytes_AS_STRING(table.ptr()));
}

using Ids = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

void check_offsets(const Ids& ids, const Ids& off, const char* name) {
  if (ids.ndim() != 1 || off.ndim() != 1 || off.size() < 1)
    throw std::invalid_argument(std::string(name) + ": malformed flat token ids");
  const int64_t* o = off.data();
  if (o[0] != 0 || o[off.size() - 1] != ids.size())
    throw std::invalid_argument(std::string(name) + ": offsets do not cover the ids");
  for (py::ssize_t i = 1; i < off.size(); ++i)
    if (o[i] < o[i - 1]) throw std::invalid_argument(std::string(name) + ": offsets decrease");
}

py::array_t<int64_t> text_stats(const py::object& hyps, const py::object& refs,
                                const std::string& tokenize, const py::object& table, int order) {
  const bl::Tokenizer kind = bl::parse_tokenizer(tokenize);
  const uint8_t* flags = flags_of(table);
  Lines h = read_lines(hyps, "hyps");
  const int64_t n = int64_t(h.views.size());
  Lines r = read_streams(refs, size_t(n));
  const int64_t nrefs = n ? int64_t(r.views.size()) / n : 0;
  py::array_t<int64_t> stats({n, int64_t(2 + 2 * order)});
  int64_t* out = stats.mutable_data();
  {
    py::gil_scoped_release nogil;
    bl::text_stats(h.views.data(), n, r.views.data(), r.present.data(), nrefs, kind, flags, order,
                   out);
  }
  return stats;
}

py::array_t<int64_t> id_stats(const Ids& hyp_ids, const Ids& hyp_off, const Ids& ref_ids,
                              const Ids& ref_off,
                              const py::array_t<uint8_t, py::array::c_style>& present,
                              int64_t nrefs, int order) {
  check_offsets(hyp_ids, hyp_off, "hyps");
  check_offsets(ref_ids, ref_off, "refs");
  const int64_t n = int64_t(hyp_off.size()) - 1;
  int64_t entries = 0;  // nrefs * n, overflow-checked: nrefs comes from the caller
  if (nrefs < 1 || __builtin_mul_overflow(nrefs, n, &entries) ||
      int64_t(ref_off.size()) != entries + 1 || int64_t(present.size()) != entries)
    throw std::invalid_argument("refs: expected one entry per stream and hypothesis");
  py::array_t<int64_t> stats({n, int64_t(2 + 2 * order)});
  int64_t* out = stats.mutable_data();
  {
    py::gil_scoped_release nogil;
    bl::id_stats(hyp_ids.data(), hyp_off.data(), n, ref_ids.data(), ref_off.data(), present.data(),
                 nrefs, order, out);
  }
  return stats;
}

py::array_t<double> scores(const Ids& stats, int order, const std::string& smooth,
                           double smooth_value, bool effective_order, bool compensated_sum) {
  const bl::Smooth s = bl::parse_smooth(smooth);
  if (stats.ndim() != 2 || stats.shape(1) != 2 + 2 * order)
    throw std::invalid_argument("stats: expected shape (N, 2 + 2 * max_ngram_order)");
  const int64_t n = stats.shape(0), W = stats.shape(1);
  py::array_t<double> out(n);
  double* o = out.mutable_data();
  const int64_t* st = stats.data();
  {
    py::gil_scoped_release nogil;
    for (int64_t i = 0; i < n; ++i)
      o[i] = bl::score(st + i * W, order, s, smooth_value, effective_order, compensated_sum);
  }
  return out;
}

py::array_t<double> pairwise_text(const py::object& hyps, const py::object& refs,
                                  const std::string& tokenize, const py::object& table, int order,
                                  const std::string& smooth, double smooth_value,
                                  bool effective_order, bool compensated_sum) {
  const bl::Tokenizer kind = bl::parse_tokenizer(tokenize);
  const bl::Smooth s = bl::parse_smooth(smooth);
  const uint8_t* flags = flags_of(table);
  Lines h = read_lines(hyps, "hyps");
  Lines r = read_lines(refs, "refs");
  const int64_t n = int64_t(h.views.size()), m = int64_t(r.views.size());
  py::array_t<double> out({n, m});
  double* o = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    bl::pairwise_text(h.views.data(), n, r.views.data(), m, kind, flags, order, s, smooth_value,
                      effective_order, compensated_sum, o);
  }
  return out;
}

py::array_t<double> pairwise_ids(const Ids& hyp_ids, const Ids& hyp_off, const Ids& ref_ids,
                                 const Ids& ref_off, int order, const std::string& smooth,
                                 double smooth_value, bool effective_order, bool compensated_sum) {
  const bl::Smooth s = bl::parse_smooth(smooth);
  check_offsets(hyp_ids, hyp_off, "hyps");
  check_offsets(ref_ids, ref_off, "refs");
  const int64_t n = int64_t(hyp_off.size()) - 1, m = int64_t(ref_off.size()) - 1;
  py::array_t<double> out({n, m});
  double* o = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    bl::pairwise_ids(hyp_ids.data(), hyp_off.data(), n, ref_ids.data(), ref_off.data(), m, order, s,
                     smooth_value, effective_order, compensated_sum, o);
  }
  return out;
}

py::list tokenize_lines(const py::object& lines, const std::string& tokenize,
                        const py::object& table) {
  const bl::Tokenizer kind = bl::parse_tokenizer(tokenize);
  const uint8_t* flags = flags_of(table);
  Lines in = read_lines(lines, "lines");
  std::vector<std::string> out(in.views.size());
  {
    py::gil_scoped_release nogil;
    bl::LineTokenizer tokenize(kind, flags);
    std::string chars;
    std::vector<int64_t> ends;
    for (size_t i = 0; i < in.views.size(); ++i) {
      chars.clear();
      ends.clear();
      tokenize(in.views[i], chars, ends);
      int64_t start = 0;
      for (int64_t e : ends) {
        if (start) out[i] += ' ';
        out[i].append(chars, size_t(start), size_t(e - start));
        start = e;
      }
    }
  }
  py::list result(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    // surrogatepass undoes the encoding of lone surrogates
    PyObject* s = PyUnicode_DecodeUTF8(out[i].data(), py::ssize_t(out[i].size()), "surrogatepass");
    if (!s) throw py::error_already_set();
    result[i] = py::reinterpret_steal<py::object>(s);
  }
  return result;
}

void check_order(int order) {
  if (order < 1) throw std::invalid_argument("max_ngram_order: expected a positive integer");
}


// --- chrF and significance tests ------------------------------------------------------------

bl::ChrfConfig chrf_config(int char_order, int word_order, double beta, bool whitespace,
                           bool eps_smoothing) {
  if (char_order < 1 || char_order > 1000)
    throw std::invalid_argument("char_order: expected an integer in [1, 1000], got " +
                                std::to_string(char_order));
  if (word_order < 0 || word_order > 1000)
    throw std::invalid_argument("word_order: expected an integer in [0, 1000], got " +
                                std::to_string(word_order));
  bl::ChrfConfig c;
  c.char_order = char_order;
  c.word_order = word_order;
  c.beta = beta;
  c.whitespace = whitespace;
  c.eps_smoothing = eps_smoothing;
  return c;
}

// The metric of a significance test, from the dict fastrnn.bleu._significance builds.
bl::MetricSpec metric_spec(const py::dict& d) {
  bl::MetricSpec m;
  const std::string kind = py::cast<std::string>(d["metric"]);
  if (kind == "chrf") {
    m.is_chrf = true;
    m.chrf = chrf_config(py::cast<int>(d["char_order"]), py::cast<int>(d["word_order"]),
                         py::cast<double>(d["beta"]), py::cast<bool>(d["whitespace"]),
                         py::cast<bool>(d["eps_smoothing"]));
  } else if (kind == "bleu") {
    m.order = py::cast<int>(d["order"]);
    if (m.order < 1 || m.order > 1000)
      throw std::invalid_argument("max_ngram_order: expected an integer in [1, 1000]");
    m.smooth = bl::parse_smooth(py::cast<std::string>(d["smooth"]));
    m.smooth_value = py::cast<double>(d["smooth_value"]);
    m.effective_order = py::cast<bool>(d["effective_order"]);
    m.compensated_sum = py::cast<bool>(d["compensated_sum"]);
  } else {
    throw std::invalid_argument("metric: expected 'bleu' or 'chrf', got '" + kind + "'");
  }
  return m;
}

py::array_t<int64_t> chrf_stats(const py::object& hyps, const py::object& refs,
                                const bl::ChrfConfig& c) {
  Lines h = read_lines(hyps, "hyps");
  const int64_t n = int64_t(h.views.size());
  Lines r = read_streams(refs, size_t(n));
  const int64_t nrefs = n ? int64_t(r.views.size()) / n : 0;
  py::array_t<int64_t> stats({n, int64_t(c.width())});
  int64_t* out = stats.mutable_data();
  {
    py::gil_scoped_release nogil;
    bl::chrf_stats(h.views.data(), n, r.views.data(), r.present.data(), nrefs, c, out);
  }
  return stats;
}

py::array_t<double> chrf_scores(const Ids& stats, const bl::ChrfConfig& c) {
  if (stats.ndim() != 2 || stats.shape(1) != c.width())
    throw std::invalid_argument("stats: expected shape (N, 3 * (char_order + word_order))");
  const int64_t n = stats.shape(0), W = stats.shape(1);
  py::array_t<double> out(n);
  double* o = out.mutable_data();
  const int64_t* st = stats.data();
  {
    py::gil_scoped_release nogil;
    for (int64_t i = 0; i < n; ++i) o[i] = bl::chrf_score(st + i * W, c);
  }
  return out;
}

py::array_t<double> chrf_pairwise(const py::object& hyps, const py::object& refs,
                                  const bl::ChrfConfig& c) {
  Lines h = read_lines(hyps, "hyps");
  Lines r = read_lines(refs, "refs");
  const int64_t n = int64_t(h.views.size()), m = int64_t(r.views.size());
  py::array_t<double> out({n, m});
  double* o = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    bl::chrf_pairwise(h.views.data(), n, r.views.data(), m, c, o);
  }
  return out;
}

py::tuple bootstrap(const py::array_t<float, py::array::c_style | py::array::forcecast>& stats,
                    const Ids& idx, const py::dict& spec) {
  const bl::MetricSpec m = metric_spec(spec);
  if (stats.ndim() != 3 || stats.shape(2) != m.width())
    throw std::invalid_argument("stats: expected shape (N, S, W) with the metric's width W");
  const int64_t n = stats.shape(0), s = stats.shape(1);
  if (idx.ndim() != 2 || idx.shape(1) != n)
    throw std::invalid_argument("idx: expected shape (B, N) with N segments");
  const int64_t b = idx.shape(0);
  const int64_t* ix = idx.data();
  for (int64_t k = 0, total = b * n; k < total; ++k)
    if (ix[k] < 0 || ix[k] >= n) throw std::invalid_argument("idx: segment index out of range");
  py::array_t<double> scores({s, b});
  py::array_t<uint8_t> f32({s, b});
  double* sc = scores.mutable_data();
  uint8_t* fl = f32.mutable_data();
  const float* st = stats.data();
  const int threads = fastrnn::get_num_threads();
  {
    py::gil_scoped_release nogil;
    bl::bootstrap_scores(st, n, s, ix, b, m, sc, fl, threads);
  }
  return py::make_tuple(scores, f32);
}

py::tuple randomization(const Ids& base, const Ids& systems,
                        const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& sel,
                        const py::dict& spec) {
  const bl::MetricSpec m = metric_spec(spec);
  if (base.ndim() != 2 || base.shape(1) != m.width())
    throw std::invalid_argument("base: expected shape (N, W) with the metric's width W");
  const int64_t n = base.shape(0);
  if (systems.ndim() != 3 || systems.shape(0) != n || systems.shape(2) != m.width())
    throw std::invalid_argument("systems: expected shape (N, S, W)");
  const int64_t s = systems.shape(1);
  if (sel.ndim() != 2 || sel.shape(1) != n)
    throw std::invalid_argument("sel: expected shape (B, N) with N segments");
  const int64_t b = sel.shape(0);
  py::array_t<double> a({s, b}), bb({s, b});
  double* pa = a.mutable_data();
  double* pb = bb.mutable_data();
  const int64_t* pbase = base.data();
  const int64_t* psys = systems.data();
  const uint8_t* psel = sel.data();
  const int threads = fastrnn::get_num_threads();
  {
    py::gil_scoped_release nogil;
    bl::randomization_scores(pbase, psys, n, s, psel, b, m, pa, pb, threads);
  }
  return py::make_tuple(a, bb);
}

void register_chrf(py::module_& m) {
  m.def(
      "_chrf_stats",
      [](const py::object& hyps, const py::object& refs, int char_order, int word_order,
         double beta, bool whitespace, bool eps_smoothing) {
        return chrf_stats(hyps, refs,
                          chrf_config(char_order, word_order, beta, whitespace, eps_smoothing));
      },
      py::arg("hyps"), py::arg("refs"), py::arg("char_order"), py::arg("word_order"),
      py::arg("beta"), py::arg("whitespace"), py::arg("eps_smoothing"),
      "chrF segment statistics (N, 3 * (char_order + word_order)) against reference streams.");
  m.def(
      "_chrf_scores",
      [](const Ids& stats, int char_order, int word_order, double beta, bool eps_smoothing) {
        return chrf_scores(stats, chrf_config(char_order, word_order, beta, false, eps_smoothing));
      },
      py::arg("stats"), py::arg("char_order"), py::arg("word_order"), py::arg("beta"),
      py::arg("eps_smoothing"), "sacrebleu's chrF of each statistics row (N,), bit for bit.");
  m.def(
      "_chrf_pairwise",
      [](const py::object& hyps, const py::object& refs, int char_order, int word_order,
         double beta, bool whitespace, bool eps_smoothing) {
        return chrf_pairwise(hyps, refs,
                             chrf_config(char_order, word_order, beta, whitespace, eps_smoothing));
      },
      py::arg("hyps"), py::arg("refs"), py::arg("char_order"), py::arg("word_order"),
      py::arg("beta"), py::arg("whitespace"), py::arg("eps_smoothing"),
      "Sentence chrF of every hyp against every single ref (N, M).");
  m.def("_bootstrap_scores", &bootstrap, py::arg("stats"), py::arg("idx"), py::arg("spec"),
        "Scores (S, B) of bootstrap resamples of float32 stats (N, S, W), and which are float32.");
  m.def("_randomization_scores", &randomization, py::arg("base"), py::arg("systems"),
        py::arg("sel"), py::arg("spec"),
        "Scores (S, B) of the two pseudo-systems of each randomization trial.");
}

}  // namespace

void register_bleu(py::module_& m) {
  register_chrf(m);
  m.def(
      "_bleu_text_stats",
      [](const py::object& hyps, const py::object& refs, const std::string& tokenize,
         const py::object& table, int order) {
        check_order(order);
        return text_stats(hyps, refs, tokenize, table, order);
      },
      py::arg("hyps"), py::arg("refs"), py::arg("tokenize"), py::arg("table"), py::arg("order"),
      "Segment statistics (N, 2 + 2*order) of hyps against reference streams refs (R x N).");
  m.def(
      "_bleu_id_stats",
      [](const Ids& hyp_ids, const Ids& hyp_off, const Ids& ref_ids, const Ids& ref_off,
         const py::array_t<uint8_t, py::array::c_style>& present, int64_t nrefs, int order) {
        check_order(order);
        return id_stats(hyp_ids, hyp_off, ref_ids, ref_off, present, nrefs, order);
      },
      py::arg("hyp_ids"), py::arg("hyp_off"), py::arg("ref_ids"), py::arg("ref_off"),
      py::arg("present"), py::arg("nrefs"), py::arg("order"),
      "Segment statistics of flat token ids (stream-major references).");
  m.def(
      "_bleu_scores",
      [](const Ids& stats, int order, const std::string& smooth, double smooth_value,
         bool effective_order, bool compensated_sum) {
        check_order(order);
        return scores(stats, order, smooth, smooth_value, effective_order, compensated_sum);
      },
      py::arg("stats"), py::arg("order"), py::arg("smooth"), py::arg("smooth_value"),
      py::arg("effective_order"), py::arg("compensated_sum"),
      "sacrebleu's BLEU of each statistics row (N,), bit for bit.");
  m.def(
      "_bleu_pairwise_text",
      [](const py::object& hyps, const py::object& refs, const std::string& tokenize,
         const py::object& table, int order, const std::string& smooth, double smooth_value,
         bool effective_order, bool compensated_sum) {
        check_order(order);
        return pairwise_text(hyps, refs, tokenize, table, order, smooth, smooth_value,
                             effective_order, compensated_sum);
      },
      py::arg("hyps"), py::arg("refs"), py::arg("tokenize"), py::arg("table"), py::arg("order"),
      py::arg("smooth"), py::arg("smooth_value"), py::arg("effective_order"),
      py::arg("compensated_sum"), "Sentence BLEU of every hyp against every single ref (N, M).");
  m.def(
      "_bleu_pairwise_ids",
      [](const Ids& hyp_ids, const Ids& hyp_off, const Ids& ref_ids, const Ids& ref_off, int order,
         const std::string& smooth, double smooth_value, bool effective_order,
         bool compensated_sum) {
        check_order(order);
        return pairwise_ids(hyp_ids, hyp_off, ref_ids, ref_off, order, smooth, smooth_value,
                            effective_order, compensated_sum);
      },
      py::arg("hyp_ids"), py::arg("hyp_off"), py::arg("ref_ids"), py::arg("ref_off"),
      py::arg("order"), py::arg("smooth"), py::arg("smooth_value"), py::arg("effective_order"),
      py::arg("compensated_sum"), "Pairwise sentence BLEU of flat token ids (N, M).");
  m.def("_bleu_tokenize", &tokenize_lines, py::arg("lines"), py::arg("tokenize"),
        py::arg("table") = py::none(),
        "Each line as sacrebleu's tokenizer leaves it after rstrip(): tokens joined by spaces.");
}
