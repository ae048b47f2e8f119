// embeddings.cpp: the pybind11 glue of fastrnn.embeddings: vocabulary counting and corpus
// encoding (from Python lists or straight from a file), word2vec's tables and training, GloVe's
// co-occurrence counting and epochs. Every array is checked here (dtype, shape, contiguity,
// writeability, id ranges) before a kernel sees it, and the GIL is released around the kernels.
// The friendlier checks and messages live in python/fastrnn/embeddings/.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "cpu/dispatch.h"
#include "embeddings/embeddings.h"
#include "embeddings/tables.h"

namespace py = pybind11;
using fastrnn::CoocRecord;

namespace {

template <typename T>
const char* dtype_name();
template <>
const char* dtype_name<float>() {
  return "float32";
}
template <>
const char* dtype_name<int32_t>() {
  return "int32";
}
template <>
const char* dtype_name<int64_t>() {
  return "int64";
}
template <>
const char* dtype_name<uint32_t>() {
  return "uint32";
}
template <>
const char* dtype_name<uint8_t>() {
  return "uint8";
}

// arr as a C-contiguous array of T with n elements (n < 0: any), else an error naming it.
template <typename T>
py::array_t<T> arg(const py::object& obj, const char* name, int64_t n, bool write = false) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().equal(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + ": expected dtype " + dtype_name<T>() + ", got " +
                         std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(name) + ": expected a C-contiguous array");
  if (write && !a.writeable())
    throw std::invalid_argument(std::string(name) + ": expected a writeable array");
  if (n >= 0 && a.size() != n)
    throw std::invalid_argument(std::string(name) + ": expected " + std::to_string(n) +
                                " elements, got " + std::to_string(a.size()));
  return py::reinterpret_borrow<py::array_t<T>>(a);
}

// A (rows, D) float32 matrix, writeable, C-contiguous.
py::array_t<float> matrix(const py::object& obj, const char* name, int64_t rows, int64_t D) {
  auto a = arg<float>(obj, name, -1, true);
  if (a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != D)
    throw std::invalid_argument(std::string(name) + ": expected shape (" + std::to_string(rows) +
                                ", " + std::to_string(D) + ")");
  return a;
}

void check_ids(const int32_t* ids, int64_t n, int64_t V, const char* name) {
  for (int64_t k = 0; k < n; ++k)
    if (ids[k] < 0 || ids[k] >= V)
      throw std::invalid_argument(std::string(name) + ": id " + std::to_string(ids[k]) +
                                  " at position " + std::to_string(k) + " is outside [0, " +
                                  std::to_string(V) + ")");
}

// starts[0] == first, nondecreasing, starts[n-1] == last.
void check_offsets(const int64_t* s, int64_t n, int64_t first, int64_t last, const char* name) {
  if (n < 1 || s[0] != first || s[n - 1] != last)
    throw std::invalid_argument(std::string(name) + ": must start at " + std::to_string(first) +
                                " and end at " + std::to_string(last));
  for (int64_t k = 1; k < n; ++k)
    if (s[k] < s[k - 1])
      throw std::invalid_argument(std::string(name) + ": must be nondecreasing (position " +
                                  std::to_string(k) + ")");
}

std::string utf8_of(const py::handle& tok, const char* what) {
  if (!PyUnicode_Check(tok.ptr()))
    throw py::type_error(std::string(what) + ": expected every token to be a str, got " +
                         std::string(py::str(py::type::of(tok).attr("__name__"))));
  Py_ssize_t len = 0;
  const char* s = PyUnicode_AsUTF8AndSize(tok.ptr(), &len);
  if (!s) throw py::error_already_set();
  return std::string(s, size_t(len));
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Reads a whitespace-tokenised file, one sentence per line; calls tok(word) and eol().
template <typename Tok, typename Eol>
void scan_file(const std::string& path, Tok tok, Eol eol) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::invalid_argument("corpus_file: cannot open " + path);
  std::vector<char> buf(1 << 20);
  std::string word;
  bool line_has_words = false;
  size_t got;
  while ((got = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    for (size_t k = 0; k < got; ++k) {
      const char c = buf[k];
      if (!is_space(c)) {
        word.push_back(c);
        continue;
      }
      if (!word.empty()) tok(word), word.clear(), line_has_words = true;
      if (c == '\n' && line_has_words) eol(), line_has_words = false;
    }
  }
  const bool err = std::ferror(f);
  std::fclose(f);
  if (err) throw std::invalid_argument("corpus_file: read error in " + path);
  if (!word.empty()) tok(word), line_has_words = true;
  if (line_has_words) eol();
}

// Word counts (first-seen order) and the encoding of sentences into ids of a fixed vocabulary.
class Vocab {
 public:
  Vocab() = default;
  explicit Vocab(const std::vector<std::string>& words) {
    for (const auto& w : words) {
      if (index_.count(w)) throw std::invalid_argument("words: duplicate word '" + w + "'");
      index_.emplace(w, int64_t(words_.size()));
      words_.push_back(w);
      counts_.push_back(0);
    }
  }

  // Counts the tokens of a list of sentences (each a list or tuple of str).
  void count(const py::list& sentences) {
    for (const py::handle& s : sentences) {
      for_tokens(s, [&](std::string w) { bump(std::move(w)); });
      ++sentences_;
    }
  }

  void count_file(const std::string& path) {
    py::gil_scoped_release nogil;
    scan_file(path, [&](const std::string& w) { bump(w); }, [&] { ++sentences_; });
  }

  py::tuple items() const {
    py::list words;
    for (const auto& w : words_)
      words.append(py::reinterpret_steal<py::str>(
          PyUnicode_DecodeUTF8(w.data(), Py_ssize_t(w.size()), "replace")));
    py::array_t<int64_t> counts(int64_t(counts_.size()));
    std::copy(counts_.begin(), counts_.end(), counts.mutable_data());
    return py::make_tuple(words, counts, tokens_, sentences_);
  }

  // ids (int32 [N]) of the known tokens and sentence starts (int64 [S+1]); sentences longer than
  // max_len are cut into pieces, empty ones dropped. Also returns the number of tokens read.
  py::tuple encode(const py::list& sentences, int64_t max_len) {
    Encoded e(max_len);
    for (const py::handle& s : sentences) {
      for_tokens(s, [&](const std::string& w) { e.token(lookup(w)); });
      e.eol();
    }
    return e.arrays();
  }

  py::tuple encode_file(const std::string& path, int64_t max_len) {
    Encoded e(max_len);
    {
      py::gil_scoped_release nogil;
      scan_file(path, [&](const std::string& w) { e.token(lookup(w)); }, [&] { e.eol(); });
    }
    return e.arrays();
  }

 private:
  struct Encoded {
    explicit Encoded(int64_t m) : max_len(m) {
      if (m < 1) throw std::invalid_argument("max_len: must be >= 1");
      starts.push_back(0);
    }
    void token(int64_t id) {
      ++read;
      if (id < 0) return;
      ids.push_back(int32_t(id));
      if (int64_t(ids.size()) - starts.back() == max_len) starts.push_back(int64_t(ids.size()));
    }
    void eol() {
      if (int64_t(ids.size()) > starts.back()) starts.push_back(int64_t(ids.size()));
    }
    py::tuple arrays() const {
      py::array_t<int32_t> a(int64_t(ids.size()));
      if (!ids.empty()) std::memcpy(a.mutable_data(), ids.data(), ids.size() * sizeof(int32_t));
      py::array_t<int64_t> s(int64_t(starts.size()));
      std::memcpy(s.mutable_data(), starts.data(), starts.size() * sizeof(int64_t));
      return py::make_tuple(a, s, read);
    }
    int64_t max_len, read = 0;
    std::vector<int32_t> ids;
    std::vector<int64_t> starts;
  };

  template <typename F>
  static void for_tokens(const py::handle& s, F f) {
    if (PyUnicode_Check(s.ptr()))
      throw py::type_error(
          "sentences: expected each sentence to be a list of str tokens, got a str (split it "
          "first)");
    if (!PyList_Check(s.ptr()) && !PyTuple_Check(s.ptr()))
      throw py::type_error("sentences: expected each sentence to be a list of str tokens, got " +
                           std::string(py::str(py::type::of(s).attr("__name__"))));
    for (const py::handle& tok : py::reinterpret_borrow<py::sequence>(s))
      f(utf8_of(tok, "sentences"));
  }

  void bump(std::string w) {
    ++tokens_;
    auto it = index_.find(w);
    if (it != index_.end()) {
      ++counts_[size_t(it->second)];
      return;
    }
    index_.emplace(w, int64_t(words_.size()));
    words_.push_back(std::move(w));
    counts_.push_back(1);
  }

  int64_t lookup(const std::string& w) const {
    auto it = index_.find(w);
    return it == index_.end() ? -1 : it->second;
  }

  std::unordered_map<std::string, int64_t> index_;
  std::vector<std::string> words_;
  std::vector<int64_t> counts_;
  int64_t tokens_ = 0, sentences_ = 0;
};

py::array_t<uint32_t> subsample_table(const py::object& counts_obj, double sample) {
  auto c = arg<int64_t>(counts_obj, "counts", -1);
  const int64_t V = c.size();
  for (int64_t w = 0; w < V; ++w)
    if (c.data()[w] < 0) throw std::invalid_argument("counts: must be >= 0");
  py::array_t<uint32_t> keep(V);
  fastrnn::subsample_table(c.data(), V, sample, keep.mutable_data());
  return keep;
}

py::tuple alias_table(const py::object& w_obj) {
  auto w = py::array_t < double, py::array::c_style | py::array::forcecast > ::ensure(w_obj);
  if (!w || w.ndim() != 1 || w.size() < 1)
    throw std::invalid_argument("weights: expected a nonempty 1-D array of numbers");
  if (w.size() > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument("weights: more than 2^31-1 words");
  const int64_t V = w.size();
  py::array_t<uint32_t> prob(V);
  py::array_t<int32_t> idx(V);
  fastrnn::alias_table(w.data(), V, prob.mutable_data(), idx.mutable_data());
  return py::make_tuple(prob, idx);
}

py::tuple huffman(const py::object& counts_obj) {
  auto c = arg<int64_t>(counts_obj, "counts", -1);
  fastrnn::HuffmanCodes h = fastrnn::huffman(c.data(), c.size());
  py::array_t<uint8_t> codes(int64_t(h.codes.size()));
  py::array_t<int32_t> points(int64_t(h.points.size()));
  py::array_t<int64_t> start(int64_t(h.code_start.size()));
  std::copy(h.codes.begin(), h.codes.end(), codes.mutable_data());
  std::copy(h.points.begin(), h.points.end(), points.mutable_data());
  std::copy(h.code_start.begin(), h.code_start.end(), start.mutable_data());
  return py::make_tuple(codes, points, start);
}

py::tuple w2v_train(const py::object& syn0_obj, const py::object& syn1_obj,
                    const py::object& syn1neg_obj, const py::object& keep_obj,
                    const py::object& alias_prob_obj, const py::object& alias_idx_obj,
                    const py::object& codes_obj, const py::object& points_obj,
                    const py::object& code_start_obj, const py::object& ids_obj,
                    const py::object& sent_start_obj, const py::object& job_sent_obj,
                    int64_t job_begin, int64_t job_end, int sg, int hs, int negative, int window,
                    int cbow_mean, bool compute_loss, double alpha0, double alpha1,
                    double words_before, double words_total, uint64_t seed, int64_t epoch,
                    int workers) {
  if (!py::isinstance<py::array>(syn0_obj)) throw py::type_error("syn0: expected a numpy.ndarray");
  py::array s0 = py::reinterpret_borrow<py::array>(syn0_obj);
  if (s0.ndim() != 2 || s0.shape(0) < 1 || s0.shape(1) < 1)
    throw std::invalid_argument("syn0: expected a nonempty 2-D array (V, D)");
  const int64_t V = s0.shape(0), D = s0.shape(1);
  if (V > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument("syn0: more than 2^31-1 words");
  if (window < 1)
    throw std::invalid_argument("window: must be >= 1, got " + std::to_string(window));
  if (negative < 0 || negative > 1000)
    throw std::invalid_argument("negative: must be in [0, 1000], got " + std::to_string(negative));
  if (!hs && negative == 0) throw std::invalid_argument("hs=0 and negative=0: nothing to train");
  if (workers < 1) throw std::invalid_argument("workers: must be >= 1");
  auto syn0 = matrix(syn0_obj, "syn0", V, D);
  fastrnn::W2VArgs a{};
  a.syn0 = syn0.mutable_data();
  a.vocab = V;
  a.dim = D;
  a.sg = sg ? 1 : 0;
  a.hs = hs ? 1 : 0;
  a.negative = negative;
  a.window = window;
  a.cbow_mean = cbow_mean ? 1 : 0;
  a.compute_loss = compute_loss ? 1 : 0;
  py::array_t<float> syn1, syn1neg;
  py::array_t<uint32_t> keep, ap;
  py::array_t<int32_t> ai, points;
  py::array_t<uint8_t> codes;
  py::array_t<int64_t> cstart;
  if (!keep_obj.is_none()) {
    keep = arg<uint32_t>(keep_obj, "keep", V);
    a.keep = keep.data();
  }
  if (hs) {
    syn1 = matrix(syn1_obj, "syn1", V - 1, D);
    a.syn1 = syn1.mutable_data();
    cstart = arg<int64_t>(code_start_obj, "code_start", V + 1);
    codes = arg<uint8_t>(codes_obj, "codes", -1);
    points = arg<int32_t>(points_obj, "points", codes.size());
    check_offsets(cstart.data(), V + 1, 0, codes.size(), "code_start");
    check_ids(points.data(), points.size(), std::max<int64_t>(V - 1, 0), "points");
    a.syn1 = V > 1 ? syn1.mutable_data() : nullptr;
    a.codes = codes.data();
    a.points = points.data();
    a.code_start = cstart.data();
  }
  if (negative > 0) {
    syn1neg = matrix(syn1neg_obj, "syn1neg", V, D);
    a.syn1neg = syn1neg.mutable_data();
    ap = arg<uint32_t>(alias_prob_obj, "alias_prob", V);
    ai = arg<int32_t>(alias_idx_obj, "alias_idx", V);
    check_ids(ai.data(), V, V, "alias_idx");
    a.alias_prob = ap.data();
    a.alias_idx = ai.data();
  }
  auto ids = arg<int32_t>(ids_obj, "ids", -1);
  auto ss = arg<int64_t>(sent_start_obj, "sent_start", -1);
  auto js = arg<int64_t>(job_sent_obj, "job_sent", -1);
  const int64_t S = ss.size() - 1, J = js.size() - 1;
  check_offsets(ss.data(), S + 1, 0, ids.size(), "sent_start");
  check_offsets(js.data(), J + 1, 0, S, "job_sent");
  check_ids(ids.data(), ids.size(), V, "ids");
  if (job_begin < 0 || job_end > J || job_begin > job_end)
    throw std::invalid_argument("job_begin, job_end: expected 0 <= begin <= end <= " +
                                std::to_string(J));
  fastrnn::W2VStats st;
  {
    py::gil_scoped_release nogil;
    st = fastrnn::w2v_train(a, ids.data(), ss.data(), js.data(), job_begin, job_end, alpha0, alpha1,
                            words_before, words_total, seed, epoch, workers);
  }
  return py::make_tuple(st.loss, st.words, st.effective);
}

void collect(void* ctx, const CoocRecord* r, int64_t n) {
  auto* v = static_cast<std::vector<CoocRecord>*>(ctx);
  v->insert(v->end(), r, r + n);
}

py::tuple cooccurrence(const py::object& ids_obj, const py::object& sent_start_obj, int64_t V,
                       int window, bool distance_weighting, int64_t memory_bytes,
                       const std::string& tmp_dir) {
  auto ids = arg<int32_t>(ids_obj, "ids", -1);
  auto ss = arg<int64_t>(sent_start_obj, "sent_start", -1);
  if (V < 1 || V > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument("vocab_size: must be in [1, 2^31-1]");
  const int64_t S = ss.size() - 1;
  check_offsets(ss.data(), S + 1, 0, ids.size(), "sent_start");
  check_ids(ids.data(), ids.size(), V, "ids");
  std::vector<CoocRecord> recs;
  fastrnn::CoocResult res;
  {
    py::gil_scoped_release nogil;
    res = fastrnn::cooccurrence(ids.data(), ss.data(), S, V, window, distance_weighting,
                                memory_bytes, tmp_dir.c_str(), &collect, &recs);
  }
  const int64_t R = int64_t(recs.size());
  py::array_t<int32_t> rows(R), cols(R);
  py::array_t<float> vals(R);
  for (int64_t k = 0; k < R; ++k) {
    rows.mutable_data()[k] = recs[size_t(k)].i;
    cols.mutable_data()[k] = recs[size_t(k)].j;
    vals.mutable_data()[k] = recs[size_t(k)].x;
  }
  return py::make_tuple(rows, cols, vals, res.spills);
}

double glove_epoch(const py::object& w_obj, const py::object& wc_obj, const py::object& b_obj,
                   const py::object& bc_obj, const py::object& gw_obj, const py::object& gwc_obj,
                   const py::object& gb_obj, const py::object& gbc_obj, const py::object& rows_obj,
                   const py::object& cols_obj, const py::object& vals_obj, double x_max,
                   double alpha, double eta, int workers) {
  if (!py::isinstance<py::array>(w_obj)) throw py::type_error("w: expected a numpy.ndarray");
  py::array w0 = py::reinterpret_borrow<py::array>(w_obj);
  if (w0.ndim() != 2 || w0.shape(0) < 1 || w0.shape(1) < 1)
    throw std::invalid_argument("w: expected a nonempty 2-D array (V, D)");
  const int64_t V = w0.shape(0), D = w0.shape(1);
  if (!(x_max > 0)) throw std::invalid_argument("x_max: must be > 0");
  if (workers < 1) throw std::invalid_argument("workers: must be >= 1");
  auto w = matrix(w_obj, "w", V, D), wc = matrix(wc_obj, "wc", V, D);
  auto gw = matrix(gw_obj, "gw", V, D), gwc = matrix(gwc_obj, "gwc", V, D);
  auto b = arg<float>(b_obj, "b", V, true), bc = arg<float>(bc_obj, "bc", V, true);
  auto gb = arg<float>(gb_obj, "gb", V, true), gbc = arg<float>(gbc_obj, "gbc", V, true);
  auto rows = arg<int32_t>(rows_obj, "rows", -1);
  const int64_t R = rows.size();
  auto cols = arg<int32_t>(cols_obj, "cols", R);
  auto vals = arg<float>(vals_obj, "vals", R);
  check_ids(rows.data(), R, V, "rows");
  check_ids(cols.data(), R, V, "cols");
  for (int64_t k = 0; k < R; ++k)
    if (!(vals.data()[k] > 0.f) || !std::isfinite(vals.data()[k]))
      throw std::invalid_argument("vals: co-occurrence counts must be finite and > 0 (position " +
                                  std::to_string(k) + ")");
  fastrnn::GloveArgs a{w.mutable_data(),  wc.mutable_data(),  b.mutable_data(),  bc.mutable_data(),
                       gw.mutable_data(), gwc.mutable_data(), gb.mutable_data(), gbc.mutable_data(),
                       rows.data(),       cols.data(),        vals.data(),       D,
                       float(x_max),      float(alpha),       float(eta)};
  py::gil_scoped_release nogil;
  return fastrnn::glove_epoch(a, R, workers);
}

// Each row of vectors (V, D) as the text of word2vec's format: " v1 v2 ... vD\n", every value in
// the shortest decimal form that reads back as the same float32 (as gensim's str(np.float32)).
py::list format_rows(const py::object& v_obj) {
  auto v = arg<float>(v_obj, "vectors", -1);
  if (v.ndim() != 2) throw std::invalid_argument("vectors: expected a 2-D array (V, D)");
  const int64_t V = v.shape(0), D = v.shape(1);
  py::list out;
  std::string line;
  char num[64];
  for (int64_t r = 0; r < V; ++r) {
    line.clear();
    for (int64_t d = 0; d < D; ++d) {
      line.push_back(' ');
      auto res = std::to_chars(num, num + sizeof(num), v.data()[r * D + d]);
      line.append(num, res.ptr);
    }
    line.push_back('\n');
    out.append(py::bytes(line));
  }
  return out;
}

float emb_dot(const py::object& x_obj, const py::object& y_obj) {
  auto x = arg<float>(x_obj, "x", -1);
  auto y = arg<float>(y_obj, "y", x.size());
  return fastrnn::embedding_kernels().dot(x.data(), y.data(), x.size());
}

}  // namespace

void register_embeddings(py::module_& m) {
  py::class_<Vocab>(m, "EmbVocab", "Word counts and corpus encoding for fastrnn.embeddings.")
      .def(py::init<>())
      .def(py::init<const std::vector<std::string>&>(), py::arg("words"))
      .def("count", &Vocab::count, py::arg("sentences"))
      .def("count_file", &Vocab::count_file, py::arg("path"))
      .def("items", &Vocab::items, "(words, counts int64, tokens, sentences)")
      .def("encode", &Vocab::encode, py::arg("sentences"), py::arg("max_len"),
           "(ids int32 [N], sent_start int64 [S+1], tokens read)")
      .def("encode_file", &Vocab::encode_file, py::arg("path"), py::arg("max_len"));
  m.def("emb_subsample_table", &subsample_table, py::arg("counts"), py::arg("sample"));
  m.def("emb_alias_table", &alias_table, py::arg("weights"));
  m.def("emb_huffman", &huffman, py::arg("counts"),
        "(codes uint8, points int32, code_start int64)");
  m.def("emb_w2v_train", &w2v_train, py::arg("syn0"), py::arg("syn1"), py::arg("syn1neg"),
        py::arg("keep"), py::arg("alias_prob"), py::arg("alias_idx"), py::arg("codes"),
        py::arg("points"), py::arg("code_start"), py::arg("ids"), py::arg("sent_start"),
        py::arg("job_sent"), py::arg("job_begin"), py::arg("job_end"), py::arg("sg"), py::arg("hs"),
        py::arg("negative"), py::arg("window"), py::arg("cbow_mean"), py::arg("compute_loss"),
        py::arg("alpha0"), py::arg("alpha1"), py::arg("words_before"), py::arg("words_total"),
        py::arg("seed"), py::arg("epoch"), py::arg("workers"),
        "Trains jobs [job_begin, job_end) of one epoch in place; (loss, words, effective words).");
  m.def("emb_cooccurrence", &cooccurrence, py::arg("ids"), py::arg("sent_start"),
        py::arg("vocab_size"), py::arg("window"), py::arg("distance_weighting"),
        py::arg("memory_bytes"), py::arg("tmp_dir"),
        "(rows, cols, vals, spills), sorted by (row, col)");
  m.def("emb_glove_epoch", &glove_epoch, py::arg("w"), py::arg("wc"), py::arg("b"), py::arg("bc"),
        py::arg("gw"), py::arg("gwc"), py::arg("gb"), py::arg("gbc"), py::arg("rows"),
        py::arg("cols"), py::arg("vals"), py::arg("x_max"), py::arg("alpha"), py::arg("eta"),
        py::arg("workers"), "One AdaGrad pass over the records in place; returns the cost.");
  m.def("emb_format_rows", &format_rows, py::arg("vectors"));
  m.def("emb_dot", &emb_dot, py::arg("x"), py::arg("y"));
  m.def("emb_isa", [] { return std::string(fastrnn::embedding_kernels().isa); });
}
