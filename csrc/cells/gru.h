// cells/gru.h: the GRU, gates (r, z, n), in PyTorch's reset-after form and in the original
// reset-before form. No namespace of its own: included inside one by cells/all.h (see there); the
// value type V and its math as in cells/rnn.h.
//
// Bias rule (both forms have b_ih and b_hh, [3H] each): every bias is folded into the input
// projection x_* = W_i* x + b_i* + b_h*, except b_hn of the reset-after form, which sits inside
// r (W_hn h_prev + b_hn) (kInnerBiasGate; see folds_hidden_bias in cells/all.h).

// PyTorch's form: r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z), n = tanh(x_n + r hn),
// h = (1 - z) n + z h_prev, with hn = W_hn h_prev + b_hn.
struct Gru {
  static constexpr Cell kCell = Cell::kGru;
  static constexpr const char* kName = "gru";
  static constexpr bool kCellState = false;  // a second state c besides h
  static constexpr bool kPeephole = false;   // accepts peephole weights [3*H]
  static constexpr int kGates = 3;
  // Training cache, per (step, row), in units of H: h_prev, r, z, n, hn (hn is needed for dr).
  static constexpr int kCacheWidth = 5;
  enum CacheCol { kHPrev = 0, kR = 1, kZ = 2, kN = 3, kHn = 4 };
  static constexpr int kPhases = 1;
  // b_hh of this gate (b_hn) is added to its recurrent product, not folded into the input
  // projection; -1 in the other cells
  static constexpr int kInnerBiasGate = 2;
  // The gate gradients on the hidden side (for dW_hh, db_hh, dh_prev) differ from the input
  // side's: n's is da_n r. Backward keeps both.
  static constexpr bool kSeparateHidden = true;
  // Part of dL/dh_prev bypasses W_hh (dh z): the backward pointwise writes it as a carry.
  static constexpr bool kCarry = true;

  template <typename V>
  struct Fwd {
    V r, z, n, h;
  };

  // x_*: input projection (with every bias but b_hn), h_r, h_z: recurrent products,
  // hn = W_hn h_prev + b_hn
  template <typename V>
  FASTRNN_HD FASTRNN_INLINE static Fwd<V> forward(V x_r, V x_z, V x_n, V h_r, V h_z, V hn,
                                                  V h_prev) {
    Fwd<V> o;
    o.r = vsigmoid(x_r + h_r);
    o.z = vsigmoid(x_z + h_z);
    o.n = vtanh(fmadd(o.r, hn, x_n));
    o.h = fmadd(o.z, h_prev - o.n, o.n);
    return o;
  }

  template <typename V>
  struct Bwd {
    V da_r, da_z;  // pre-activation gradients of r and z (both sides)
    V da_n;        // of x_n (input side)
    V dhn;         // of hn = W_hn h_prev + b_hn (hidden side of n)
    V dh_direct;   // the part of dL/dh_prev that bypasses W_hh
  };

  template <typename V>
  FASTRNN_HD FASTRNN_INLINE static Bwd<V> backward(V dh, V h_prev, V r, V z, V n, V hn) {
    const V one = one_like(dh);
    Bwd<V> o;
    // h = (1 - z) n + z h_prev
    o.dh_direct = dh * z;
    // n = tanh(x_n + r hn)
    o.da_n = dh * (one - n * n) * (one - z);
    o.dhn = o.da_n * r;
    // z = sigmoid(x_z + h_z)
    o.da_z = dh * (h_prev - n) * z * (one - z);
    // r = sigmoid(x_r + h_r)
    o.da_r = o.da_n * hn * r * (one - r);
    return o;
  }

  // One element of a step, through a backend's accessor (see "Points" in cells/all.h).
  template <typename Io>
  FASTRNN_HD FASTRNN_INLINE static void forward_point(Io& io) {
    const auto hp = io.h_prev();
    const auto hn = io.h_inner(2);  // W_hn h_prev + b_hn
    const auto g = forward(io.x(0), io.x(1), io.x(2), io.h(0), io.h(1), hn, hp);
    if (io.caching()) {
      io.cache(kHPrev, hp);
      io.cache(kR, g.r);
      io.cache(kZ, g.z);
      io.cache(kN, g.n);
      io.cache(kHn, hn);
    }
    io.out(g.h);
  }

  template <typename Io>
  FASTRNN_HD FASTRNN_INLINE static void backward_point(Io& io) {
    const auto g = backward(io.dh(), io.k(kHPrev), io.k(kR), io.k(kZ), io.k(kN), io.k(kHn));
    io.set_carry(g.dh_direct);
    io.dgi(0, g.da_r);
    io.dgi(1, g.da_z);
    io.dgi(2, g.da_n);
    io.dgh(0, g.da_r);
    io.dgh(1, g.da_z);
    io.dgh(2, g.dhn);  // hn enters as r * hn
  }
};

// The original form, a step in two phases around the product W_hn (r h_prev):
//   phase 0: r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z), rh = r h_prev
//   phase 1: n = tanh(x_n + W_hn rh), h = (1 - z) n + z h_prev      (x_n holds b_in + b_hn)
// Backward runs the same two phases in reverse: first z and n (whose gradient then flows through
// W_hn to rh), then r from drh = da_n W_hn.
struct GruResetBefore {
  static constexpr Cell kCell = Cell::kGruResetBefore;
  static constexpr const char* kName = "gru_reset_before";
  static constexpr bool kCellState = false;  // a second state c besides h
  static constexpr bool kPeephole = false;   // accepts peephole weights [3*H]
  static constexpr int kGates = 3;
  // Training cache, per (step, row), in units of H: h_prev, r, z, n, rh (rh: the input of W_hn).
  static constexpr int kCacheWidth = 5;
  enum CacheCol { kHPrev = 0, kR = 1, kZ = 2, kN = 3, kRh = 4 };
  // Two products per step: h_prev W_h(r,z)^T (gates 0..1), then rh W_hn^T (gate 2). The drivers'
  // two-phase scheme is this split: phase 0 takes gates [0, G-1), phase 1 the last gate.
  static constexpr int kPhases = 2;
  static constexpr int kInnerBiasGate = -1;
  static constexpr bool kSeparateHidden = false;
  static constexpr bool kCarry = true;

  template <typename V>
  struct Gates {
    V r, z, rh;
  };

  template <typename V>
  FASTRNN_HD FASTRNN_INLINE static Gates<V> forward_gates(V x_r, V x_z, V h_r, V h_z, V h_prev) {
    Gates<V> o;
    o.r = vsigmoid(x_r + h_r);
    o.z = vsigmoid(x_z + h_z);
    o.rh = o.r * h_prev;
    return o;
  }

  template <typename V>
  struct State {
    V n, h;
  };

  // hn = W_hn rh
  template <typename V>
  FASTRNN_HD FASTRNN_INLINE static State<V> forward_state(V x_n, V hn, V z, V h_prev) {
    State<V> o;
    o.n = vtanh(x_n + hn);
    o.h = fmadd(z, h_prev - o.n, o.n);
    return o;
  }

  template <typename V>
  struct BwdZn {
    V da_z, da_n;  // da_n is the gradient of both x_n and W_hn rh
    V dh_direct;
  };

  // first phase of the backward step: everything but r
  template <typename V>
  FASTRNN_HD FASTRNN_INLINE static BwdZn<V> backward_zn(V dh, V h_prev, V z, V n) {
    const V one = one_like(dh);
    BwdZn<V> o;
    // h = (1 - z) n + z h_prev
    o.dh_direct = dh * z;
    // z = sigmoid(x_z + h_z)
    o.da_z = dh * (h_prev - n) * z * (one - z);
    // n = tanh(x_n + W_hn rh)
    o.da_n = dh * (one - n * n) * (one - z);
    return o;
  }

  template <typename V>
  struct BwdR {
    V da_r;
    V dh_direct;  // the first phase's plus rh's share
  };

  // second phase: drh = da_n W_hn (a product of the whole row), then rh = r h_prev
  template <typename V>
  FASTRNN_HD FASTRNN_INLINE static BwdR<V> backward_r(V drh, V h_prev, V r, V dh_direct) {
    BwdR<V> o;
    // r = sigmoid(x_r + h_r)
    o.da_r = drh * h_prev * r * (one_like(drh) - r);
    o.dh_direct = fmadd(drh, r, dh_direct);
    return o;
  }
  // Phase 0: r, z from h_prev; rh and z kept for phase 1. Phase 1: n from W_hn rh (io.h(0)), h.
  template <typename Io>
  FASTRNN_HD FASTRNN_INLINE static void forward_point(Io& io) {
    const auto hp = io.h_prev();
    if (io.phase() == 0) {
      const auto g = forward_gates(io.x(0), io.x(1), io.h(0), io.h(1), hp);
      io.set_rh(g.rh);
      io.set_z(g.z);
      if (io.caching()) {
        io.cache(kHPrev, hp);
        io.cache(kR, g.r);
        io.cache(kZ, g.z);
        io.cache(kRh, g.rh);
      }
      return;
    }
    const auto g = forward_state(io.x(2), io.h(0), io.z(), hp);
    if (io.caching()) io.cache(kN, g.n);
    io.out(g.h);
  }

  // Phase 0: z and n (da_n then flows through W_hn). Phase 1: r, from drh = da_n W_hn.
  template <typename Io>
  FASTRNN_HD FASTRNN_INLINE static void backward_point(Io& io) {
    if (io.phase() == 1) {
      const auto g = backward_r(io.drh(), io.k(kHPrev), io.k(kR), io.carry());
      io.dgi(0, g.da_r);
      io.set_carry(g.dh_direct);
      return;
    }
    const auto g = backward_zn(io.dh(), io.k(kHPrev), io.k(kZ), io.k(kN));
    io.set_carry(g.dh_direct);
    io.dgi(1, g.da_z);
    io.dgi(2, g.da_n);
  }
};
