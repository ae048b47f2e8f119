// cpu/isa/amx.h: bfloat16 products on AMX tiles (TDPBF16PS), float32 sums: the autocast mode's
// products on CPUs with AMX-BF16. Compiled into the amx ISA's translation unit only.
// Part of the one translation unit per ISA: included by cpu/isa/kernels.cpp inside
// fastrnn::<isa>::(anonymous), so it has no namespace, no include guard and no includes.
//
// Every tile is configured as 16 rows of 64 bytes:
//   A  16 rows x 32 bfloat16, row-major: rows of A with k contiguous (a row stride in elements)
//   B  16 k-pairs x 16 columns x 2 bfloat16 ("VNNI"): element (k, n) at [k/2][n][k%2]
//   C  16 x 16 float32
// TDPBF16PS adds, for each C element, the 32 products of an A row and a B column: the products
// of two bfloat16 values are exact in float32 and the sums round to float32 (denormal inputs and
// results read as zero).
//
// Packed B: the tiles of a [K, N] matrix, zero past K and N: tile (t, kt) of columns
// [16t, 16t+16) and depth [32kt, 32kt+32) at (t * KT + kt) * 512, KT = ceil(K / 32).
// Packed A: rows of ceil(K / 32) * 32 bfloat16, zero past K.

// The gate math of autocast's forward: the cells' templates computing in AutocastVec get
// Vec<float>'s arithmetic with a sigmoid and a tanh of one exponential and one division each
// (within a few ulp: tested; exactly +-1 where saturated), about half the exact ones' cost: the
// gate math is a third of an autocast LSTM forward, and its inputs already carry bfloat16's
// 2^-9 rounding. States and outputs stay float32; backward keeps the exact functions.
struct AutocastVec {
  Vec<float> v;
  AutocastVec() = default;
  AutocastVec(Vec<float> x) : v(x) {}  // NOLINT: implicit, from the accessor's loads
};
inline Vec<float> vec_of(AutocastVec x) { return x.v; }
inline AutocastVec operator+(AutocastVec a, AutocastVec b) { return a.v + b.v; }
inline AutocastVec operator-(AutocastVec a, AutocastVec b) { return a.v - b.v; }
inline AutocastVec operator*(AutocastVec a, AutocastVec b) { return a.v * b.v; }
inline AutocastVec fmadd(AutocastVec a, AutocastVec b, AutocastVec c) {
  return Vec<float>::fmadd(a.v, b.v, c.v);
}
inline AutocastVec where_pos(AutocastVec x, AutocastVec a) {
  return Vec<float>::where_pos(x.v, a.v);
}
inline AutocastVec one_like(AutocastVec) { return Vec<float>::set1(1.0f); }
inline AutocastVec vrelu(AutocastVec x) { return Vec<float>::max(Vec<float>::zero(), x.v); }
// sigmoid(x) = 1 / (1 + e) for x > 0, e / (1 + e) else, e = exp(-|x|): 1 + e rounds to 1 where
// sigmoid rounds to 1, so saturation is exact
inline AutocastVec vsigmoid(AutocastVec x) {
  using V = Vec<float>;
  const V e = vexp(V::zero() - V::abs(x.v));
  const V r = V::recip(V::set1(1.0f) + e);
  return V::select_pos(x.v, r, e * r);
}
// tanh|x| = -u / (u + 2), u = expm1(-2|x|) in (-1, 0]: no cancellation near 0, and u = -1
// exactly (a result of 1) where tanh rounds to 1
inline AutocastVec vtanh(AutocastVec x) {
  using V = Vec<float>;
  const V u = vexpm1(V::set1(-2.0f) * V::abs(x.v));
  return V::copysign((V::zero() - u) * V::recip(u + V::set1(2.0f)), x.v);
}

constexpr int kAmxK = 32;          // depth of one tile product
constexpr int kAmxTile = 16 * 32;  // bfloat16 elements of an A or B tile

inline int64_t amx_depth(int64_t K) { return ceil_div(K, kAmxK) * kAmxK; }
inline int64_t amx_b_size(int64_t K, int64_t N) { return ceil_div(N, 32) * 2 * amx_depth(K) * 16; }

// Palette 1, tiles 0-7 at 16 x 64 bytes. Loaded by every product call: another library in the
// process (oneDNN under PyTorch) may have configured this thread's tiles differently.
inline void amx_configure() {
  struct alignas(64) {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
  } cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.palette = 1;
  for (int i = 0; i < 8; ++i) {
    cfg.colsb[i] = 64;
    cfg.rows[i] = 16;
  }
  _tile_loadconfig(&cfg);
}

// float32 -> bfloat16, round to nearest even (NaN stays NaN): n values, vectors then the rest
inline void amx_round_row(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    _mm512_storeu_si512(
        out + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i)));
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(out + i, m,
                             (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

// The n lanes of v as bfloat16 at p (the epilogue's copy of h for the next step's product)
inline void st_bf16(uint16_t* p, Vec<float> v, int n) {
  const __m256i b = (__m256i)_mm512_cvtneps_pbh(v.v);
  if (n == 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), b);
  else
    _mm256_mask_storeu_epi16(p, __mmask16((1u << n) - 1), b);
}

// Packed A from rows: out[m][0 : depth] = A[m][0 : K], rows [m0, m1); zero past K.
inline void amx_pack_a(const float* a, int64_t lda, bool trans, int64_t m0, int64_t m1, int64_t K,
                       uint16_t* out) {
  const int64_t depth = amx_depth(K);
  if (!trans) {
    for (int64_t m = m0; m < m1; ++m) {
      uint16_t* dst = out + m * depth;
      amx_round_row(a + m * lda, K, dst);
      for (int64_t k = K; k < depth; ++k) dst[k] = 0;
    }
    return;
  }
  // A[m][k] = a[k][m]: 16 source rows at a time, each a contiguous run over m
  alignas(64) uint16_t run[16 * 16];
  for (int64_t mb = m0; mb < m1; mb += 16) {
    const int64_t mm = imin(16, m1 - mb);
    const __mmask16 mask = __mmask16((1u << mm) - 1);
    for (int64_t k0 = 0; k0 < depth; k0 += 16) {
      for (int kk = 0; kk < 16; ++kk) {
        const int64_t k = k0 + kk;
        const __m512 v =
            k < K ? _mm512_maskz_loadu_ps(mask, a + k * lda + mb) : _mm512_setzero_ps();
        _mm256_store_si256(reinterpret_cast<__m256i*>(run + kk * 16),
                           (__m256i)_mm512_cvtneps_pbh(v));
      }
      for (int64_t i = 0; i < mm; ++i)
        for (int kk = 0; kk < 16; ++kk) out[(mb + i) * depth + k0 + kk] = run[kk * 16 + i];
    }
  }
}

// Packed B tiles of columns [16 t0, 16 t1) from b(k, n) = B[k][n] (row-major, ldb), or with
// `trans` B[n][k] (b's rows are columns of the product: the weights W as W^T).
inline void amx_pack_b(const float* b, int64_t ldb, bool trans, int64_t K, int64_t N, int64_t t0,
                       int64_t t1, uint16_t* out) {
  const int64_t KT = ceil_div(K, kAmxK);
  if (!trans) {
    // row pairs (k, k+1) outermost: B's rows are read in order, each tile row written once
    // interleaves two rows of 16 bfloat16 (k even, k odd) into 16 pairs
    const __m512i pairs =
        _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int64_t k = 0; k < KT * kAmxK; k += 2) {
      const int64_t kt = k / kAmxK, kp = k % kAmxK / 2;
      const float* even_row = k < K ? b + k * ldb : nullptr;
      const float* odd_row = k + 1 < K ? b + (k + 1) * ldb : nullptr;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n0 = t * 16, nn = imax(0, imin(16, N - n0));
        const __mmask16 mask = __mmask16((1u << nn) - 1);
        const __m512 even =
            even_row ? _mm512_maskz_loadu_ps(mask, even_row + imin(n0, N)) : _mm512_setzero_ps();
        const __m512 odd =
            odd_row ? _mm512_maskz_loadu_ps(mask, odd_row + imin(n0, N)) : _mm512_setzero_ps();
        const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(odd, even);
        _mm512_store_si512(out + (t * KT + kt) * kAmxTile + kp * 32,
                           _mm512_permutexvar_epi16(pairs, both));
      }
    }
    return;
  }
  alignas(64) float col[kAmxK];
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t n0 = t * 16, nn = imax(0, imin(16, N - n0));
    for (int64_t kt = 0; kt < KT; ++kt) {
      uint16_t* tile = out + (t * KT + kt) * kAmxTile;
      for (int n = 0; n < 16; ++n) {
        const int64_t k0 = kt * kAmxK, kk = imax(0, imin(kAmxK, K - k0));
        uint16_t run[kAmxK];
        if (n < nn) {
          memcpy(col, b + (n0 + n) * ldb + k0, sizeof(float) * kk);
          for (int64_t k = kk; k < kAmxK; ++k) col[k] = 0.0f;
        } else {
          memset(col, 0, sizeof(col));
        }
        amx_round_row(col, kAmxK, run);
        for (int kp = 0; kp < 16; ++kp) {
          tile[kp * 32 + 2 * n] = run[2 * kp];
          tile[kp * 32 + 2 * n + 1] = run[2 * kp + 1];
        }
      }
    }
  }
}

// Accumulator tiles ta and tb (16 columns apart) start as bias's row repeated (a tile load with
// row stride 0), or from `from` (row stride so bytes), or zero. A macro: GCC's tile intrinsics
// paste the tile number into the instruction, so it must be a literal.
#define FASTRNN_AMX_INIT_PAIR(ta, tb, bias, from, so) \
  do {                                                \
    if (bias) {                                       \
      _tile_loadd(ta, (bias), 0);                     \
      _tile_loadd(tb, (bias) + 16, 0);                \
    } else if (from) {                                \
      _tile_loadd(ta, (from), (so));                  \
      _tile_loadd(tb, (from) + 16, (so));             \
    } else {                                          \
      _tile_zero(ta);                                 \
      _tile_zero(tb);                                 \
    }                                                 \
  } while (0)

// out[r][16 t + c] = sum_k A[r][k] B[k][16 t + c] for rows r < rows rounded up to 16 (32 when
// rows > 16), tiles t < nt (even): A's rows at a (lda elements apart, readable up to that row
// count), B's tiles at b (tile (t, kt) at (t * KT + kt) * 512), out's rows ldo floats apart.
//
// The accumulators start from zero, or from out (accumulate), or with every row equal to
// bias[16 t + c] (a tile load with row stride 0).
inline void amx_tiles(int64_t rows, int64_t KT, const uint16_t* a, int64_t lda, const uint16_t* b,
                      int64_t nt, float* out, int64_t ldo, bool accumulate = false,
                      const float* bias = nullptr) {
  amx_configure();
  const int64_t sa = lda * 2, so = ldo * 4;
  auto init = [&](float* o) {  // tiles 0 and 1 at column o - out
    const float* b0 = bias ? bias + (o - out) % ldo : nullptr;
    const float* from = accumulate ? o : nullptr;
    FASTRNN_AMX_INIT_PAIR(0, 1, b0, from, so);
  };
  auto init_low = [&](float* o) {  // tiles 2 and 3
    const float* b0 = bias ? bias + (o - out) % ldo : nullptr;
    const float* from = accumulate ? o : nullptr;
    FASTRNN_AMX_INIT_PAIR(2, 3, b0, from, so);
  };
  if (rows <= 16) {  // one row tile: four column tiles at a time, A loaded once per depth
    int64_t t = 0;
    for (; t + 4 <= nt; t += 4) {
      const uint16_t* bt = b + t * KT * kAmxTile;
      init(out + t * 16);
      init_low(out + t * 16 + 32);
      for (int64_t kt = 0; kt < KT; ++kt) {
        _tile_loadd(4, a + kt * kAmxK, sa);
        _tile_loadd(5, bt + kt * kAmxTile, 64);
        _tile_loadd(6, bt + (KT + kt) * kAmxTile, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 6);
        _tile_loadd(7, bt + (2 * KT + kt) * kAmxTile, 64);
        _tile_loadd(5, bt + (3 * KT + kt) * kAmxTile, 64);
        _tile_dpbf16ps(2, 4, 7);
        _tile_dpbf16ps(3, 4, 5);
      }
      _tile_stored(0, out + t * 16, so);
      _tile_stored(1, out + t * 16 + 16, so);
      _tile_stored(2, out + t * 16 + 32, so);
      _tile_stored(3, out + t * 16 + 48, so);
    }
    for (; t < nt; t += 2) {
      const uint16_t* bt = b + t * KT * kAmxTile;
      init(out + t * 16);
      for (int64_t kt = 0; kt < KT; ++kt) {
        _tile_loadd(4, a + kt * kAmxK, sa);
        _tile_loadd(5, bt + kt * kAmxTile, 64);
        _tile_loadd(6, bt + (KT + kt) * kAmxTile, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 6);
      }
      _tile_stored(0, out + t * 16, so);
      _tile_stored(1, out + t * 16 + 16, so);
    }
    return;
  }
  // two row tiles by two column tiles: each loaded tile feeds two products
  for (int64_t r0 = 0; r0 < rows; r0 += 32) {
    const uint16_t* a0 = a + r0 * lda;
    const uint16_t* a1 = a0 + 16 * lda;
    for (int64_t t = 0; t < nt; t += 2) {
      const uint16_t* bt = b + t * KT * kAmxTile;
      float* o = out + r0 * ldo + t * 16;
      init(o);
      init_low(o + 16 * ldo);
      for (int64_t kt = 0; kt < KT; ++kt) {
        _tile_loadd(4, a0 + kt * kAmxK, sa);
        _tile_loadd(6, bt + kt * kAmxTile, 64);
        _tile_loadd(7, bt + (KT + kt) * kAmxTile, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, a1 + kt * kAmxK, sa);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      _tile_stored(0, o, so);
      _tile_stored(1, o + 16, so);
      _tile_stored(2, o + 16 * ldo, so);
      _tile_stored(3, o + 16 * ldo + 16, so);
    }
  }
}

// n elements of scratch for one call: the calling thread's kept buffer number Slot (a fresh block
// of megabytes costs a page fault per 4 KiB, a few percent of a training step), or, above
// kAmxKeptBytes, `own` (freed by the caller), so that no thread keeps more than a few of those.
constexpr size_t kAmxKeptBytes = size_t(32) << 20;

template <int Slot>
inline uint16_t* amx_scratch(size_t n, Buffer<uint16_t>& own) {
  thread_local Buffer<uint16_t> kept;
  Buffer<uint16_t>& buf = n * sizeof(uint16_t) <= kAmxKeptBytes ? kept : own;
  buf.grow(n);
  return buf.data();
}

// C[M, N] = beta * C + op(A) op(B) (+ bias[n] on every row) with bfloat16 operands and float32
// sums; with `tc` the result goes to C transposed (C[n * ldc + m]). op(B) may come pre-packed
// (`bpre`, amx_pack_b's layout of the whole [K, N]). Threads split the packing, then the
// (32-row, 64-column) blocks of C, column blocks outermost.
inline void amx_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                     const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads,
                     bool tc = false, const uint16_t* bpre = nullptr, const float* bias = nullptr) {
  if (M <= 0 || N <= 0) return;
  const int64_t depth = amx_depth(K), KT = depth / kAmxK, Mp = ceil_div(M, 32) * 32;
  const int64_t NT = ceil_div(N, 32) * 2;  // column tiles, even
  Buffer<uint16_t> own_a, own_b;
  uint16_t* apack = amx_scratch<0>(size_t(Mp * depth), own_a);  // shared with the team below
  uint16_t* bpack = bpre ? nullptr : amx_scratch<1>(size_t(amx_b_size(K, N)), own_b);
  const uint16_t* bp = bpre ? bpre : bpack;
  const int64_t mblocks = Mp / 32, nblocks = ceil_div(NT, 4), tasks = mblocks * nblocks;
  const int nt = int(imax(1, imin(threads, tasks)));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    amx_pack_a(A, lda, ta, M * tid / nth, M * (tid + 1) / nth, K, apack);
    if (tid == nth - 1)  // the padding rows: finite (their sums are never stored)
      memset(apack + M * depth, 0, sizeof(uint16_t) * (Mp - M) * depth);
    if (!bpre) amx_pack_b(B, ldb, tb, K, N, NT * tid / nth, NT * (tid + 1) / nth, bpack);
#pragma omp barrier
    alignas(64) float tile[32 * 64];
    for (int64_t task = tasks * tid / nth; task < tasks * (tid + 1) / nth; ++task) {
      // column blocks outer: a block of B (64 columns) stays in L1/L2 while the rows pass
      const int64_t t0 = task / mblocks * 4, r0 = task % mblocks * 32;
      const int64_t ntl = imin(4, NT - t0), rows = imin(32, M - r0);
      const int64_t cols = imin(ntl * 16, N - t0 * 16);
      const uint16_t* at = apack + r0 * depth;
      const uint16_t* bt = bp + t0 * KT * kAmxTile;
      if (!tc && rows == 32 && cols == ntl * 16 && (beta == 0.0f || beta == 1.0f)) {
        float* c = C + r0 * ldc + t0 * 16;
        amx_tiles(32, KT, at, depth, bt, ntl, c, ldc, beta == 1.0f,
                  bias ? bias + t0 * 16 : nullptr);
        continue;
      }
      amx_tiles(rows > 16 ? 32 : 16, KT, at, depth, bt, ntl, tile, 64);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          float* c = tc ? C + (t0 * 16 + j) * ldc + r0 + i : C + (r0 + i) * ldc + t0 * 16 + j;
          const float v = tile[i * 64 + j] + (bias ? bias[t0 * 16 + j] : 0.0f);
          *c = beta == 0.0f ? v : beta * *c + v;
        }
    }
  }
}
