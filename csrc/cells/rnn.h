// cells/rnn.h: the Elman RNN, h = act(pre), pre = W_ih x + b_ih + W_hh h_prev + b_hh,
// act = tanh or relu. No namespace of its own: included inside one by cells/all.h (see there).
//
// The pointwise math is templated on the value type V: a SIMD vector Vec<T> in the CPU kernels,
// float or double in the CUDA kernels and their host build. V's math comes from the enclosing
// namespace (cells/math.h, cpu/isa/cell_math.h).

template <bool kRelu>
struct Rnn {
  static constexpr Cell kCell = kRelu ? Cell::kRnnRelu : Cell::kRnnTanh;
  static constexpr const char* kName = kRelu ? "rnn_relu" : "rnn_tanh";  // as Python spells it
  static constexpr bool kCellState = false;  // a second state c besides h
  static constexpr bool kPeephole = false;   // accepts peephole weights [3*H]
  static constexpr int kGates = 1;
  // Training cache, per (step, row), in units of H: h_prev, h.
  static constexpr int kCacheWidth = 2;
  enum CacheCol { kHPrev = 0, kH = 1 };
  static constexpr int kPhases = 1;               // products per step (2: reset-before GRU)
  static constexpr int kInnerBiasGate = -1;       // see Gru::kInnerBiasGate
  static constexpr bool kSeparateHidden = false;  // see Gru::kSeparateHidden
  static constexpr bool kCarry = false;           // see Gru::kCarry

  // pre: the sum of both products and both biases
  template <typename V>
  FASTRNN_HD FASTRNN_INLINE static V forward(V pre) {
    return kRelu ? vrelu(pre) : vtanh(pre);
  }

  // dL/dpre from dL/dh (all paths) and h itself
  template <typename V>
  FASTRNN_HD FASTRNN_INLINE static V backward(V dh, V h) {
    // h = relu(pre): dpre = dh [h > 0];  h = tanh(pre): dpre = dh (1 - h^2)
    return kRelu ? where_pos(h, dh) : dh * (one_like(h) - h * h);
  }

  // One element of a step, through a backend's accessor (see "Points" in cells/all.h).
  template <typename Io>
  FASTRNN_HD FASTRNN_INLINE static void forward_point(Io& io) {
    const auto h = forward(io.x(0) + io.h(0));
    if (io.caching()) {
      io.cache(kHPrev, io.h_prev());
      io.cache(kH, h);
    }
    io.out(h);
  }

  template <typename Io>
  FASTRNN_HD FASTRNN_INLINE static void backward_point(Io& io) {
    io.dgi(0, backward(io.dh(), io.k(kH)));
  }
};

using RnnTanh = Rnn<false>;
using RnnRelu = Rnn<true>;
