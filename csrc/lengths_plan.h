// lengths_plan.h: the one plan of a batch with lengths, shared by the CPU and GPU drivers
// (fastrnn.h: "sorted rows"). Baseline and host code only; no kernel reads it directly.
//
// A forward of a multi-layer RNN makes it once (fastrnn._C.LengthsPlan, from
// python/fastrnn/_layer_loop.py) and hands the same plan to every layer and direction, CPU or GPU;
// a training forward keeps it in its context for the backward. Immutable once made.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastrnn {

// The batch sorted by length, longest first (stable: equal lengths keep their order), and the
// number of sorted rows still running at each step: at step s the rows [0, active[s]) run.
struct LengthsPlan {
  int64_t batch = 0, steps = 0;  // B, T
  std::vector<int64_t> len;      // [B] each in [1, T]; empty: every sequence runs all T steps
  std::vector<int64_t> order;    // [B] the batch row of sorted row sb
  std::vector<int64_t> active;   // [T]
  const int64_t* lengths() const { return len.empty() ? nullptr : len.data(); }
};

// len [B] each in [1, T] (std::invalid_argument naming `lengths` otherwise), or null for all T.
inline LengthsPlan lengths_plan(const int64_t* len, int64_t B, int64_t T) {
  LengthsPlan p;
  p.batch = B;
  p.steps = T;
  p.order.resize(size_t(B));
  std::iota(p.order.begin(), p.order.end(), int64_t(0));
  if (!len) {
    p.active.assign(size_t(T), B);
    return p;
  }
  for (int64_t b = 0; b < B; ++b)
    if (len[b] < 1 || len[b] > T)
      throw std::invalid_argument("lengths: every length must be in [1, T=" + std::to_string(T) +
                                  "], got " + std::to_string(len[b]));
  p.len.assign(len, len + B);
  std::stable_sort(p.order.begin(), p.order.end(),
                   [&](int64_t a, int64_t b) { return len[a] > len[b]; });
  p.active.assign(size_t(T), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < len[b]; ++s) p.active[size_t(s)]++;
  return p;
}

// That a plan given to a forward over T steps and B sequences was made for them.
inline void check_plan(const LengthsPlan& p, int64_t B, int64_t T) {
  if (p.batch != B || p.steps != T)
    throw std::invalid_argument("lengths: expected a plan for T=" + std::to_string(T) +
                                " steps and B=" + std::to_string(B) +
                                " sequences (the shape of x), got one for T=" +
                                std::to_string(p.steps) + ", B=" + std::to_string(p.batch));
}

}  // namespace fastrnn
