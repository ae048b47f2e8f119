// layer.h: one layer in one direction: owned weights, their packed copies, and the sequence
// forward/backward and streaming step over caller-allocated outputs. No Python here.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cell_names.h"
#include "cells/cells.h"
#include "fastrnn.h"
#include "lengths_plan.h"

namespace fastrnn {

// Large scratch (training caches, backward work) comes from a small process-wide pool of recently
// released blocks. A fresh block of tens of megabytes comes from mmap: one page fault per 4 KiB
// page, each zeroed by the kernel (about 8% of an LSTM training step at B=64, H=512, measured);
// a recycled block is already mapped. The pool keeps at most a few blocks (see layer.cpp); values
// are uninitialized either way.
void* scratch_acquire(size_t& bytes);  // bytes: asked for in, the block's capacity out
void scratch_release(void* p, size_t bytes) noexcept;

template <typename T>
class Scratch {
 public:
  Scratch() = default;
  explicit Scratch(size_t n) : bytes_(n * sizeof(T)) {
    p_ = n ? static_cast<T*>(scratch_acquire(bytes_)) : nullptr;
  }
  Scratch(Scratch&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
  Scratch& operator=(Scratch&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    if (p_) scratch_release(p_, bytes_);
  }
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
  size_t bytes_ = 0;
};

// What a training forward keeps for backward.
template <typename T>
struct Context {
  Cell cell;
  int64_t steps, batch, input, hidden;
  bool reverse;
  Scratch<T> x;                             // [T, B, I] copy of the input (for dW_ih)
  Scratch<T> cache;                         // [T, B, cache_width * H], zero at padded steps
  std::shared_ptr<const LengthsPlan> plan;  // the forward's, or null: every sequence runs all T
  bool amx = false;  // the forward ran in autocast bfloat16 on AMX: so do backward's products
  size_t bytes_per_step() const { return sizeof(T) * batch * hidden * cache_width(cell); }
};

// The weights packed for one ISA's kernels (and, in bfloat16 inference, their bfloat16 panels).
// Immutable once made: a call holds the one it started with, so a concurrent set_isa or set_bf16
// makes a new one for later calls and never changes the panels under a running kernel.
template <typename T>
struct PackedWeights {
  const Kernels<T>* kernels;
  bool bf16, i8, amx;
  aligned_vector<T> panels;
  aligned_vector<uint16_t> panels_bf16;
  aligned_vector<uint16_t> panels_amx;
  aligned_vector<int8_t> panels_i8;
  aligned_vector<float> scales_i8;
  Packed<T> views;
};

template <typename T>
class Layer {
 public:
  Layer(Cell cell, int64_t input, int64_t hidden, const T* w_ih, const T* w_hh, const T* b_ih,
        const T* b_hh, const T* peephole);

  Cell cell() const { return cell_; }
  int64_t input_size() const { return input_; }
  int64_t hidden_size() const { return hidden_; }
  bool has_bias() const { return !b_ih_.empty(); }
  bool has_peephole() const { return !peep_.empty(); }

  // Reduced-precision inference: the step-by-step products read bfloat16 copies of W_ih and W_hh
  // (float32 accumulation and state). Training forwards and backward always use float32.
  void set_bf16(bool on);
  bool bf16() const { return bf16_.load(); }
  // int8 inference: the same products read W_ih and W_hh quantized per output row (symmetric,
  // scale = max|row| / 127), widened to float32 on load, the sums multiplied by the row scales;
  // the sequence's input projection too, so that a sequence and its steps give the same bits.
  // Takes precedence over bf16. Training forwards and backward use float32.
  void set_i8(bool on);
  bool i8() const { return i8_.load(); }

  // y [T, B, H] and h_n [B, H] (c_n for LSTM) are written as fastrnn.h's rule says: in full,
  // except y at padded steps, which a caller that passes lengths zero-fills. plan: made for
  // (batch, steps), or null when every sequence runs all steps.
  // autocast: products may take bfloat16 operands (float32 sums, gates and state): on AMX tiles
  // where the ISA has them (training too; backward then follows), else inference reads the
  // bfloat16 weight panels and training stays float32.
  // Returns the context when training, else null.
  std::unique_ptr<Context<T>> forward(int64_t steps, int64_t batch, const T* x, const T* h0,
                                      const T* c0, std::shared_ptr<const LengthsPlan> plan,
                                      bool reverse, bool training, bool autocast, T* y, T* h_n,
                                      T* c_n) const;
  // Every gradient output is written in full (fastrnn.h's rule); dc0/dpeep may be null.
  void backward(const Context<T>& ctx, const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0,
                T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dpeep) const;
  // autocast: with AMX, the sequence forward's path for one step; else the step reads the
  // bfloat16 weight panels (as set_bf16 does).
  void step(int64_t batch, const T* x, const T* h, const T* c, bool autocast, T* h1, T* c1) const;

 private:
  // Arguments common to every call; `hold` keeps the packed weights they point into alive.
  // bf16: the layer's setting, read once per call; use_bf16: this call reads bfloat16 panels.
  // i8: the same for int8; use_reduced: this call reads the reduced-precision panels; amx: this
  // call runs autocast's products on AMX tiles (k has them).
  SeqArgs<T> base_args(const Kernels<T>& k, bool bf16, bool i8, bool use_reduced,
                       std::shared_ptr<const PackedWeights<T>>& hold, bool amx = false) const;
  std::shared_ptr<const PackedWeights<T>> packed(const Kernels<T>& k, bool bf16, bool i8,
                                                 bool amx = false) const;

  Cell cell_;
  int64_t input_, hidden_;
  std::vector<T> w_ih_, w_hh_, b_ih_, b_hh_, peep_;
  std::atomic<bool> bf16_{false};
  std::atomic<bool> i8_{false};
  mutable std::mutex pack_mutex_;
  mutable std::shared_ptr<const PackedWeights<T>> packed_;  // the latest, under pack_mutex_
};

extern template class Layer<float>;
extern template class Layer<double>;

}  // namespace fastrnn
