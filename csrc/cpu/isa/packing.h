// cpu/isa/packing.h: the weights packed for this ISA's kernels (forward gate panels, backward
// panels, the large GEMM's W_ih^T, bfloat16 copies).
// Part of the one translation unit per ISA: included by cpu/isa/kernels.cpp inside
// fastrnn::<isa>::(anonymous), so it has no namespace, no include guard and no includes.

// Packing. Forward panels (jb, g): element (k, j) = W[g*H + jb*NR + j][k], zero past H, so a
// block's G gates sit side by side and one product feeds one block's pointwise.
// Backward panels jb: element (k, j) = W_hh[k][jb*NR + j].

// The gates of a step's products (see C::kPhases in cells/all.h): gates [0, first) in the first
// product, and for a two-phase cell the `second` gates after them in a product of their own.
struct GateSplit {
  int first, second;
  explicit GateSplit(Cell cell)
      : first(cells::num_gates(cell) - (cells::phases(cell) - 1)),
        second(cells::phases(cell) - 1) {}
};

template <typename T>
struct PackLayout {
  int64_t gemm_ih, fwd_ih, fwd_hh, fwd_hn, bwd_hh, bwd_hn;  // offsets
  int64_t total;
  PackLayout(Cell cell, int64_t I, int64_t H) {
    constexpr int NR = Tile<T>::NR;
    const int64_t G = cells::num_gates(cell), nb = ceil_div(H, NR);
    const GateSplit g(cell);  // a second phase's gates packed apart
    gemm_ih = 0;
    fwd_ih = gemm_ih + packed_b_size<T>(I, G * H);
    fwd_hh = fwd_ih + G * nb * I * NR;
    fwd_hn = fwd_hh + g.first * nb * H * NR;
    bwd_hh = fwd_hn + g.second * nb * H * NR;
    bwd_hn = bwd_hh + nb * g.first * H * NR;
    total = bwd_hn + nb * g.second * H * NR;
  }
};

template <typename T>
size_t packed_size(Cell cell, int64_t I, int64_t H) {
  return size_t(PackLayout<T>(cell, I, H).total);
}

// float32 -> bfloat16, rounding to nearest even; NaN stays NaN
inline uint16_t to_bf16(float f) {
  uint32_t bits;
  memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}
template <typename T>
inline T convert_to(T v, T*) {
  return v;
}
inline uint16_t convert_to(float v, uint16_t*) { return to_bf16(v); }
inline uint16_t convert_to(double v, uint16_t*) { return to_bf16(float(v)); }

// gates [g0, g0+ng) of w (rows g*H.., ld = K) as forward panels of OT (T, or bfloat16): element
// (k, j) of a panel at k * NR + j, or with `pairs` at (k/2 * NR + j) * 2 + k%2 with K rounded up
// to even (the bfloat16 dot-product layout, see ukernel_bf16_dot)
inline int64_t panel_depth(int64_t K, bool pairs) { return pairs ? (K + 1) / 2 * 2 : K; }

template <typename T, typename OT>
void pack_forward(const T* w, int64_t K, int64_t H, int g0, int ng, OT* out, bool pairs = false) {
  constexpr int NR = Tile<T>::NR;
  const int64_t nb = ceil_div(H, NR), depth = panel_depth(K, pairs);
  for (int64_t jb = 0; jb < nb; ++jb)
    for (int g = 0; g < ng; ++g) {
      OT* dst = out + (jb * ng + g) * depth * NR;
      for (int64_t k = 0; k < depth; ++k)
        for (int j = 0; j < NR; ++j) {
          const int64_t unit = jb * NR + j;
          const T v = unit < H && k < K ? w[((g0 + g) * H + unit) * K + k] : T(0);
          dst[pairs ? (k / 2 * NR + j) * 2 + k % 2 : k * NR + j] = convert_to(v, dst);
        }
    }
}

// rows [r0, r0+K) of w_hh [*, H] as backward panels
template <typename T>
void pack_backward(const T* w_hh, int64_t r0, int64_t K, int64_t H, T* out) {
  constexpr int NR = Tile<T>::NR;
  const int64_t nb = ceil_div(H, NR);
  for (int64_t jb = 0; jb < nb; ++jb) {
    T* dst = out + jb * K * NR;
    for (int64_t k = 0; k < K; ++k)
      for (int j = 0; j < NR; ++j) {
        const int64_t unit = jb * NR + j;
        dst[k * NR + j] = unit < H ? w_hh[(r0 + k) * H + unit] : T(0);
      }
  }
}

template <typename T>
void pack(Cell cell, int64_t I, int64_t H, const T* w_ih, const T* w_hh, T* out, Packed<T>* v) {
  PackLayout<T> l(cell, I, H);
  const int G = cells::num_gates(cell);
  const GateSplit g(cell);
  pack_b(w_ih, I, true, I, G * H, out + l.gemm_ih);  // W_ih^T for the input projection
  pack_forward(w_ih, I, H, 0, G, out + l.fwd_ih);
  pack_forward(w_hh, H, H, 0, g.first, out + l.fwd_hh);
  if (g.second) pack_forward(w_hh, H, H, g.first, g.second, out + l.fwd_hn);
  pack_backward(w_hh, 0, g.first * H, H, out + l.bwd_hh);
  if (g.second) pack_backward(w_hh, g.first * H, g.second * H, H, out + l.bwd_hn);
  v->gemm_ih = out + l.gemm_ih;
  v->fwd_ih = out + l.fwd_ih;
  v->fwd_hh = out + l.fwd_hh;
  v->fwd_hn = g.second ? out + l.fwd_hn : nullptr;
  v->bwd_hh = out + l.bwd_hh;
  v->bwd_hn = g.second ? out + l.bwd_hn : nullptr;
}

// The same forward panels in bfloat16: [fwd_ih | fwd_hh | fwd_hn]; on AVX-512 in the pair layout
// (see ukernel_bf16_pairs). kDot: the products may use vdpbf16ps (the avx512_bf16 table).
#if defined(FASTRNN_ISA_IS_avx512)
constexpr bool kBf16Pairs = true;
#else
constexpr bool kBf16Pairs = false;
#endif

template <typename T>
size_t packed_bf16_size(Cell cell, int64_t I, int64_t H) {
  const int64_t panels = ceil_div(H, Tile<T>::NR) * cells::num_gates(cell);
  return size_t(panels * Tile<T>::NR * (panel_depth(I, kBf16Pairs) + panel_depth(H, kBf16Pairs)));
}

template <typename T, bool kDot>
void pack_bf16(Cell cell, int64_t I, int64_t H, const T* w_ih, const T* w_hh, uint16_t* out,
               Packed<T>* v) {
  constexpr int NR = Tile<T>::NR;
  const int G = cells::num_gates(cell);
  const GateSplit g(cell);
  const int64_t nb = ceil_div(H, NR);
  uint16_t* ih = out;
  uint16_t* hh = ih + nb * G * panel_depth(I, kBf16Pairs) * NR;
  uint16_t* hn = hh + nb * g.first * panel_depth(H, kBf16Pairs) * NR;
  pack_forward(w_ih, I, H, 0, G, ih, kBf16Pairs);
  pack_forward(w_hh, H, H, 0, g.first, hh, kBf16Pairs);
  if (g.second) pack_forward(w_hh, H, H, g.first, g.second, hn, kBf16Pairs);
  v->bf16_ih = ih;
  v->bf16_hh = hh;
  v->bf16_hn = g.second ? hn : nullptr;
  v->bf16_dot = kDot;
}

// int8 forward panels from weights quantized per row (q [rows, K], row scales s): gates
// [g0, g0+ng) in pack_forward's plain layout (zero past H), and each panel's NR scales.
inline void pack_forward_i8(const int8_t* q, const float* s, int64_t K, int64_t H, int g0, int ng,
                            int8_t* out, float* sout) {
  constexpr int NR = Tile<float>::NR;
  const int64_t nb = ceil_div(H, NR);
  for (int64_t jb = 0; jb < nb; ++jb)
    for (int g = 0; g < ng; ++g) {
      int8_t* dst = out + (jb * ng + g) * K * NR;
      float* sdst = sout + (jb * ng + g) * NR;
      for (int j = 0; j < NR; ++j) {
        const int64_t unit = jb * NR + j;
        sdst[j] = unit < H ? s[(g0 + g) * H + unit] : 0.0f;
        for (int64_t k = 0; k < K; ++k)
          dst[k * NR + j] = unit < H ? q[((g0 + g) * H + unit) * K + k] : int8_t(0);
      }
    }
}

// The int8 panels: [fwd_ih | fwd_hh | fwd_hn], their scales laid out alike.
template <typename T>
size_t packed_i8_size(Cell cell, int64_t I, int64_t H, size_t* scales) {
  const int64_t panels = ceil_div(H, Tile<T>::NR) * cells::num_gates(cell);
  *scales = size_t(2 * panels * Tile<T>::NR);
  return size_t(panels * Tile<T>::NR * (I + H));
}

template <typename T>
void pack_i8(Cell cell, int64_t I, int64_t H, const int8_t* q_ih, const int8_t* q_hh,
             const float* s_ih, const float* s_hh, int8_t* out, float* scales, Packed<T>* v) {
  constexpr int NR = Tile<T>::NR;
  const int G = cells::num_gates(cell);
  const GateSplit g(cell);
  const int64_t nb = ceil_div(H, NR);
  int8_t* ih = out;
  int8_t* hh = ih + nb * G * I * NR;
  int8_t* hn = hh + nb * g.first * H * NR;
  float* sih = scales;
  float* shh = sih + nb * G * NR;
  float* shn = shh + nb * g.first * NR;
  pack_forward_i8(q_ih, s_ih, I, H, 0, G, ih, sih);
  pack_forward_i8(q_hh, s_hh, H, H, 0, g.first, hh, shh);
  if (g.second) pack_forward_i8(q_hh, s_hh, H, H, g.first, g.second, hn, shn);
  v->i8_ih = ih;
  v->i8_hh = hh;
  v->i8_hn = g.second ? hn : nullptr;
  v->i8_scale_ih = sih;
  v->i8_scale_hh = shh;
  v->i8_scale_hn = g.second ? shn : nullptr;
}

#if defined(FASTRNN_ISA_AMX)
// AMX autocast panels (see amx.h): [amx_ih | amx_hh | amx_hn] in bfloat16. amx_ih: W_ih^T as
// packed B of the input projection. amx_hh (amx_hn): per block jb of NR units, the tiles of its
// gates side by side as forward.h's tile expects them, gate p's units [jb*NR, jb*NR + NR) as
// NR / 16 column tiles.
// amx_bwd_hh: per block jb, W_hh[k][jb*NR + j] for the first phase's rows k (all G*H for a
// one-phase cell) as backward's per-step product dh = dG W_hh reads it.
struct AmxLayout {
  int64_t ih, hh, hn, bwd_hh, total;
  AmxLayout(Cell cell, int64_t I, int64_t H) {
    constexpr int NR = Tile<float>::NR;
    const int64_t G = cells::num_gates(cell), nb = ceil_div(H, NR), KT = ceil_div(H, kAmxK);
    const GateSplit g(cell);
    ih = 0;
    hh = ih + amx_b_size(I, G * H);
    hn = hh + nb * g.first * (NR / 16) * KT * kAmxTile;
    bwd_hh = hn + nb * g.second * (NR / 16) * KT * kAmxTile;
    total = bwd_hh + nb * (NR / 16) * ceil_div(G * H, kAmxK) * kAmxTile;
  }
};

template <typename T>
size_t packed_amx_size(Cell cell, int64_t I, int64_t H) {
  return size_t(AmxLayout(cell, I, H).total);
}

// gates [g0, g0+ng) of w_hh as amx_hh's blocks
inline void pack_amx_blocks(const float* w, int64_t H, int g0, int ng, uint16_t* out) {
  constexpr int NR = Tile<float>::NR;
  const int64_t nb = ceil_div(H, NR), KT = ceil_div(H, kAmxK);
  for (int64_t jb = 0; jb < nb; ++jb)
    for (int p = 0; p < ng; ++p)
      for (int half = 0; half < NR / 16; ++half) {
        const int64_t u0 = jb * NR + half * 16, valid = imax(0, imin(16, H - u0));
        const int64_t t = (jb * ng + p) * (NR / 16) + half;
        amx_pack_b(w + ((g0 + p) * H + imin(u0, H - 1)) * H, H, true, H, valid, 0, 1,
                   out + t * KT * kAmxTile);
      }
}

template <typename T>
void pack_amx(Cell cell, int64_t I, int64_t H, const T* w_ih, const T* w_hh, uint16_t* out,
              Packed<T>* v) {
  if constexpr (sizeof(T) == 4) {
    AmxLayout l(cell, I, H);
    const int G = cells::num_gates(cell);
    const GateSplit g(cell);
    amx_pack_b(w_ih, I, true, I, G * H, 0, ceil_div(G * H, 32) * 2, out + l.ih);
    pack_amx_blocks(w_hh, H, 0, g.first, out + l.hh);
    if (g.second) pack_amx_blocks(w_hh, H, g.first, g.second, out + l.hn);
    if (!g.second) {  // backward's per-step tiles: one-phase cells
      constexpr int NR = Tile<float>::NR;
      const int64_t K = G * H, KT = ceil_div(K, kAmxK);
      for (int64_t jb = 0; jb < ceil_div(H, NR); ++jb)
        amx_pack_b(w_hh + jb * NR, H, false, K, imin(NR, H - jb * NR), 0, NR / 16,
                   out + l.bwd_hh + jb * (NR / 16) * KT * kAmxTile);
    }
    v->amx_bwd_hh = g.second ? nullptr : out + l.bwd_hh;
    v->amx_ih = out + l.ih;
    v->amx_hh = out + l.hh;
    v->amx_hn = g.second ? out + l.hn : nullptr;
  }
}
#endif
