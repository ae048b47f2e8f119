// vec.h: one SIMD register type per (ISA, dtype), and the exp/sigmoid/tanh built on it.
// Included only by sources compiled once per ISA, inside namespace fastrnn::FASTRNN_ISA_NS; it
// must not pull in inline code from other headers (no <cmath>, no <algorithm>): a shared inline
// function compiled with AVX-512 flags could be merged into the scalar build by the linker.
//
// Vec<T>: W lanes; loadu/storeu (Vec<float>::loadu also widens W bfloat16s), load_n/store_n (first
// n lanes, rest zero / untouched), set1, arithmetic, recip(a) = 1/a (float32: estimate + two Newton
// steps, rounded as a division; exact in float64), fmadd(a, b, c) = a*b + c, max(a, b) = a > b ? a
// : b and min(a, b) = a < b ? a : b (so a NaN in b comes through, as with the x86 instructions).
// Vec<float>::loadu(const int8_t*) widens W int8s (exactly), for the int8 inference panels.
#pragma once

#include <stdint.h>
#include <string.h>
#if !defined(FASTRNN_ISA_IS_scalar)
#include <immintrin.h>
#endif

template <typename T>
struct Vec;

#if defined(FASTRNN_ISA_IS_avx512)

template <>
struct Vec<float> {
  static constexpr int W = 16;
  __m512 v;
  static Vec loadu(const float* p) { return {_mm512_loadu_ps(p)}; }
  // 16 bfloat16 values widened to float32 (a bfloat16 is the top half of a float32)
  static Vec loadu(const uint16_t* p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
  }
  // 16 int8 values widened to float32 (exactly)
  static Vec loadu(const int8_t* p) {
    return {_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p)))};
  }
  static Vec load_n(const float* p, int n) { return {_mm512_maskz_loadu_ps(mask(n), p)}; }
  void storeu(float* p) const { _mm512_storeu_ps(p, v); }
  void store_n(float* p, int n) const { _mm512_mask_storeu_ps(p, mask(n), v); }
  static Vec set1(float x) { return {_mm512_set1_ps(x)}; }
  static Vec zero() { return {_mm512_setzero_ps()}; }
  static __mmask16 mask(int n) { return (__mmask16)((1u << n) - 1u); }
  friend Vec operator+(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend Vec operator-(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm512_div_ps(a.v, b.v)}; }
  // 1/a: estimate, then two Newton steps r += r (1 - a r) with the residual exact in an FMA; the
  // second is Markstein's correction, which rounds like a division (a fraction of its cost). One
  // step of the form r (2 - a r) always lands below 1/a: 0.99999994 for 1/1, a leaking gate.
  static Vec recip(Vec a) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 r = _mm512_rcp14_ps(a.v);
    r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(a.v, r, one), r);
    return {_mm512_fmadd_ps(r, _mm512_fnmadd_ps(a.v, r, one), r)};
  }
  static Vec fmadd(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  static Vec max(Vec a, Vec b) { return {_mm512_max_ps(a.v, b.v)}; }
  static Vec min(Vec a, Vec b) { return {_mm512_min_ps(a.v, b.v)}; }
  // a where x > 0, else 0
  static Vec where_pos(Vec x, Vec a) {
    return {_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x.v, _mm512_setzero_ps(), _CMP_GT_OQ), a.v)};
  }
  static Vec select_pos(Vec x, Vec a, Vec b) {
    return {
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x.v, _mm512_setzero_ps(), _CMP_GT_OQ), b.v, a.v)};
  }
  static Vec abs(Vec a) { return {_mm512_abs_ps(a.v)}; }
  // magnitude of a with the sign of s
  static Vec copysign(Vec a, Vec s) {
    const __m512i sign = _mm512_set1_epi32(int32_t(0x80000000u));
    __m512i r = _mm512_or_si512(_mm512_andnot_si512(sign, _mm512_castps_si512(a.v)),
                                _mm512_and_si512(sign, _mm512_castps_si512(s.v)));
    return {_mm512_castsi512_ps(r)};
  }
  // 2^k for integral k in the normal range, k held as float + magic (see exp_parts)
  static Vec pow2_from_magic(Vec t) {
    return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(t.v), 23))};
  }
};

template <>
struct Vec<double> {
  static constexpr int W = 8;
  __m512d v;
  static Vec loadu(const double* p) { return {_mm512_loadu_pd(p)}; }
  static Vec load_n(const double* p, int n) { return {_mm512_maskz_loadu_pd(mask(n), p)}; }
  void storeu(double* p) const { _mm512_storeu_pd(p, v); }
  void store_n(double* p, int n) const { _mm512_mask_storeu_pd(p, mask(n), v); }
  static Vec set1(double x) { return {_mm512_set1_pd(x)}; }
  static Vec zero() { return {_mm512_setzero_pd()}; }
  static __mmask8 mask(int n) { return (__mmask8)((1u << n) - 1u); }
  friend Vec operator+(Vec a, Vec b) { return {_mm512_add_pd(a.v, b.v)}; }
  friend Vec operator-(Vec a, Vec b) { return {_mm512_sub_pd(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm512_mul_pd(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm512_div_pd(a.v, b.v)}; }
  static Vec recip(Vec a) { return {_mm512_div_pd(_mm512_set1_pd(1.0), a.v)}; }
  static Vec fmadd(Vec a, Vec b, Vec c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
  static Vec max(Vec a, Vec b) { return {_mm512_max_pd(a.v, b.v)}; }
  static Vec min(Vec a, Vec b) { return {_mm512_min_pd(a.v, b.v)}; }
  static Vec where_pos(Vec x, Vec a) {
    return {_mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x.v, _mm512_setzero_pd(), _CMP_GT_OQ), a.v)};
  }
  static Vec select_pos(Vec x, Vec a, Vec b) {
    return {
        _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x.v, _mm512_setzero_pd(), _CMP_GT_OQ), b.v, a.v)};
  }
  static Vec abs(Vec a) { return {_mm512_abs_pd(a.v)}; }
  static Vec copysign(Vec a, Vec s) {
    const __m512i sign = _mm512_set1_epi64(int64_t(0x8000000000000000ull));
    __m512i r = _mm512_or_si512(_mm512_andnot_si512(sign, _mm512_castpd_si512(a.v)),
                                _mm512_and_si512(sign, _mm512_castpd_si512(s.v)));
    return {_mm512_castsi512_pd(r)};
  }
  static Vec pow2_from_magic(Vec t) {
    return {_mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(t.v), 52))};
  }
};

#elif defined(FASTRNN_ISA_IS_avx2)

template <>
struct Vec<float> {
  static constexpr int W = 8;
  __m256 v;
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec loadu(const float* p) { return {_mm256_loadu_ps(p)}; }
  static Vec loadu(const uint16_t* p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(w, 16))};
  }
  static Vec loadu(const int8_t* p) {  // 8 int8 values widened to float32 (exactly)
    return {_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)))};
  }
  static Vec load_n(const float* p, int n) { return {_mm256_maskload_ps(p, mask(n))}; }
  void storeu(float* p) const { _mm256_storeu_ps(p, v); }
  void store_n(float* p, int n) const { _mm256_maskstore_ps(p, mask(n), v); }
  static Vec set1(float x) { return {_mm256_set1_ps(x)}; }
  static Vec zero() { return {_mm256_setzero_ps()}; }
  friend Vec operator+(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend Vec operator-(Vec a, Vec b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm256_div_ps(a.v, b.v)}; }
  // 1/a: as for AVX-512 (the 12-bit estimate is within one ulp after the first step)
  static Vec recip(Vec a) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 r = _mm256_rcp_ps(a.v);
    r = _mm256_fmadd_ps(r, _mm256_fnmadd_ps(a.v, r, one), r);
    return {_mm256_fmadd_ps(r, _mm256_fnmadd_ps(a.v, r, one), r)};
  }
  static Vec fmadd(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  static Vec max(Vec a, Vec b) { return {_mm256_max_ps(a.v, b.v)}; }
  static Vec min(Vec a, Vec b) { return {_mm256_min_ps(a.v, b.v)}; }
  static Vec where_pos(Vec x, Vec a) {
    return {_mm256_and_ps(_mm256_cmp_ps(x.v, _mm256_setzero_ps(), _CMP_GT_OQ), a.v)};
  }
  static Vec select_pos(Vec x, Vec a, Vec b) {
    return {_mm256_blendv_ps(b.v, a.v, _mm256_cmp_ps(x.v, _mm256_setzero_ps(), _CMP_GT_OQ))};
  }
  static Vec abs(Vec a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
  static Vec copysign(Vec a, Vec s) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    return {_mm256_or_ps(_mm256_andnot_ps(sign, a.v), _mm256_and_ps(sign, s.v))};
  }
  static Vec pow2_from_magic(Vec t) {
    return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t.v), 23))};
  }
};

template <>
struct Vec<double> {
  static constexpr int W = 4;
  __m256d v;
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static Vec loadu(const double* p) { return {_mm256_loadu_pd(p)}; }
  static Vec load_n(const double* p, int n) { return {_mm256_maskload_pd(p, mask(n))}; }
  void storeu(double* p) const { _mm256_storeu_pd(p, v); }
  void store_n(double* p, int n) const { _mm256_maskstore_pd(p, mask(n), v); }
  static Vec set1(double x) { return {_mm256_set1_pd(x)}; }
  static Vec zero() { return {_mm256_setzero_pd()}; }
  friend Vec operator+(Vec a, Vec b) { return {_mm256_add_pd(a.v, b.v)}; }
  friend Vec operator-(Vec a, Vec b) { return {_mm256_sub_pd(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm256_mul_pd(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm256_div_pd(a.v, b.v)}; }
  static Vec recip(Vec a) { return {_mm256_div_pd(_mm256_set1_pd(1.0), a.v)}; }
  static Vec fmadd(Vec a, Vec b, Vec c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
  static Vec max(Vec a, Vec b) { return {_mm256_max_pd(a.v, b.v)}; }
  static Vec min(Vec a, Vec b) { return {_mm256_min_pd(a.v, b.v)}; }
  static Vec where_pos(Vec x, Vec a) {
    return {_mm256_and_pd(_mm256_cmp_pd(x.v, _mm256_setzero_pd(), _CMP_GT_OQ), a.v)};
  }
  static Vec select_pos(Vec x, Vec a, Vec b) {
    return {_mm256_blendv_pd(b.v, a.v, _mm256_cmp_pd(x.v, _mm256_setzero_pd(), _CMP_GT_OQ))};
  }
  static Vec abs(Vec a) { return {_mm256_andnot_pd(_mm256_set1_pd(-0.0), a.v)}; }
  static Vec copysign(Vec a, Vec s) {
    const __m256d sign = _mm256_set1_pd(-0.0);
    return {_mm256_or_pd(_mm256_andnot_pd(sign, a.v), _mm256_and_pd(sign, s.v))};
  }
  static Vec pow2_from_magic(Vec t) {
    return {_mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t.v), 52))};
  }
};

#else  // scalar: one lane, the same algorithms, so it is the in-tree reference of the SIMD paths

template <typename T>
struct Vec {
  static constexpr int W = 1;
  T v;
  static Vec loadu(const T* p) { return {*p}; }
  static Vec loadu(const uint16_t* p) {  // a bfloat16, widened (float only)
    uint32_t bits = uint32_t(*p) << 16;
    float f;
    memcpy(&f, &bits, 4);
    return {T(f)};
  }
  static Vec loadu(const int8_t* p) { return {T(*p)}; }  // an int8, widened (exactly)
  static Vec load_n(const T* p, int n) { return {n > 0 ? *p : T(0)}; }
  void storeu(T* p) const { *p = v; }
  void store_n(T* p, int n) const {
    if (n > 0) *p = v;
  }
  static Vec set1(T x) { return {x}; }
  static Vec zero() { return {T(0)}; }
  friend Vec operator+(Vec a, Vec b) { return {a.v + b.v}; }
  friend Vec operator-(Vec a, Vec b) { return {a.v - b.v}; }
  friend Vec operator*(Vec a, Vec b) { return {a.v * b.v}; }
  friend Vec operator/(Vec a, Vec b) { return {a.v / b.v}; }
  static Vec recip(Vec a) { return {T(1) / a.v}; }
  // Explicit fused multiply-add where the compiler has one, so scalar and SIMD round alike.
  static Vec fmadd(Vec a, Vec b, Vec c) {
    if constexpr (sizeof(T) == 4)
      return {__builtin_fmaf(a.v, b.v, c.v)};
    else
      return {__builtin_fma(a.v, b.v, c.v)};
  }
  static Vec max(Vec a, Vec b) { return {a.v > b.v ? a.v : b.v}; }
  static Vec min(Vec a, Vec b) { return {a.v < b.v ? a.v : b.v}; }
  static Vec where_pos(Vec x, Vec a) { return {x.v > T(0) ? a.v : T(0)}; }
  static Vec select_pos(Vec x, Vec a, Vec b) { return {x.v > T(0) ? a.v : b.v}; }
  static Vec abs(Vec a) { return {a.v < T(0) ? -a.v : a.v}; }
  static Vec copysign(Vec a, Vec s) { return {T(__builtin_copysign(double(a.v), double(s.v)))}; }
  static Vec pow2_from_magic(Vec t) {
    if constexpr (sizeof(T) == 4) {
      uint32_t bits;
      memcpy(&bits, &t.v, 4);
      bits <<= 23;
      float r;
      memcpy(&r, &bits, 4);
      return {r};
    } else {
      uint64_t bits;
      memcpy(&bits, &t.v, 8);
      bits <<= 52;
      double r;
      memcpy(&r, &bits, 8);
      return {r};
    }
  }
};
#endif

// ---------------------------------------------------------------------------------------------
// exp, expm1, sigmoid, tanh. Range reduction x = k ln2 + r, |r| <= ln2/2, Taylor polynomial in r
// (degree 7 in float, 13 in double: truncation below half an ulp), then scaling by 2^k built
// from the exponent bits. Inputs are clamped to the range where 2^k is a normal number; a NaN
// passes through the clamps (the NaN sits in the second operand of max/min) and poisons r.

template <typename T>
struct MathConst;
template <>
struct MathConst<float> {
  static constexpr float lo = -87.0f, hi = 88.0f;
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693145751953125f, ln2_lo = 1.42860682030941723212e-6f;
  static constexpr float magic = 12582912.0f + 127.0f;  // 1.5 * 2^23 + exponent bias
  static constexpr int degree = 7;
};
template <>
struct MathConst<double> {
  static constexpr double lo = -708.0, hi = 709.0;
  static constexpr double log2e = 1.4426950408889634074;
  static constexpr double ln2_hi = 0.693147180369123816490, ln2_lo = 1.90821492927058770002e-10;
  static constexpr double magic = 6755399441055744.0 + 1023.0;  // 1.5 * 2^52 + exponent bias
  static constexpr int degree = 13;
};

// x = k ln2 + r: returns s = 2^k, r, and qr with expm1(r) = r + (qr) r.
template <typename T>
inline void exp_reduce(Vec<T> x, Vec<T>& s, Vec<T>& r, Vec<T>& qr) {
  using V = Vec<T>;
  using C = MathConst<T>;
  x = V::min(V::set1(C::hi), V::max(V::set1(C::lo), x));
  // t = round(x log2e) + magic: the low mantissa bits hold k + bias
  V t = V::fmadd(x, V::set1(C::log2e), V::set1(C::magic));
  V k = t - V::set1(C::magic);
  r = V::fmadd(k, V::set1(-C::ln2_hi), x);
  r = V::fmadd(k, V::set1(-C::ln2_lo), r);
  // expm1(r) = r + r^2 (1/2! + r/3! + ... ), Horner from the highest term
  T coef = T(1);
  for (int n = 2; n <= C::degree; ++n) coef /= T(n);  // 1/degree!
  V q = V::set1(coef);
  for (int n = C::degree - 1; n >= 2; --n) {
    coef *= T(n + 1);  // 1/n!
    q = V::fmadd(q, r, V::set1(coef));
  }
  qr = q * r;
  s = V::pow2_from_magic(t);
}

// Returns s = 2^k and p = expm1(r) for x = k ln2 + r.
template <typename T>
inline void exp_parts(Vec<T> x, Vec<T>& s, Vec<T>& p) {
  Vec<T> r, qr;
  exp_reduce(x, s, r, qr);
  p = Vec<T>::fmadd(qr, r, r);
}

template <typename T>
inline Vec<T> vexp(Vec<T> x) {
  Vec<T> s, p;
  exp_parts(x, s, p);
  return Vec<T>::fmadd(s, p, s);
}

template <typename T>
inline Vec<T> vexpm1(Vec<T> x) {
  Vec<T> s, p;
  exp_parts(x, s, p);
  return Vec<T>::fmadd(s, p, s - Vec<T>::set1(T(1)));
}

// sigmoid and tanh to within one ulp, unbiased, exactly +-1 where that is the rounded value (a
// saturated gate must not leak over thousands of steps). Each carries expm1 and the sums it is
// divided by as unevaluated pairs hi + lo (exact where the comments say so), then divides once
// with a correction: the rounding of 1 + e or u + 2 no longer reaches the result.

// exp_parts with expm1(r) = p_hi + p_lo, to a fraction of an ulp
template <typename T>
inline void exp_parts2(Vec<T> x, Vec<T>& s, Vec<T>& p_hi, Vec<T>& p_lo) {
  using V = Vec<T>;
  V r, qr;
  exp_reduce(x, s, r, qr);
  p_hi = V::fmadd(qr, r, r);
  p_lo = V::fmadd(qr, r, r - p_hi);  // r - p_hi exact (Sterbenz: |p| within [|r|/2, 2|r|])
}

// 1 / (d + dl) = r + r corr, with r = 1/d rounded and the residual 1 - d r exact in an FMA
template <typename T>
inline Vec<T> recip_pair(Vec<T> d, Vec<T> dl, Vec<T>& corr) {
  using V = Vec<T>;
  V r = V::recip(d);
  V res = V::fmadd(V::zero() - d, r, V::set1(T(1)));
  corr = V::fmadd(V::zero() - r, dl, res);
  return r;
}

template <typename T>
inline Vec<T> vsigmoid(Vec<T> x) {
  using V = Vec<T>;
  const V one = V::set1(T(1));
  V s, p_hi, p_lo;
  exp_parts2(V::zero() - V::abs(x), s, p_hi, p_lo);  // e^-|x| = s (1 + p)
  V one_p = one + p_hi;
  V e_hi = s * one_p;                            // exact: s is a power of two
  V e_lo = s * ((p_hi - (one_p - one)) + p_lo);  // Fast2Sum, |p| < 1
  V d = one + e_hi;
  V dl = (e_hi - (d - one)) + e_lo;  // Fast2Sum, e <= 1
  V corr;
  V r = recip_pair(d, dl, corr);
  V big = V::fmadd(r, corr, r);  // sigmoid(|x|) = 1 / (1 + e)
  V m = e_hi * r;                // sigmoid(-|x|) = e / (1 + e)
  V m_lo = V::fmadd(e_hi, r, V::zero() - m);
  V small = m + V::fmadd(m, corr, V::fmadd(e_lo, r, m_lo));
  return V::select_pos(x, big, small);
}

// tanh|x| = -u / (u + 2) with u = expm1(-2|x|) = s p + (s - 1): no cancellation near 0.
template <typename T>
inline Vec<T> vtanh(Vec<T> x) {
  using V = Vec<T>;
  const V one = V::set1(T(1)), two = V::set1(T(2));
  V s, p_hi, p_lo;
  exp_parts2(V::set1(T(-2)) * V::abs(x), s, p_hi, p_lo);
  V sm1 = s - one;             // s = 2^k, k <= 0: exact unless k < -24
  V sm1_lo = s - (sm1 + one);  // Fast2Sum: what s - 1 dropped
  V u_hi = V::fmadd(s, p_hi, sm1);
  // sm1 - u_hi is exact (both in [-1, -1/2] for k < 0; zero for k = 0), so the second FMA
  // returns the first one's rounding error
  V u_lo = V::fmadd(s, p_hi, sm1 - u_hi) + (s * p_lo + sm1_lo);
  V d = u_hi + two;
  V dl = (u_hi - (d - two)) + u_lo;  // Fast2Sum, |u| < 1
  V corr;
  V r = recip_pair(d, dl, corr);
  V m = u_hi * r;
  V m_lo = V::fmadd(u_hi, r, V::zero() - m);
  V t = m + V::fmadd(m, corr, V::fmadd(u_lo, r, m_lo));
  return V::copysign(V::zero() - t, x);
}

template <typename T>
inline Vec<T> vrelu(Vec<T> x) {
  return Vec<T>::max(Vec<T>::zero(), x);
}
