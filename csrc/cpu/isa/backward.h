// cpu/isa/backward.h: backward through time, templated on the cell (cells/*.h): the accessor
// through which a cell's backward_point reads the cache and writes the gate gradients, then the
// driver (the recurrence of dh, and the large products over all steps after it).
// Part of the one translation unit per ISA: included by cpu/isa/kernels.cpp inside
// fastrnn::<isa>::(anonymous), so it has no namespace, no include guard and no includes.

// ------------------------------------------------------------------------------------------------
// Backward pointwise: one row of step s, one nr-block. dh is the gradient reaching h_s from
// later steps and from h_n (sorted row); dy the output gradient at (t, b) or null. Writes the
// pre-activation gate gradients dgi (input side, [G*H] at (t, b)) and dgh (hidden side).

template <typename T>
struct BwdRow {
  const T* cache;  // [cw*H] at (t, b)
  const T* dy;     // [H] or null
  T* dh;           // [H] sorted row: in, gradient w.r.t. h_s
  T* dc;           // [H] sorted row: in dc_s, out dc_{s-1} (LSTM)
  T* carry;        // [H] sorted row: out, the part of dh_{s-1} that bypasses W_hh
  T* dgi;          // [G*H] at (t, b)
  T* dgh;          // [G*H] at (t, b), may alias dgi
  uint16_t* gbi;   // AMX autocast: dgi's (or with gbh, dgh's) bfloat16 copy, else null
  uint16_t* gbh;
};

template <typename T>
inline Vec<T> dh_total(const BwdRow<T>& r, int64_t j, int n) {
  Vec<T> d = ld(r.dh + j, n);
  return r.dy ? d + ld(r.dy + j, n) : d;
}

// The backward accessor of one vector chunk (see "Points" in cells/all.h); `tile` holds phase 1's
// product drh = da_n W_hn for this block (two-phase cells), else null.
template <typename T>
struct BwdIo {
  using V = Vec<T>;
  const Seq<T>& q;
  const BwdRow<T>& r;
  const T* tile;
  int64_t j;
  int jt, n, ph;

  FASTRNN_INLINE V dh() { return dh_total(r, j, n); }
  FASTRNN_INLINE V k(int col) { return ld(r.cache + col * q.H + j, n); }
  FASTRNN_INLINE V dc() { return ld(r.dc + j, n); }
  FASTRNN_INLINE void set_dc(V v) { st(r.dc + j, v, n); }
  // gate gradient g to dst, and to its bfloat16 copy where the driver keeps one (AMX autocast)
  FASTRNN_INLINE void gate_grad(T* dst, uint16_t* copy, int g, V v) {
    st(dst + g * q.H + j, v, n);
#if defined(FASTRNN_ISA_AMX)
    if constexpr (sizeof(T) == 4)
      if (copy) st_bf16(copy + g * q.H + j, v, n);
#endif
  }
  FASTRNN_INLINE void dgi(int g, V v) { gate_grad(r.dgi, r.gbi, g, v); }
  FASTRNN_INLINE void dgh(int g, V v) { gate_grad(r.dgh, r.gbh, g, v); }
  FASTRNN_INLINE V carry() { return ld(r.carry + j, n); }
  FASTRNN_INLINE void set_carry(V v) { st(r.carry + j, v, n); }
  FASTRNN_INLINE V drh() { return ld(tile + jt, n); }
  FASTRNN_INLINE bool has_peep() { return q.a.peep != nullptr; }
  FASTRNN_INLINE V peep(int k) { return q.a.peep ? ld(q.a.peep + k * q.H + j, n) : V::zero(); }
  // summed over steps into dpeep (zeroed by backward before the loop)
  FASTRNN_INLINE void peep_grad(int k, V da, V v) {
    T* d = q.a.dpeep + k * q.H + j;
    st(d, V::fmadd(da, v, ld(d, n)), n);
  }
  FASTRNN_INLINE int phase() { return ph; }
};

// Pointwise of one row and block, phase 0 (or, with `tile`, phase 1).
template <typename C, typename T>
inline void bwd_block(const Seq<T>& q, const BwdRow<T>& r, int64_t j0, const T* tile = nullptr) {
  for_chunks<T>(j0, q.H, [&](int64_t j, int jt, int n) {
    BwdIo<T> io{q, r, tile, j, jt, n, tile ? 1 : 0};
    C::backward_point(io);
  });
}

// Scratch: the gate gradients [T*B, ldg] (twice where the hidden side's differ), then dh, dc and
// the carry, [B, H] each.
template <typename T>
size_t backward_work(const SeqArgs<T>& a) {
  Seq<T> q(a);
  const int sides = cells::separate_hidden(a.cell) ? 2 : 1;
  return size_t(q.Tn * q.B * padded_ld(q.GH) * sides + 3 * q.B * q.H);
}

// A step is C::kPhases stages, as in forward but in reverse: a two-phase cell first takes
// drh = da_n W_hn (phase 1), then dh_{s-1} over the first phase's gates.
template <typename C, typename T>
void backward(const SeqArgs<T>& a) {
  using Tl = Tile<T>;
  constexpr int MR = Tl::MR, NR = Tl::NR;
  Seq<T> q(a);
  const int64_t B = q.B, H = q.H, GH = q.GH, TB = q.Tn * q.B, ldg = padded_ld(GH);
  constexpr bool two_phase = C::kPhases == 2;
  T* dgi = a.work;                                     // [T*B, ldg] gate gradients, input side
  T* dgh = C::kSeparateHidden ? dgi + TB * ldg : dgi;  // hidden side, where it differs
  T* dh = dgi + TB * ldg * (C::kSeparateHidden ? 2 : 1);
  T* dc = dh + B * H;
  T* carry = dc + B * H;
  // Every running (t, b) row of dgi/dgh is written by the pointwise; padded rows must read as zero
  // in the products after the loop.
  for (int64_t t = 0; t < q.Tn; ++t)
    for (int64_t b = 0; b < B; ++b)
      if (t >= q.len_of(b)) {
        memset(dgi + (t * B + b) * ldg, 0, sizeof(T) * GH);
        if (dgh != dgi) memset(dgh + (t * B + b) * ldg, 0, sizeof(T) * GH);
      }
  memset(carry, 0, sizeof(T) * B * H);
  if (a.dpeep) memset(a.dpeep, 0, sizeof(T) * 3 * H);  // summed over steps by the pointwise
  for (int64_t sb = 0; sb < B; ++sb) {
    const int64_t b = q.batch_of(sb);
    if (a.dh_n)
      memcpy(dh + sb * H, a.dh_n + b * H, sizeof(T) * H);
    else
      memset(dh + sb * H, 0, sizeof(T) * H);
    if (a.dc_n)
      memcpy(dc + sb * H, a.dc_n + b * H, sizeof(T) * H);
    else
      memset(dc + sb * H, 0, sizeof(T) * H);
  }
  const int per = B <= 2 ? 4 : 1;  // blocks per work item (see recurrence_forward)
  const int nt = recurrence_threads(q, a.threads, ceil_div(q.nb, per));
  const int64_t K1 = GH - (C::kPhases - 1) * H;  // depth of dh = dG W_hh (first phase's gates)
  const int64_t tile_rows = imax(ceil_div(B, MR) * MR, a.amx ? ceil_div(B, 32) * 32 : 0);
  // AMX autocast (one-phase cells): the step's product dh = dG W_hh on tiles, from a bfloat16
  // copy of dG_s that the pointwise writes in sorted row order, one buffer per step parity (a
  // stage reads step s's while it writes step s-1's)
  uint16_t* gb[2] = {nullptr, nullptr};
  int64_t ldgb = 0;
#if defined(FASTRNN_ISA_AMX)
  Buffer<uint16_t> gb_buf;
  if constexpr (sizeof(T) == 4 && C::kPhases == 1) {
    if (a.amx && a.packed.amx_bwd_hh) {
      ldgb = amx_depth(K1) + 32;
      const int64_t size = ceil_div(B, 32) * 32 * ldgb;
      gb_buf.grow(size_t(2 * size));
      memset(gb_buf.data(), 0, sizeof(uint16_t) * 2 * size);
      gb[0] = gb_buf.data();
      gb[1] = gb[0] + size;
    }
  }
#endif
  Buffer<T> tile_buf(size_t(nt * tile_rows * 4 * NR));
  T* tiles = tile_buf.data();  // per thread: a work item's products, all rows

  {
    auto row_at = [&](int64_t s, int64_t sb) {
      const int64_t b = q.batch_of(sb), t = q.time_of(s, b), at = t * B + b;
      return BwdRow<T>{a.cache + at * q.cw * H,
                       a.dy ? a.dy + at * H : nullptr,
                       dh + sb * H,
                       dc + sb * H,
                       carry + sb * H,
                       dgi + at * ldg,
                       dgh + at * ldg,
                       gb[0] && !C::kSeparateHidden ? gb[s & 1] + sb * ldgb : nullptr,
                       gb[0] && C::kSeparateHidden ? gb[s & 1] + sb * ldgb : nullptr};
    };
    auto pointwise = [&](int64_t s, int64_t jb) {
      const int64_t n = q.active(s), j0 = jb * NR;
      for (int64_t sb = 0; sb < n; ++sb) {
        BwdRow<T> r = row_at(s, sb);
        bwd_block<C>(q, r, j0);
      }
    };
    // rows [0, n) of step s: tile = (rows of src at column offset `col`) times `panels`
    // rows [0, n) of step s times the panels of blocks [jb0, jb0 + count); epilogue(sb, jb, tile)
    auto product = [&](int64_t s, int64_t jb0, int64_t count, const T* panels, int64_t K,
                       int64_t col, auto&& epilogue) {
      T* tile = tiles + omp_get_thread_num() * tile_rows * 4 * NR;
      const int64_t n = q.active(s);
      const T* src = (col == 0 && !two_phase) ? dgh : dgi;
      if (gb[0] && col == 0) {
#if defined(FASTRNN_ISA_AMX)
        if constexpr (sizeof(T) == 4) {
          const int64_t KT = ceil_div(K, kAmxK), tiles_per_block = NR / 16;
          amx_tiles(n, KT, gb[s & 1], ldgb,
                    a.packed.amx_bwd_hh + jb0 * tiles_per_block * KT * kAmxTile,
                    tiles_per_block * count, tile, 4 * NR);
        }
#endif
      } else {
        block_product<T>(
            n, K,
            [&](int64_t sb) {
              const int64_t b = q.batch_of(sb);
              return src + (q.time_of(s, b) * B + b) * ldg + col;
            },
            panels + jb0 * K * NR, K * NR, int(count), tile, 4 * NR);
      }
      for (int64_t jb = jb0; jb < jb0 + count; ++jb)
        for (int64_t sb = 0; sb < n; ++sb) epilogue(sb, jb, tile + sb * 4 * NR + (jb - jb0) * NR);
    };

    // stage 0: pointwise of the last step; then per step s: [drh = dn W_hn (reset-before GRU)],
    // dh_{s-1} = dG_s W_hh for a block followed at once by that block's pointwise of step s-1
    constexpr int per_step = C::kPhases;
    Stages::parallel(
        ceil_div(q.nb, per), nt, 1 + q.Tn * per_step, [&](int64_t stage, int64_t item) {
          const int64_t jb0 = item * per, count = imin(per, q.nb - jb0);
          if (stage == 0) {
            for (int64_t jb = jb0; jb < jb0 + count; ++jb) pointwise(q.Tn - 1, jb);
            return;
          }
          const int64_t s = q.Tn - 1 - (stage - 1) / per_step;
          if constexpr (two_phase) {
            if ((stage - 1) % per_step == 0) {
              product(s, jb0, count, a.packed.bwd_hn, H, K1,
                      [&](int64_t sb, int64_t jb, const T* t) {
                        bwd_block<C>(q, row_at(s, sb), jb * NR, t);
                      });
              return;
            }
          }
          product(s, jb0, count, a.packed.bwd_hh, K1, 0, [&](int64_t sb, int64_t jb, const T* t) {
            T* d = dh + sb * H;
            const T* cr = carry + sb * H;
            constexpr bool with_carry = C::kCarry;
            for_chunks<T>(jb * NR, H, [&](int64_t j, int jt, int nn) {
              Vec<T> v = ld(t + jt, nn);
              st(d + j, with_carry ? v + ld(cr + j, nn) : v, nn);
            });
          });
          if (s > 0)
            for (int64_t jb = jb0; jb < jb0 + count; ++jb) pointwise(s - 1, jb);
        });
  }

  // dh0, dc0 in batch order
  for (int64_t sb = 0; sb < B; ++sb) {
    const int64_t b = q.batch_of(sb);
    if (a.dh0) memcpy(a.dh0 + b * H, dh + sb * H, sizeof(T) * H);
    if (a.dc0) memcpy(a.dc0 + b * H, dc + sb * H, sizeof(T) * H);
  }
  // Large products over all steps. dW = dG^T X in T, or with AMX autocast as (X^T dG)^T: AMX
  // reads A's rows with k contiguous, and X^T is the smaller operand to transpose.
  const int th = a.threads;
#if defined(FASTRNN_ISA_AMX)
  // dG (input side) as the weight gradients' packed B, once for both when the sides are one
  Buffer<uint16_t> dg_own;
  const uint16_t* dg_pre = nullptr;
  if constexpr (sizeof(T) == 4) {
    if (a.amx && a.dw_ih && a.dw_hh && !C::kSeparateHidden && !two_phase) {
      const int64_t nt_all = ceil_div(GH, 32) * 2;
      uint16_t* tiles_out = amx_scratch<2>(size_t(amx_b_size(TB, GH)), dg_own);
      const int ntp = int(imax(1, imin(th, nt_all)));
#pragma omp parallel num_threads(ntp) if (ntp > 1)
      {
        const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        amx_pack_b(dgi, ldg, false, TB, GH, nt_all * tid / nth, nt_all * (tid + 1) / nth,
                   tiles_out);
      }
      dg_pre = tiles_out;
    }
  }
#endif
  auto weight_grad = [&](int64_t rows, int64_t cols, const T* g, const T* x, int64_t ldx, T* dw) {
#if defined(FASTRNN_ISA_AMX)
    if constexpr (sizeof(T) == 4) {
      if (a.amx) {
        const uint16_t* pre = g == dgi ? dg_pre : nullptr;
        amx_gemm(true, false, cols, rows, TB, x, ldx, g, ldg, T(0), dw, cols, th, true, pre);
        return;
      }
    }
#endif
    gemm<T>(true, false, rows, cols, TB, g, ldg, x, ldx, T(0), dw, cols, th);
  };
  if (a.dx) {
    bool done = false;
#if defined(FASTRNN_ISA_AMX)
    if constexpr (sizeof(T) == 4) {
      if (a.amx) {
        amx_gemm(false, false, TB, q.I, GH, dgi, ldg, a.w_ih, q.I, T(0), a.dx, q.I, th);
        done = true;
      }
    }
#endif
    if (!done) gemm<T>(false, false, TB, q.I, GH, dgi, ldg, a.w_ih, q.I, T(0), a.dx, q.I, th);
  }
  if (a.dw_ih) weight_grad(GH, q.I, dgi, a.x, q.I, a.dw_ih);
  if (a.dw_hh) {
    const int64_t ldk = q.cw * H;
    if constexpr (two_phase) {  // dW_hn = dn^T rh
      weight_grad(K1, H, dgi, a.cache, ldk, a.dw_hh);
      weight_grad(H, H, dgi + K1, a.cache + C::kRh * H, ldk, a.dw_hh + K1 * H);
    } else {
      weight_grad(GH, H, dgh, a.cache, ldk, a.dw_hh);
    }
  }
  auto colsum = [&](const T* g, T* out) {
    for (int64_t c = 0; c < GH; ++c) out[c] = T(0);
    for (int64_t r = 0; r < TB; ++r)
      for (int64_t c = 0; c < GH; ++c) out[c] += g[r * ldg + c];
  };
  if (a.db_ih) colsum(dgi, a.db_ih);
  if (a.db_hh) colsum(dgh, a.db_hh);
}
