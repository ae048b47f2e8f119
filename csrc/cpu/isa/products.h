// cpu/isa/products.h: the recurrence's small products: rows of A times gate panels, in T or
// (reduced-precision inference) bfloat16.
// Part of the one translation unit per ISA: included by cpu/isa/kernels.cpp inside
// fastrnn::<isa>::(anonymous), so it has no namespace, no include guard and no includes.

// out[r][0 : npan*NR] = A[r][0:K] times npan panels (K x NR each, pstride apart), rows r < n
// given by a_row(r). With more than one register tile of rows, k runs in chunks that keep a chunk
// of the panels in L1 while every row tile uses it; the tile carries the partial sums, so each
// element is still one chain of fused multiply-adds in k order, bitwise as without blocking.
template <typename T, typename BT, typename RowPtr>
void block_product(int64_t n, int64_t K, RowPtr&& a_row, const BT* panels, int64_t pstride,
                   int npan, T* out, int64_t ldo) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  constexpr int64_t kL1Bytes = 32 * 1024;
  const int64_t kc =
      n > MR ? imax(16, kL1Bytes / (npan * NR * int64_t(sizeof(BT))) / 8 * 8) : imax(K, 1);
  const T* arow[MR];
  for (int64_t k0 = 0; k0 < K; k0 += kc) {
    const int64_t kk = imin(kc, K - k0);
    for (int64_t r0 = 0; r0 < n; r0 += MR) {
      const int m = int(imin(MR, n - r0));
      for (int i = 0; i < m; ++i) arow[i] = a_row(r0 + i) + k0;
      matmul_tile<T>(m, kk, arow, 1, panels + k0 * NR, pstride, npan, out + r0 * ldo, ldo, k0 > 0);
    }
  }
}

#if defined(FASTRNN_ISA_IS_avx512)
// block_product over bfloat16 panels in the pair layout (see ukernel_bf16_pairs). With `dot` the
// n rows of A are rounded to bfloat16 once per call and multiplied with vdpbf16ps at one or two
// rows (where it is faster on the CPUs measured) and with FMAs giving the same bits at more rows
// (see Bf16Pair); otherwise they stay float32 (copied with a zero partner only when K is odd).
// pstride: the panels' stride in the pair layout (K rounded up to even, times NR).
template <typename RowPtr>
void block_product_bf16_pairs(int64_t n, int64_t K, RowPtr&& a_row, const uint16_t* panels,
                              int64_t pstride, int npan, float* out, int64_t ldo, bool dot) {
  constexpr int MR = Tile<float>::MR, NR = Tile<float>::NR;
  const int64_t K2 = (K + 1) / 2;
  thread_local Buffer<float> rows;  // [n][2 * K2]: bfloat16 pairs (dot) or padded floats
  const bool copy = dot || K % 2;
  if (copy) {
    rows.grow(size_t(n * 2 * K2));
    for (int64_t r = 0; r < n; ++r) {
      float* dst = rows.data() + r * 2 * K2;
      if (dot) {
        row_to_bf16_pairs(a_row(r), K, reinterpret_cast<uint16_t*>(dst));
      } else {
        memcpy(dst, a_row(r), sizeof(float) * K);
        dst[K] = 0.0f;
      }
    }
  }
  auto row = [&](int64_t r) { return copy ? rows.data() + r * 2 * K2 : a_row(r); };
  constexpr int64_t kL1Bytes = 32 * 1024;
  const int64_t kc2 = n > MR ? imax(8, kL1Bytes / (npan * NR * 4) / 8 * 8) : K2;
  for (int64_t k0 = 0; k0 < K2; k0 += kc2) {
    const int64_t kk = imin(kc2, K2 - k0);
    for (int64_t r0 = 0; r0 < n; r0 += MR) {
      const int m = int(imin(MR, n - r0));
      const uint16_t* b = panels + k0 * 2 * NR;
      float* tile = out + r0 * ldo;
      if (dot && n <= 2) {
        const uint32_t* arow[MR];
        for (int i = 0; i < m; ++i) arow[i] = reinterpret_cast<const uint32_t*>(row(r0 + i)) + k0;
        matmul_tile_bf16_pairs(m, kk, arow, b, pstride, npan, tile, ldo, k0 > 0);
      } else if (dot) {
        Bf16DotMode same_as_vdpbf16ps;
        const Bf16Pair* arow[MR];
        for (int i = 0; i < m; ++i) arow[i] = reinterpret_cast<const Bf16Pair*>(row(r0 + i)) + k0;
        matmul_tile_bf16_pairs(m, kk, arow, b, pstride, npan, tile, ldo, k0 > 0);
      } else {
        const float* arow[MR];
        for (int i = 0; i < m; ++i) arow[i] = row(r0 + i) + 2 * k0;
        matmul_tile_bf16_pairs(m, kk, arow, b, pstride, npan, tile, ldo, k0 > 0);
      }
    }
  }
}
#endif

// The same over forward panels in T, or their int8 or bfloat16 copy where the layer opted in
// (float32). int8: widened on load in the T layout, the sums then multiplied by the panels' row
// scales (`scale`, NR per panel). bfloat16: widened on load, or on AVX-512 in the pair layout.
// offset and pstride count elements of the T layout (K * NR per panel).
template <typename T, typename RowPtr>
void block_product_panels(int64_t n, int64_t K, RowPtr&& a_row, const T* full,
                          const Packed<T>& packed, const uint16_t* half, const int8_t* q8,
                          const float* scale, int64_t offset, int64_t pstride, int npan, T* out,
                          int64_t ldo) {
  if constexpr (sizeof(T) == 4) {
    if (q8) {
      using V = Vec<T>;
      constexpr int NR = Tile<T>::NR, W = Tile<T>::W;
      block_product<T>(n, K, a_row, q8 + offset, pstride, npan, out, ldo);
      const float* s = scale + offset / pstride * NR;
      for (int64_t r = 0; r < n; ++r)
        for (int c = 0; c < npan * NR; c += W)
          (V::loadu(out + r * ldo + c) * V::loadu(s + c)).storeu(out + r * ldo + c);
      return;
    }
#if defined(FASTRNN_ISA_IS_avx512)
    if (half) {
      const int64_t pair_stride = (K + 1) / 2 * 2 * Tile<T>::NR;
      block_product_bf16_pairs(n, K, a_row, half + offset / pstride * pair_stride, pair_stride,
                               npan, out, ldo, packed.bf16_dot);
      return;
    }
#else
    if (half) {
      block_product<T>(n, K, a_row, half + offset, pstride, npan, out, ldo);
      return;
    }
#endif
  }
  block_product<T>(n, K, a_row, full + offset, pstride, npan, out, ldo);
}
