// fastrnn.h: conventions shared by every C++ file. Plain types only: no Python, no ISA code.
//
// Dimension letters, used in every shape comment:
//   T steps, B batch, I input features, H hidden units, G gates (1 RNN, 3 GRU, 4 LSTM).
// Weights follow PyTorch: w_ih [G*H, I], w_hh [G*H, H], b_ih [G*H], b_hh [G*H], gate order
// GRU (r, z, n), LSTM (i, f, g, o). Peepholes (LSTM only): [3*H] in order (i, f, o); i and f see
// c_{t-1}, o sees c_t (ONNX's P, which ONNX itself stores in order i, o, f).
// All arrays are dense row-major. Gradients carry a `d` prefix (dx, dh0, dw_ih).
//
// Sequences with lengths: sequence b runs steps 0..len[b]-1 (from len[b]-1 down to 0 when
// reversed); later steps are not computed, y is 0 there and h_n is the state after b's own last
// step. Internally the batch is processed in order of decreasing length, so that the rows still
// running at step s are a prefix of the state buffers and each recurrent product covers exactly
// those rows.
//
// Argument order, in every function and argument struct of the library (kernels, layers, the GPU
// path): what a call reads (sizes, options, inputs, weights) before what it writes (outputs; only
// a thread count may follow them).
//
// Who writes the outputs (one rule, CPU and GPU alike): a call writes every element of every
// output it is given, in full (no accumulation, no pre-zeroing needed), with one exception: the
// sequence outputs y and dx at padded steps (t >= len[b], only when lengths are given) need not
// be written, and a caller that passes lengths zero-fills y and dx first. An argument that
// accumulates says so in its name (the GPU path's dx_accumulate).
//
// Errors: C++ throws std::invalid_argument (pybind11 raises ValueError); nothing exits or aborts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

namespace fastrnn {

// Storage aligned to 64 bytes (a cache line, one AVX-512 vector) and left uninitialized on resize.
// Panels, tiles and state rows are read with full-width vector loads; from malloc's 16-byte
// alignment three loads in four straddle two cache lines (measured: up to 30% on one-row
// recurrences whose weights stream from L2).
template <typename T>
struct CacheAligned {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheAligned() = default;
  template <typename U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) noexcept { ::operator delete(p, kAlign); }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  void construct(U* p) {
    ::new (static_cast<void*>(p)) U;  // default-initialized: no zero fill
  }
  template <typename U>
  bool operator==(const CacheAligned<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const CacheAligned<U>&) const {
    return false;
  }
};

template <typename T>
using aligned_vector = std::vector<T, CacheAligned<T>>;

// The cells. Each is defined in its own header, csrc/cells/<cell>.h (traits, cache layout, bias
// rule, pointwise forward and backward); cells/all.h maps this enum to those types in one switch.
enum class Cell : int { kRnnTanh = 0, kRnnRelu, kGru, kGruResetBefore, kLstm };
constexpr int kNumCells = 5;

// Register tile of an ISA's matrix kernel: mr rows by nr columns. nr is also the width of the
// hidden-unit blocks that threads own in the recurrence.
struct Tiling {
  int mr;
  int nr;
};

// Pre-packed copies of a layer's weights, in the layout of one ISA (see isa/gemm.h).
// gemm_ih: W_ih^T as the large GEMM's pre-packed right operand.
// fwd_*: column panels of W^T with the G gates of each nr-wide block of hidden units side by side;
// for the reset-before GRU, fwd_hh holds (r, z) only and fwd_hn holds n.
// bwd_hh: W_hh itself as the right operand of dh_prev = dG[B, G*H] W_hh (K = G*H, or 2H for the
// reset-before GRU, whose n rows are in bwd_hn).
template <typename T>
struct Packed {
  const T* gemm_ih = nullptr;  // W_ih^T in the blocked layout of the large GEMM (input projection)
  const T* fwd_ih = nullptr;
  const T* fwd_hh = nullptr;
  const T* fwd_hn = nullptr;
  const T* bwd_hh = nullptr;
  const T* bwd_hn = nullptr;
  // Reduced-precision inference (float32 layers only): fwd_ih, fwd_hh, fwd_hn as bfloat16, the
  // products still accumulating in float32. Null unless the layer opted in.
  const uint16_t* bf16_ih = nullptr;
  const uint16_t* bf16_hh = nullptr;
  const uint16_t* bf16_hn = nullptr;
  bool bf16_dot = false;  // the products may use vdpbf16ps (the avx512_bf16 table)
  // int8 inference (float32 layers only): fwd_ih, fwd_hh, fwd_hn quantized per output row
  // (symmetric, scale = max|w_row| / 127), in the same panel layout; i8_scale_*: the rows' scales,
  // NR per panel. The products widen int8 to float32 on load, sum in float32 and multiply the sums
  // by the scales. Null unless the layer opted in.
  const int8_t* i8_ih = nullptr;
  const int8_t* i8_hh = nullptr;
  const int8_t* i8_hn = nullptr;
  const float* i8_scale_ih = nullptr;
  const float* i8_scale_hh = nullptr;
  const float* i8_scale_hn = nullptr;
  // Autocast bfloat16 on AMX (float32 layers only): W_ih^T and the recurrence's gate panels as
  // AMX tiles (cpu/isa/amx.h). Null unless the call runs in that mode.
  const uint16_t* amx_ih = nullptr;
  const uint16_t* amx_hh = nullptr;
  const uint16_t* amx_hn = nullptr;
  const uint16_t* amx_bwd_hh = nullptr;  // W_hh's first-phase rows as backward's per-step B
};

// Everything one sequence kernel call sees, in the order of every call in the library (see
// "Argument order" above): sizes, inputs, weights, saved buffers, outputs. Pointers that a call
// does not use are null.
template <typename T>
struct SeqArgs {
  // sizes
  Cell cell = Cell::kLstm;
  int64_t steps = 0, batch = 0, input = 0, hidden = 0;
  bool reverse = false;
  int threads = 1;
  // Autocast bfloat16 (float32 only, on a table with AMX): the products take bfloat16 operands and
  // sum in float32 on AMX tiles (forward: packed.amx_*; backward: the products over all steps);
  // gate math, states and outputs stay float32.
  bool amx = false;
  // inputs
  const T* x = nullptr;             // [T, B, I]
  const T* h0 = nullptr;            // [B, H] or null (zeros)
  const T* c0 = nullptr;            // [B, H] or null (zeros)
  const T* dy = nullptr;            // [T, B, H] or null (zeros)
  const T* dh_n = nullptr;          // [B, H] or null
  const T* dc_n = nullptr;          // [B, H] or null
  const int64_t* len = nullptr;     // [B] steps of each sequence, all in [1, T]
  const int64_t* order = nullptr;   // [B] batch rows sorted by decreasing length (stable)
  const int64_t* active = nullptr;  // [T] number of sequences still running at step s
  // weights
  const T* w_ih = nullptr;
  const T* w_hh = nullptr;
  const T* b_ih = nullptr;  // null: no bias
  const T* b_hh = nullptr;
  const T* peep = nullptr;  // null: no peepholes
  Packed<T> packed;
  // saved for backward: [T, B, cache_width * H], zero where t >= len[b]; null in inference
  T* cache = nullptr;
  T* work = nullptr;  // scratch of work_size() elements
  // forward outputs (y: see "Who writes the outputs")
  T* y = nullptr;    // [T, B, H]
  T* h_n = nullptr;  // [B, H]
  T* c_n = nullptr;  // [B, H] (LSTM)
  // backward outputs, written in full
  T* dx = nullptr;     // [T, B, I]
  T* dh0 = nullptr;    // [B, H]
  T* dc0 = nullptr;    // [B, H]
  T* dw_ih = nullptr;  // [G*H, I]
  T* dw_hh = nullptr;  // [G*H, H]
  T* db_ih = nullptr;  // [G*H]
  T* db_hh = nullptr;  // [G*H]
  T* dpeep = nullptr;  // [3*H]
};

// One instruction set's kernels for one dtype. Filled by fastrnn::<isa>::table().
template <typename T>
struct Kernels {
  Tiling tiling;
  // Packed weights: size in elements, then fill `out` (which has that size).
  size_t (*packed_size)(Cell cell, int64_t input, int64_t hidden);
  void (*pack)(Cell cell, int64_t input, int64_t hidden, const T* w_ih, const T* w_hh, T* out,
               Packed<T>* views);
  // The bfloat16 panels (null for float64): size in uint16 elements, then fill.
  size_t (*packed_bf16_size)(Cell cell, int64_t input, int64_t hidden);
  void (*pack_bf16)(Cell cell, int64_t input, int64_t hidden, const T* w_ih, const T* w_hh,
                    uint16_t* out, Packed<T>* views);
  // The int8 panels (null for float64) from weights quantized per row (q_*, row scales s_*): size
  // in int8 elements (and the panel scales' in floats), then fill.
  size_t (*packed_i8_size)(Cell cell, int64_t input, int64_t hidden, size_t* scales);
  void (*pack_i8)(Cell cell, int64_t input, int64_t hidden, const int8_t* q_ih, const int8_t* q_hh,
                  const float* s_ih, const float* s_hh, int8_t* out, float* scales,
                  Packed<T>* views);
  // Autocast bfloat16 on AMX tiles (null where the ISA has no AMX): the tile panels' size in
  // uint16 elements, then fill; and the GEMM of `gemm` below with bfloat16 operands.
  size_t (*packed_amx_size)(Cell cell, int64_t input, int64_t hidden);
  void (*pack_amx)(Cell cell, int64_t input, int64_t hidden, const T* w_ih, const T* w_hh,
                   uint16_t* out, Packed<T>* views);
  void (*gemm_bf16)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a,
                    int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, int threads);
  // Scratch sizes in elements.
  size_t (*forward_work)(const SeqArgs<T>& a);
  size_t (*backward_work)(const SeqArgs<T>& a);
  void (*forward)(const SeqArgs<T>& a);
  void (*backward)(const SeqArgs<T>& a);
  // One streaming step without cache: y <- h_1 [B, H], h0 -> state, x [B, I]; c_n updated from c0.
  void (*step)(const SeqArgs<T>& a);
  // C[M, N] = beta * C + op(A) op(B), op(X) = X or X^T; beta 0 ignores C's contents.
  void (*gemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc, int threads);
  // Elementwise math, exposed for tests of the vectorized functions.
  void (*math)(int which, const T* x, T* y, int64_t n);
  // Reads x once with vector loads split over threads (benchmarks' weight-streaming floor).
  T (*stream_read)(const T* x, int64_t n, int threads);
};

struct KernelTable {
  const char* name;
  Kernels<float> f32;
  Kernels<double> f64;
};

}  // namespace fastrnn
