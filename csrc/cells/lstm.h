// cells/lstm.h: the LSTM, gates (i, f, g, o), optional peepholes p_i, p_f (they see c_prev) and
// p_o (sees c). No namespace of its own: included inside one by cells/all.h (see there); the
// value type V and its math as in cells/rnn.h.

struct Lstm {
  static constexpr Cell kCell = Cell::kLstm;
  static constexpr const char* kName = "lstm";
  static constexpr bool kCellState = true;  // a second state c besides h
  static constexpr bool kPeephole = true;   // accepts peephole weights [3*H]
  static constexpr int kGates = 4;
  // Training cache, per (step, row), in units of H: h_prev, i, f, g, o, c, c_prev.
  static constexpr int kCacheWidth = 7;
  enum CacheCol { kHPrev = 0, kI = 1, kF = 2, kG = 3, kO = 4, kC = 5, kCPrev = 6 };
  static constexpr int kPhases = 1;
  static constexpr int kInnerBiasGate = -1;
  static constexpr bool kSeparateHidden = false;
  static constexpr bool kCarry = false;

  template <typename V>
  struct Fwd {
    V i, f, g, o, c, h;
  };

  // a_*: the gate's two products plus both biases; p_*: the peepholes (read only with `peep`)
  template <typename V>
  FASTRNN_HD FASTRNN_INLINE static Fwd<V> forward(V a_i, V a_f, V a_g, V a_o, V c_prev, bool peep,
                                                  V p_i, V p_f, V p_o) {
    Fwd<V> r;
    if (peep) {
      a_i = fmadd(p_i, c_prev, a_i);
      a_f = fmadd(p_f, c_prev, a_f);
    }
    r.i = vsigmoid(a_i);
    r.f = vsigmoid(a_f);
    r.g = vtanh(a_g);
    r.c = fmadd(r.f, c_prev, r.i * r.g);
    if (peep) a_o = fmadd(p_o, r.c, a_o);
    r.o = vsigmoid(a_o);
    r.h = r.o * vtanh(r.c);
    return r;
  }

  template <typename V>
  struct Bwd {
    V da_i, da_f, da_g, da_o;  // gradients of the gates' pre-activations
    V dc_prev;
  };

  // dh: dL/dh (all paths); dc: dL/dc arriving from the next step; the rest from the cache.
  // The peephole gradients are sums over steps of da_i c_prev, da_f c_prev, da_o c (the drivers').
  template <typename V>
  FASTRNN_HD FASTRNN_INLINE static Bwd<V> backward(V dh, V dc, V i, V f, V g, V o, V c, V c_prev,
                                                   bool peep, V p_i, V p_f, V p_o) {
    const V one = one_like(dh);
    Bwd<V> r;
    const V tc = vtanh(c);
    // h = o tanh(c)
    r.da_o = dh * tc * o * (one - o);
    dc = dc + dh * o * (one - tc * tc);
    // o = sigmoid(a_o + p_o c)
    if (peep) dc = fmadd(r.da_o, p_o, dc);
    // c = f c_prev + i g
    r.da_i = dc * g * i * (one - i);
    r.da_f = dc * c_prev * f * (one - f);
    r.da_g = dc * i * (one - g * g);
    r.dc_prev = dc * f;
    // i = sigmoid(a_i + p_i c_prev), f = sigmoid(a_f + p_f c_prev)
    if (peep) {
      r.dc_prev = fmadd(r.da_i, p_i, r.dc_prev);
      r.dc_prev = fmadd(r.da_f, p_f, r.dc_prev);
    }
    return r;
  }

  // One element of a step, through a backend's accessor (see "Points" in cells/all.h).
  template <typename Io>
  FASTRNN_HD FASTRNN_INLINE static void forward_point(Io& io) {
    const auto c_prev = io.c_prev();
    const auto g =
        forward(io.x(0) + io.h(0), io.x(1) + io.h(1), io.x(2) + io.h(2), io.x(3) + io.h(3), c_prev,
                io.has_peep(), io.peep(0), io.peep(1), io.peep(2));
    io.set_c(g.c);
    if (io.caching()) {
      io.cache(kHPrev, io.h_prev());
      io.cache(kI, g.i);
      io.cache(kF, g.f);
      io.cache(kG, g.g);
      io.cache(kO, g.o);
      io.cache(kC, g.c);
      io.cache(kCPrev, c_prev);
    }
    io.out(g.h);
  }

  template <typename Io>
  FASTRNN_HD FASTRNN_INLINE static void backward_point(Io& io) {
    const auto c = io.k(kC), c_prev = io.k(kCPrev);
    const auto g = backward(io.dh(), io.dc(), io.k(kI), io.k(kF), io.k(kG), io.k(kO), c, c_prev,
                            io.has_peep(), io.peep(0), io.peep(1), io.peep(2));
    if (io.has_peep()) {  // dp_i += da_i c_prev, dp_f += da_f c_prev, dp_o += da_o c
      io.peep_grad(0, g.da_i, c_prev);
      io.peep_grad(1, g.da_f, c_prev);
      io.peep_grad(2, g.da_o, c);
    }
    io.set_dc(g.dc_prev);
    io.dgi(0, g.da_i);
    io.dgi(1, g.da_f);
    io.dgi(2, g.da_g);
    io.dgi(3, g.da_o);
  }
};
