// cells/all.h: every cell, and the one switch from the Cell enum to a cell type.
//
// The cell headers (rnn.h, gru.h, lstm.h) and this one have no namespace and no include guard of
// their own: each is included inside a namespace, once per translation unit and namespace:
//   - baseline and CUDA code: cells/cells.h includes it in fastrnn::cells, after cells/math.h
//     (the scalar math, float and double, host and device);
//   - the per-ISA kernels: cpu/isa/kernels.cpp includes it in fastrnn::<isa>::cells, after
//     cpu/isa/cell_math.h (the same names for Vec<T>), so that everything an ISA object
//     instantiates stays in its namespace (cmake/check_isa_objects.cmake).
// Nothing here includes a system header. Needs Cell (fastrnn.h) and FASTRNN_HD (cells/hd.h).
//
// Points. C::forward_point(io) and C::backward_point(io) do one element (or one vector of them)
// of a step: they read the cell's inputs and write its results through io, an accessor each
// backend defines over its own layout (cpu/isa/forward.h and backward.h: FwdIo, BwdIo over vector
// chunks; cuda/pointwise.h: FwdStep::Io, BwdStep::Io over one element). So the cache layout, the
// bias rule and the phases live in the cell; a backend only knows where things are.
//   forward io:  x(g) input projection of gate g (folded biases), h(g) this phase's recurrent
//                product, h_inner(g) that plus the gate's inner bias, h_prev(), c_prev(),
//                set_c(c), has_peep(), peep(k), caching(), cache(col, v), out(h), phase(),
//                set_rh(v), set_z(v), z()
//   backward io: dh() (dL/dh_s, dy included), k(col) the cache, dc(), set_dc(v), dgi(g, v),
//                dgh(g, v), carry(), set_carry(v) (the part of dL/dh_prev that bypasses W_hh),
//                drh() (phase 1's product), has_peep(), peep(k), peep_grad(k, da, v) (adds
//                da v to dpeep[k], or nothing where the backend sums them later), phase()
//
// A cell type C gives: kCell, kName (as Python spells it), kCellState, kPeephole, kGates,
// kCacheWidth and its CacheCol names, kPhases (products per step), kInnerBiasGate, kSeparateHidden,
// kCarry (see gru.h), and its pointwise forward and backward, templated on the value type.

#include "cells/gru.h"
#include "cells/lstm.h"
#include "cells/rnn.h"

// The most gates a cell may have: the recurrence's register tiles hold 4 gate panels per block.
constexpr int kMaxGates = 4;

template <typename C>
FASTRNN_HD constexpr C cell_type() {
  static_assert(C::kGates >= 1 && C::kGates <= kMaxGates, "a cell has 1 to kMaxGates gates");
  static_assert(C::kPhases == 1 || C::kPhases == 2, "one product per step, or two phases");
  return C{};
}

// f(C{}) for the cell type C of `cell`: the only place that maps the enum to a type. Usable in
// GPU code (a lambda defined there runs there).
#if defined(__CUDACC__)
#pragma nv_exec_check_disable  // f runs where the caller runs: host lambdas from host code
#endif
template <typename F>
FASTRNN_HD inline decltype(auto) with_cell(Cell cell, F&& f) {
  switch (cell) {
    case Cell::kRnnTanh:
      return f(cell_type<RnnTanh>());
    case Cell::kRnnRelu:
      return f(cell_type<RnnRelu>());
    case Cell::kGru:
      return f(cell_type<Gru>());
    case Cell::kGruResetBefore:
      return f(cell_type<GruResetBefore>());
    case Cell::kLstm:
      break;
  }
  return f(cell_type<Lstm>());
}

inline const char* cell_name(Cell cell) {
  return with_cell(cell, [](auto c) { return decltype(c)::kName; });
}

// Gates per hidden unit (G in the shape comments of fastrnn.h).
inline int num_gates(Cell cell) {
  return with_cell(cell, [](auto c) { return decltype(c)::kGates; });
}

// Training-cache columns per (step, batch row), in units of H: the bytes kept per step are
// sizeof(T) * B * H * cache_width(cell); the layout is the cell's CacheCol.
inline int cache_width(Cell cell) {
  return with_cell(cell, [](auto c) { return decltype(c)::kCacheWidth; });
}

// Whether the cell carries a second state c (LSTM) besides h.
inline bool has_cell_state(Cell cell) {
  return with_cell(cell, [](auto c) { return decltype(c)::kCellState; });
}

// Whether the cell accepts peephole weights.
inline bool has_peephole(Cell cell) {
  return with_cell(cell, [](auto c) { return decltype(c)::kPeephole; });
}

// Products per step: 2 where a step's second product needs the first's result (reset-before GRU).
inline int phases(Cell cell) {
  return with_cell(cell, [](auto c) { return decltype(c)::kPhases; });
}

// Whether backward keeps separate hidden-side gate gradients (see Gru::kSeparateHidden).
inline bool separate_hidden(Cell cell) {
  return with_cell(cell, [](auto c) { return decltype(c)::kSeparateHidden; });
}

// Whether part of dL/dh_prev bypasses W_hh (see Gru::kCarry).
inline bool carries(Cell cell) {
  return with_cell(cell, [](auto c) { return decltype(c)::kCarry; });
}

// The cell's gate whose b_hh is added to its recurrent product rather than folded into the input
// projection (PyTorch's GRU: b_hn, gate 2), or -1.
inline int inner_bias_gate(Cell cell) {
  return with_cell(cell, [](auto c) { return decltype(c)::kInnerBiasGate; });
}

// Whether b_hh[col] is folded into the input projection (the bias rule): for a cell whose
// inner-bias gate is `inner` (-1: none), for a cell type, or for a Cell.
FASTRNN_HD constexpr bool folds_hidden_bias(int inner, int64_t col, int64_t hidden) {
  return inner < 0 || col < inner * hidden || col >= (inner + 1) * hidden;
}
template <typename C>
FASTRNN_HD constexpr bool folds_hidden_bias(int64_t col, int64_t hidden) {
  return folds_hidden_bias(C::kInnerBiasGate, col, hidden);
}
inline bool folds_hidden_bias(Cell cell, int64_t col, int64_t hidden) {
  return folds_hidden_bias(inner_bias_gate(cell), col, hidden);
}
