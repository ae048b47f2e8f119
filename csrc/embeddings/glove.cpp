// glove.cpp: GloVe's co-occurrence counting in bounded memory and its threaded AdaGrad epoch.
// Baseline-compiled; the per-record update is in simd.cpp.
//
// Counting follows the reference (cooccur.c): pairs of frequent words (rank product at most
// max_product) go to a dense table, the rest to a record buffer. A full buffer is sorted and its
// duplicates summed; if that does not free half of it, it is written to an (unlinked) temporary
// file as a sorted run. At the end the runs, the buffer and the dense table are merged in (i, j)
// order, summing equal pairs, and handed out in blocks.
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <queue>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/dispatch.h"
#include "embeddings/embeddings.h"

namespace fastrnn {
namespace {

inline uint64_t key(const CoocRecord& r) { return (uint64_t(uint32_t(r.i)) << 32) | uint32_t(r.j); }

// Sorts by (i, j) and sums duplicates in place; returns the new size.
int64_t sort_and_combine(CoocRecord* r, int64_t n) {
  std::sort(r, r + n, [](const CoocRecord& a, const CoocRecord& b) { return key(a) < key(b); });
  int64_t m = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (m > 0 && r[m - 1].i == r[k].i && r[m - 1].j == r[k].j)
      r[m - 1].x += r[k].x;
    else
      r[m++] = r[k];
  }
  return m;
}

struct Run {
  FILE* f = nullptr;
  std::vector<CoocRecord> buf;
  size_t pos = 0, len = 0;
  bool refill() {
    len = std::fread(buf.data(), sizeof(CoocRecord), buf.size(), f);
    pos = 0;
    return len > 0;
  }
};

// Dense storage for rank pairs with (i+1)(j+1) <= P: row i holds j < min(V, P/(i+1)).
struct Dense {
  int64_t rows = 0;
  std::vector<int64_t> start;  // [rows+1]
  std::vector<double> x;
  static int64_t size_for(int64_t P, int64_t V) {
    int64_t s = 0;
    for (int64_t i = 0; i < std::min(V, P); ++i) s += std::min(V, P / (i + 1));
    return s;
  }
  void init(int64_t P, int64_t V) {
    rows = std::min(V, P);
    start.assign(rows + 1, 0);
    for (int64_t i = 0; i < rows; ++i) start[i + 1] = start[i] + std::min(V, P / (i + 1));
    x.assign(start[rows], 0.0);
  }
  double* at(int64_t i, int64_t j) {
    if (i >= rows) return nullptr;
    const int64_t k = start[i] + j;
    return k < start[i + 1] ? &x[k] : nullptr;
  }
};

}  // namespace

CoocResult cooccurrence(const int32_t* ids, const int64_t* sent_start, int64_t S, int64_t V,
                        int window, bool distance_weighting, int64_t memory_bytes,
                        const char* tmp_dir, CoocEmit emit, void* ctx) {
  if (window < 1)
    throw std::invalid_argument("window: must be >= 1, got " + std::to_string(window));
  if (memory_bytes < int64_t(1024))
    throw std::invalid_argument("memory: must be at least 1 KiB, got " +
                                std::to_string(memory_bytes) + " bytes");
  // Half of the budget for the dense table (8 bytes a pair), half for the record buffer.
  int64_t lo = 0, hi = std::min<int64_t>(V * V, int64_t(1) << 40);
  while (lo < hi) {  // the largest P whose table fits
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (Dense::size_for(mid, V) * int64_t(sizeof(double)) <= memory_bytes / 2)
      lo = mid;
    else
      hi = mid - 1;
  }
  Dense dense;
  dense.init(lo, V);
  const int64_t cap = std::max<int64_t>(16, memory_bytes / 2 / int64_t(sizeof(CoocRecord)));
  std::vector<CoocRecord> buf;  // grown to cap at most, never beyond (no doubling past it)
  buf.reserve(size_t(std::min<int64_t>(cap, int64_t(1) << 16)));
  std::vector<std::unique_ptr<Run>> runs;
  CoocResult res;
  auto close_runs = [&] {
    for (auto& r : runs)
      if (r->f) std::fclose(r->f), r->f = nullptr;
  };
  auto spill = [&] {
    int64_t n = sort_and_combine(buf.data(), int64_t(buf.size()));
    buf.resize(size_t(n));
    if (n <= cap / 2) return;  // combining made room
    std::string path = std::string(tmp_dir) + "/fastrnn-cooc-XXXXXX";
    const int fd = mkstemp(&path[0]);
    if (fd < 0) {
      close_runs();
      throw std::runtime_error("cooccurrence: cannot create a temporary file in " +
                               std::string(tmp_dir) + ": " + std::strerror(errno));
    }
    unlink(path.c_str());  // gone when closed, whatever happens
    auto run = std::make_unique<Run>();
    run->f = fdopen(fd, "w+b");
    const bool ok = run->f &&
                    std::fwrite(buf.data(), sizeof(CoocRecord), buf.size(), run->f) == buf.size() &&
                    std::fflush(run->f) == 0;
    if (!ok) {
      if (run->f)
        std::fclose(run->f);
      else
        close(fd);
      close_runs();
      throw std::runtime_error("cooccurrence: cannot write a temporary file in " +
                               std::string(tmp_dir) + " (disk full?)");
    }
    std::rewind(run->f);
    runs.push_back(std::move(run));
    ++res.spills;
    buf.clear();
  };
  auto add = [&](int32_t i, int32_t j, double x) {
    if (double* d = dense.at(i, j)) {
      *d += x;
      return;
    }
    if (int64_t(buf.size()) == cap) spill();
    if (buf.size() == buf.capacity())
      buf.reserve(size_t(std::min<int64_t>(cap, 2 * int64_t(buf.capacity()))));
    buf.push_back({i, j, float(x)});
  };
  for (int64_t s = 0; s < S; ++s) {
    const int32_t* w = ids + sent_start[s];
    const int64_t n = sent_start[s + 1] - sent_start[s];
    for (int64_t p = 0; p < n; ++p) {
      const int64_t first = std::max<int64_t>(0, p - window);
      for (int64_t c = p - 1; c >= first; --c) {
        const double x = distance_weighting ? 1.0 / double(p - c) : 1.0;
        add(w[p], w[c], x);
        add(w[c], w[p], x);
      }
    }
  }
  buf.resize(size_t(sort_and_combine(buf.data(), int64_t(buf.size()))));

  // k-way merge: runs, the buffer, and the dense table, all in (i, j) order.
  const size_t kBlock = 1 << 16;
  for (auto& r : runs) {
    r->buf.resize(kBlock);
    r->refill();
  }
  size_t bpos = 0;
  int64_t di = 0, dk = 0;  // dense cursor: row di, flat index dk
  auto dense_next = [&](CoocRecord* out) {
    while (di < dense.rows) {
      if (dk >= dense.start[di + 1]) {
        ++di;
        continue;
      }
      const int64_t k = dk++;
      if (dense.x[k] != 0.0) {
        *out = {int32_t(di), int32_t(k - dense.start[di]), float(dense.x[k])};
        return true;
      }
    }
    return false;
  };
  using Head = std::pair<uint64_t, int64_t>;  // (key, source): source -1 buffer, -2 dense
  std::priority_queue<Head, std::vector<Head>, std::greater<Head>> heap;
  CoocRecord dense_head{};
  bool dense_live = dense_next(&dense_head);
  if (dense_live) heap.push({key(dense_head), -2});
  if (bpos < buf.size()) heap.push({key(buf[bpos]), -1});
  for (size_t r = 0; r < runs.size(); ++r)
    if (runs[r]->len) heap.push({key(runs[r]->buf[0]), int64_t(r)});
  std::vector<CoocRecord> out;
  out.reserve(kBlock);
  bool have = false;
  CoocRecord cur{};
  double sum = 0.0;
  while (!heap.empty()) {
    const Head h = heap.top();
    heap.pop();
    CoocRecord rec;
    if (h.second == -2) {
      rec = dense_head;
      if ((dense_live = dense_next(&dense_head))) heap.push({key(dense_head), -2});
    } else if (h.second == -1) {
      rec = buf[bpos++];
      if (bpos < buf.size()) heap.push({key(buf[bpos]), -1});
    } else {
      Run& r = *runs[size_t(h.second)];
      rec = r.buf[r.pos++];
      if (r.pos < r.len || r.refill()) heap.push({key(r.buf[r.pos]), h.second});
    }
    if (have && rec.i == cur.i && rec.j == cur.j) {
      sum += rec.x;
      continue;
    }
    if (have) {
      cur.x = float(sum);
      out.push_back(cur);
      if (out.size() == kBlock) emit(ctx, out.data(), int64_t(out.size())), out.clear();
      ++res.records;
    }
    cur = rec;
    sum = rec.x;
    have = true;
  }
  if (have) {
    cur.x = float(sum);
    out.push_back(cur);
    ++res.records;
  }
  if (!out.empty()) emit(ctx, out.data(), int64_t(out.size()));
  close_runs();
  return res;
}

double glove_epoch(const GloveArgs& a, int64_t R, int workers) {
  const EmbeddingKernels k = embedding_kernels();
  const int threads = cap_threads(std::min<int64_t>(workers, R));  // dispatch.h: the one cap
  double cost = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : cost)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    cost += k.glove_records(a, R * t / nt, R * (t + 1) / nt, nullptr);
  }
  return cost;
}

}  // namespace fastrnn
