// cpu/isa/forward.h: the forward pass through time and the streaming step, templated on the cell
// (cells/*.h): the accessor through which a cell's forward_point reads the products and writes its
// results, then the drivers (input projection, recurrence).
// Part of the one translation unit per ISA: included by cpu/isa/kernels.cpp inside
// fastrnn::<isa>::(anonymous), so it has no namespace, no include guard and no includes.

// ------------------------------------------------------------------------------------------------
// Forward pointwise: one row, one nr-block. `xp` is the row's input projection (+ biases) in
// PyTorch gate order; `tile` the recurrent product for this block, gates side by side (g*NR + j).

template <typename T>
struct FwdRow {
  const T* xp;      // [G*H]
  const T* tile;    // [G'*NR]
  const T* h_prev;  // [H]
  T* h;             // [H] state after the step (sorted row)
  T* c;             // [H] LSTM cell state, updated in place
  T* y;             // [H] output row at time t
  T* cache;         // [cw*H] or null
  T* h_n;           // [H] when this is the row's last step, else null
  T* c_n;
  T* rh;          // [H] r * h_prev, the input of the second product (reset-before GRU)
  T* z;           // [H] z between the two phases of a step (reset-before GRU)
  uint16_t* hb;   // [H] h in bfloat16, the next product's A (AMX autocast), else null
  uint16_t* rhb;  // [H] rh in bfloat16 (AMX autocast, reset-before GRU), else null
};

// The forward accessor of one vector chunk (see "Points" in cells/all.h): j the chunk's first
// unit, jt its offset within the block's tile, n its valid lanes. The cell computes in M: Vec<T>,
// or with AMX autocast AutocastVec (amx.h: the same arithmetic, cheaper sigmoid and tanh).
template <typename T>
inline Vec<T> vec_of(Vec<T> v) {
  return v;
}

template <typename T, typename M = Vec<T>>
struct FwdIo {
  using V = Vec<T>;
  static constexpr int NR = Tile<T>::NR;
  const Seq<T>& q;
  const FwdRow<T>& r;
  int64_t j;
  int jt, n, ph;

  FASTRNN_INLINE M x(int g) { return M(ld(r.xp + g * q.H + j, n)); }
  FASTRNN_INLINE M h(int g) { return M(ld(r.tile + g * NR + jt, n)); }
  FASTRNN_INLINE M h_inner(int g) {
    const V v = ld(r.tile + g * NR + jt, n);
    return M(q.a.b_hh ? v + ld(q.a.b_hh + g * q.H + j, n) : v);
  }
  FASTRNN_INLINE M h_prev() { return M(ld(r.h_prev + j, n)); }
  FASTRNN_INLINE M c_prev() { return M(ld(r.c + j, n)); }
  FASTRNN_INLINE void set_c(M c) {
    st(r.c + j, vec_of(c), n);
    if (r.c_n) st(r.c_n + j, vec_of(c), n);
  }
  FASTRNN_INLINE bool has_peep() { return q.a.peep != nullptr; }
  FASTRNN_INLINE M peep(int k) { return M(q.a.peep ? ld(q.a.peep + k * q.H + j, n) : V::zero()); }
  FASTRNN_INLINE bool caching() { return r.cache != nullptr; }
  FASTRNN_INLINE void cache(int col, M v) { st(r.cache + col * q.H + j, vec_of(v), n); }
  FASTRNN_INLINE void out(M hm) {
    const V h = vec_of(hm);
    st(r.h + j, h, n);
    st(r.y + j, h, n);
    if (r.h_n) st(r.h_n + j, h, n);
#if defined(FASTRNN_ISA_AMX)
    if constexpr (sizeof(T) == 4)
      if (r.hb) st_bf16(r.hb + j, h, n);
#endif
  }
  FASTRNN_INLINE int phase() { return ph; }
  FASTRNN_INLINE void set_rh(M vm) {
    const V v = vec_of(vm);
    st(r.rh + j, v, n);
#if defined(FASTRNN_ISA_AMX)
    if constexpr (sizeof(T) == 4)
      if (r.rhb) st_bf16(r.rhb + j, v, n);
#endif
  }
  FASTRNN_INLINE void set_z(M v) { st(r.z + j, vec_of(v), n); }
  FASTRNN_INLINE M z() { return M(ld(r.z + j, n)); }
};

template <typename C, typename T, typename M = Vec<T>>
inline void fwd_block(const Seq<T>& q, const FwdRow<T>& r, int phase, int64_t j0) {
  for_chunks<T>(j0, q.H, [&](int64_t j, int jt, int n) {
    FwdIo<T, M> io{q, r, j, jt, n, phase};
    C::forward_point(io);
  });
}

// Forward driver. The input projection runs in chunks of steps: one GEMM per chunk over exactly
// the rows still running in those steps, gathered in step order. Padded steps are never projected,
// and the projection buffer holds at most about kChunkRows rows whatever T is.

constexpr int64_t kChunkRows = 512;

template <typename T>
int64_t chunk_steps(const Seq<T>& q) {
  return imax(1, imin(q.Tn, kChunkRows / q.B));
}

// AMX autocast: h, the next h and rh in bfloat16 as the products' A tiles read them: rows
// padded to 32 (zero), row stride amx_ld(H) elements (zero past H).
inline int64_t amx_ld(int64_t H) { return ceil_div(H, 32) * 32 + 32; }
inline int64_t amx_rows(int64_t B) { return ceil_div(B, 32) * 32; }

// Scratch: xp [R, G*H] and the gathered inputs [R, I] (R = rows of the largest chunk), then the
// state: two h buffers and rh (padded rows: they are product operands), c and z; with AMX
// autocast, then the three bfloat16 buffers (64-byte aligned).
template <typename T>
size_t forward_work(const SeqArgs<T>& a) {
  Seq<T> q(a);
  const int64_t R = chunk_steps(q) * q.B;
  const int64_t bf16 = a.amx ? 3 * amx_rows(q.B) * amx_ld(q.H) / 2 + 64 : 0;
  return size_t(R * (q.GH + q.I) + q.B * (3 * padded_ld(q.H) + 2 * q.H) + bf16);
}

template <typename T>
struct FwdState {
  T* hbuf[2];  // [B, ldh] h_{s-1} and h_s, alternating
  T* rh;       // [B, ldh] r * h_{s-1} (reset-before GRU)
  T* c;        // [B, H] LSTM cell state
  T* zb;       // [B, H] z between the two halves of a reset-before GRU step
  int64_t ldh;
  uint16_t* hb[2] = {nullptr, nullptr};  // AMX autocast: hbuf in bfloat16 (see amx_ld)
  uint16_t* rhb = nullptr;
  int64_t ldhb = 0;
};

// Lays the state out in `work` and loads h0, c0 in sorted row order.
template <typename T>
FwdState<T> init_state(const Seq<T>& q, T* work) {
  const SeqArgs<T>& a = q.a;
  const int64_t B = q.B, H = q.H, ldh = padded_ld(H);
  FwdState<T> st{{work, work + B * ldh},
                 work + 2 * B * ldh,
                 work + 3 * B * ldh,
                 work + 3 * B * ldh + B * H,
                 ldh};
  for (int64_t sb = 0; sb < B; ++sb) {
    const int64_t b = q.batch_of(sb);
    if (a.h0)
      memcpy(st.hbuf[0] + sb * ldh, a.h0 + b * H, sizeof(T) * H);
    else
      memset(st.hbuf[0] + sb * ldh, 0, sizeof(T) * H);
    if (a.c0)
      memcpy(st.c + sb * H, a.c0 + b * H, sizeof(T) * H);
    else
      memset(st.c + sb * H, 0, sizeof(T) * H);
  }
#if defined(FASTRNN_ISA_AMX)
  if constexpr (sizeof(T) == 4) {
    if (a.amx) {
      const uintptr_t end = reinterpret_cast<uintptr_t>(st.zb + B * H);
      uint16_t* bf = reinterpret_cast<uint16_t*>((end + 63) / 64 * 64);
      st.ldhb = amx_ld(H);
      const int64_t size = amx_rows(B) * st.ldhb;
      memset(bf, 0, sizeof(uint16_t) * 3 * size);
      st.hb[0] = bf;
      st.hb[1] = bf + size;
      st.rhb = bf + 2 * size;
      for (int64_t sb = 0; sb < B; ++sb)
        amx_round_row(st.hbuf[0] + sb * ldh, H, st.hb[0] + sb * st.ldhb);
    }
  }
#endif
  return st;
}

// b_ih + b_hh, except b_hh of the cell's inner-bias gate `inner` (the bias rule, cells/all.h)
template <typename T>
inline T input_bias(const SeqArgs<T>& a, int64_t col, int64_t H, int inner) {
  T v = a.b_ih ? a.b_ih[col] : T(0);
  if (a.b_hh && cells::folds_hidden_bias(inner, col, H)) v += a.b_hh[col];
  return v;
}

// xp[rowstart[s - s0] + sb] = x[t(s, sb)] W_ih^T + biases for the running rows of steps [s0, s1)
template <typename T>
void project_chunk(const Seq<T>& q, int64_t s0, int64_t s1, const int64_t* rowstart, T* xg, T* xp) {
  const SeqArgs<T>& a = q.a;
  const int64_t rows = rowstart[s1 - s0], I = q.I, GH = q.GH;
  const T* src = a.x + s0 * q.B * I;  // steps are time rows when nothing is sorted or reversed
  if (a.len || a.reverse) {
    for (int64_t s = s0; s < s1; ++s)
      for (int64_t sb = 0; sb < q.active(s); ++sb) {
        const int64_t b = q.batch_of(sb), t = q.time_of(s, b);
        memcpy(xg + (rowstart[s - s0] + sb) * I, a.x + (t * q.B + b) * I, sizeof(T) * I);
      }
    src = xg;
  }
  if (a.packed.i8_ih) {  // int8 inference: the step's products (project_block), so that a
    // sequence and its steps one at a time give the same bits
    const int nt = int(imax(1, imin(a.threads, q.nb)));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t jb = 0; jb < q.nb; ++jb) project_block(q, src, rows, xp, jb);
    return;
  }
  const bool bias = a.b_ih || a.b_hh;
  const int inner = cells::inner_bias_gate(a.cell);
#if defined(FASTRNN_ISA_AMX)
  if constexpr (sizeof(T) == 4) {
    if (a.amx) {  // the bias row is the tiles' initial value (no pass over xp to fill it)
      thread_local Buffer<T> bias_row;
      bias_row.grow(size_t(imax(1, GH)));
      for (int64_t c = 0; c < GH; ++c) bias_row.data()[c] = input_bias(a, c, q.H, inner);
      amx_gemm(false, true, rows, GH, I, src, I, a.w_ih, I, T(0), xp, GH, a.threads, false,
               a.packed.amx_ih, bias ? bias_row.data() : nullptr);
      return;
    }
  }
#endif
  if (bias) {
    for (int64_t c = 0; c < GH; ++c) xp[c] = input_bias(a, c, q.H, inner);
    for (int64_t r = 1; r < rows; ++r) memcpy(xp + r * GH, xp, sizeof(T) * GH);
  }
  gemm<T>(false, true, rows, GH, I, src, I, a.w_ih, I, bias ? T(1) : T(0), xp, GH, a.threads,
          a.packed.gemm_ih);
}

// xp[r, g*H + j] = src[r] W_ih[g*H + j]^T + biases for the units of block jb, rows r < rows
// (the streaming step: x, T = 1; int8 inference: a chunk's rows, see project_chunk).
template <typename T>
void project_block(const Seq<T>& q, const T* src, int64_t rows, T* xp, int64_t jb) {
  using Tl = Tile<T>;
  constexpr int MR = Tl::MR, NR = Tl::NR;
  const SeqArgs<T>& a = q.a;
  const int64_t H = q.H, G = q.G, pstride = q.I * NR;
  const int inner = cells::inner_bias_gate(a.cell);
  alignas(64) T tile[MR * 4 * NR];
  for (int64_t r0 = 0; r0 < rows; r0 += MR) {
    const int64_t m = imin(MR, rows - r0);
    block_product_panels(
        m, q.I, [&](int64_t r) { return src + (r0 + r) * q.I; }, a.packed.fwd_ih, a.packed,
        a.packed.bf16_ih, a.packed.i8_ih, a.packed.i8_scale_ih, jb * G * pstride, pstride, int(G),
        tile, 4 * NR);
    // xp = tile + input_bias, a vector at a time (the bias rule holds per gate)
    for (int g = 0; g < G; ++g) {
      const T* b_hh =
          a.b_hh && cells::folds_hidden_bias(inner, g * H, H) ? a.b_hh + g * H : nullptr;
      const T* b_ih = a.b_ih ? a.b_ih + g * H : nullptr;
      for_chunks<T>(jb * NR, H, [&](int64_t j, int jt, int n) {
        Vec<T> bias = b_ih ? ld(b_ih + j, n) : Vec<T>::zero();
        if (b_hh) bias = bias + ld(b_hh + j, n);
        for (int64_t i = 0; i < m; ++i)
          st(xp + (r0 + i) * q.GH + g * H + j, ld(tile + i * 4 * NR + g * NR + jt, n) + bias, n);
      });
    }
  }
}

// Steps [s0, s1) of the recurrence; the input projection of (s, sb) is xp row rowstart[s-s0]+sb.
// With `project_here` (the streaming step, T = 1), xp is filled block by block in the same stage
// from x through the gate-interleaved packed W_ih, so both products of a block run on one thread.
// A step is C::kPhases stages: each one product (the first over h_{s-1} and the panels of the
// first phase's gates, the second over rh and W_hn's panels) and the pointwise of its phase.
template <typename C, typename T>
void recurrence_forward(const Seq<T>& q, const FwdState<T>& st, int64_t s0, int64_t s1, T* xp,
                        const int64_t* rowstart, bool project_here = false) {
  using Tl = Tile<T>;
  constexpr int MR = Tl::MR, NR = Tl::NR;
  const SeqArgs<T>& a = q.a;
  const int64_t B = q.B, H = q.H, ldh = st.ldh;
  constexpr int phases = C::kPhases;
  const int gp = int(q.G) - (phases - 1);  // gate panels in the first product (see C::kPhases)
  const int64_t pstride = H * NR;
  // With one or two rows a lone panel is a 2-chain dependency (latency-bound): a work item then
  // takes `per` consecutive blocks so that one product spans about four panels.
  const int per = B <= 2 ? int(imax(1, 4 / gp)) : 1;
  const int nt = recurrence_threads(q, a.threads, ceil_div(q.nb, per), project_here);

  // per thread: the products of one block for all rows, [B rounded up to MR][4 * NR] (to 32
  // with AMX: its tiles store 16 or 32 rows); a streaming step keeps its buffer (an allocation
  // per step shows at small H)
  const int64_t tile_rows = imax(ceil_div(B, MR) * MR, a.amx ? amx_rows(B) : 0);
  thread_local Buffer<T> step_tiles;
  Buffer<T> sequence_tiles;
  Buffer<T>& tile_buf = project_here ? step_tiles : sequence_tiles;
  tile_buf.grow(size_t(nt * tile_rows * 4 * NR));
  T* tiles = tile_buf.data();
  Stages::parallel(ceil_div(q.nb, per), nt, (s1 - s0) * phases, [&](int64_t stage, int64_t item) {
    T* tile = tiles + omp_get_thread_num() * tile_rows * 4 * NR;
    const int64_t jb0 = item * per, count = imin(per, q.nb - jb0);
    {
      const int64_t s = s0 + stage / phases;
      const int phase = int(stage % phases);
      const T* hp = st.hbuf[s & 1];
      T* hn = st.hbuf[(s + 1) & 1];
      const int64_t n = q.active(s);
      if (project_here && phase == 0)
        for (int64_t jb = jb0; jb < jb0 + count; ++jb) project_block(q, a.x, q.B, xp, jb);
      const T* a_src = phase == 0 ? hp : st.rh;
      const T* panels = phase == 0 ? a.packed.fwd_hh : a.packed.fwd_hn;
      const int npan = phase == 0 ? gp : 1;
      const uint16_t* half = phase == 0 ? a.packed.bf16_hh : a.packed.bf16_hn;
      const int8_t* q8 = phase == 0 ? a.packed.i8_hh : a.packed.i8_hn;
      const float* scale = phase == 0 ? a.packed.i8_scale_hh : a.packed.i8_scale_hn;
      // the pointwise of row sb of block jb, from the block's product in `tile`
      auto point = [&](int64_t jb, int64_t sb) {
        const int64_t b = q.batch_of(sb), t = q.time_of(s, b);
        const bool last = s == q.len_of(b) - 1;
        FwdRow<T> row{xp + (rowstart[s - s0] + sb) * q.GH,
                      tile + sb * 4 * NR + (jb - jb0) * npan * NR,
                      hp + sb * ldh,
                      hn + sb * ldh,
                      st.c + sb * H,
                      a.y + (t * B + b) * H,
                      a.cache ? a.cache + (t * B + b) * q.cw * H : nullptr,
                      last && a.h_n ? a.h_n + b * H : nullptr,
                      last && a.c_n ? a.c_n + b * H : nullptr,
                      st.rh + sb * ldh,
                      st.zb + sb * H,
                      st.hb[0] ? st.hb[(s + 1) & 1] + sb * st.ldhb : nullptr,
                      st.rhb ? st.rhb + sb * st.ldhb : nullptr};
#if defined(FASTRNN_ISA_AMX)
        if constexpr (sizeof(T) == 4)
          if (a.amx) return fwd_block<C, T, AutocastVec>(q, row, phase, jb * NR);
#endif
        fwd_block<C>(q, row, phase, jb * NR);
      };
#if defined(FASTRNN_ISA_AMX)
      if constexpr (sizeof(T) == 4) {
        if (a.amx) {
          const int64_t KT = ceil_div(H, kAmxK), tiles_per_block = npan * NR / 16;
          const uint16_t* b = phase == 0 ? a.packed.amx_hh : a.packed.amx_hn;
          amx_tiles(n, KT, phase == 0 ? st.hb[s & 1] : st.rhb, st.ldhb,
                    b + jb0 * tiles_per_block * KT * kAmxTile, tiles_per_block * count, tile,
                    4 * NR);
          for (int64_t jb = jb0; jb < jb0 + count; ++jb)
            for (int64_t sb = 0; sb < n; ++sb) point(jb, sb);
          return;
        }
      }
#endif
      block_product_panels(
          n, H, [&](int64_t r) { return a_src + r * ldh; }, panels, a.packed, half, q8, scale,
          jb0 * npan * pstride, pstride, int(npan * count), tile, 4 * NR);
      for (int64_t jb = jb0; jb < jb0 + count; ++jb)
        for (int64_t sb = 0; sb < n; ++sb) point(jb, sb);
    }
  });
}

template <typename C, typename T>
void forward(const SeqArgs<T>& a) {
  Seq<T> q(a);
  if (a.cache)  // padded steps' cache rows feed the weight-gradient products: they must be zero
    for (int64_t t = 0; t < q.Tn; ++t)
      for (int64_t b = 0; b < q.B; ++b)
        if (t >= q.len_of(b))
          memset(a.cache + (t * q.B + b) * q.cw * q.H, 0, sizeof(T) * q.cw * q.H);
  const int64_t S = chunk_steps(q), R = S * q.B;
  T* xp = a.work;
  T* xg = xp + R * q.GH;
  FwdState<T> st = init_state(q, xg + R * q.I);
  int64_t* rowstart = new int64_t[S + 1];
  for (int64_t s0 = 0; s0 < q.Tn; s0 += S) {
    const int64_t s1 = imin(q.Tn, s0 + S);
    rowstart[0] = 0;
    for (int64_t s = s0; s < s1; ++s) rowstart[s - s0 + 1] = rowstart[s - s0] + q.active(s);
    project_chunk(q, s0, s1, rowstart, xg, xp);
    recurrence_forward<C>(q, st, s0, s1, xp, rowstart);
  }
  delete[] rowstart;
}

// One step for streaming: the input projection happens inside the recurrence's stage (see
// recurrence_forward), so a two-thread step splits both products by hidden-unit blocks.
template <typename C, typename T>
void step(const SeqArgs<T>& a) {
  Seq<T> q(a);
  const int64_t R = chunk_steps(q) * q.B;
  FwdState<T> st = init_state(q, a.work + R * (q.GH + q.I));
  const int64_t rowstart[2] = {0, q.B};
  recurrence_forward<C>(q, st, 0, 1, a.work, rowstart, true);
}
