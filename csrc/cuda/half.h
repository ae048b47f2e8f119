// half.h: the 16-bit storage types of the GPU path, bfloat16 and float16 (IEEE binary16), and
// the conversions every kernel uses to read and write them. Plain C++ with FASTRNN_HD: the same
// code runs on the GPU (nvcc) and in the host build and the bindings (the host compiler, no CUDA
// headers), so the host-executed tests check exactly the conversions the GPU runs.
//
// Storage only: there is no 16-bit arithmetic. A value is widened to float on load (exact), every
// sum and all gate math run in float, and a result is rounded once when it is written out
// (round to nearest, ties to even; Inf kept; NaN kept as a quiet NaN with its sign; float16
// overflows to Inf past 65504 + half an ulp, subnormals are rounded, not flushed).
//
// accum_t<S> is the type a storage type S computes in: float for the 16-bit types, S itself for
// float and double (whose paths are unchanged: widen and narrow are identities there).
#pragma once

#include <stdint.h>
#include <string.h>

#include "cells/hd.h"

namespace fastrnn {

struct bfloat16 {
  uint16_t bits;
};
struct float16 {
  uint16_t bits;
};

FASTRNN_HD inline uint32_t bits_of(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
#endif
}

FASTRNN_HD inline float float_of(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// ------------------------------------------------------------------------------------------------
// float -> 16 bits, round to nearest even

FASTRNN_HD inline bfloat16 to_bfloat16(float f) {
  uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {uint16_t((u >> 16) | 0x0040u)};  // NaN: quiet
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; a carry out of the significand
  // moves to the next binade, and past the largest finite value to Inf, as it should.
  u += 0x7fffu + ((u >> 16) & 1u);
  return {uint16_t(u >> 16)};
}

FASTRNN_HD inline float16 to_float16(float f) {
  const uint32_t u = bits_of(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return {uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu))};  // NaN: quiet
  // 65520 = 65504 + half an ulp is a tie that rounds to the even neighbour 65536: Inf
  if (a >= 0x477ff000u) return {uint16_t(sign | 0x7c00u)};
  if (a >= 0x38800000u) {  // a normal float16 (>= 2^-14): rebias the exponent (127 -> 15)
    uint32_t v = a - 0x38000000u;
    v += 0xfffu + ((v >> 13) & 1u);  // 13 bits dropped, ties to even; a carry bumps the exponent
    return {uint16_t(sign | (v >> 13))};
  }
  if (a <= 0x33000000u) return {sign};  // <= 2^-25, half the smallest subnormal: ties to 0
  // subnormal: the result is |f| / 2^-24 rounded to an integer (a carry into 0x400 gives 2^-14)
  const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - e;  // |f| = m 2^(e-150) = (m >> shift) 2^-24 + remainder
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return {uint16_t(sign | q)};
}

// ------------------------------------------------------------------------------------------------
// 16 bits -> float, exact

FASTRNN_HD inline float to_float(bfloat16 h) { return float_of(uint32_t(h.bits) << 16); }

FASTRNN_HD inline float to_float(float16 h) {
  const uint32_t sign = uint32_t(h.bits & 0x8000u) << 16;
  const uint32_t e = (h.bits >> 10) & 0x1fu, m = h.bits & 0x3ffu;
  if (e == 0x1fu) return float_of(sign | 0x7f800000u | (m << 13));  // Inf, NaN (payload kept)
  if (e != 0) return float_of(sign | ((e + 112u) << 23) | (m << 13));
  // zero or subnormal: m 2^-24, exact in float
  const float v = float(m) * 5.9604644775390625e-8f;
  return float_of(sign | bits_of(v));
}

// ------------------------------------------------------------------------------------------------
// What the kernels call: widen(s) to compute, narrow<S>(a) to store, convert<To>(v) for both.

template <typename S>
struct Accum {
  using type = S;
};
template <>
struct Accum<bfloat16> {
  using type = float;
};
template <>
struct Accum<float16> {
  using type = float;
};
template <typename S>
using accum_t = typename Accum<S>::type;

FASTRNN_HD inline float widen(float v) { return v; }
FASTRNN_HD inline double widen(double v) { return v; }
FASTRNN_HD inline float widen(bfloat16 v) { return to_float(v); }
FASTRNN_HD inline float widen(float16 v) { return to_float(v); }

template <typename S>
struct Narrow {
  template <typename A>
  FASTRNN_HD static S from(A v) {
    return S(v);
  }
};
template <>
struct Narrow<bfloat16> {
  FASTRNN_HD static bfloat16 from(float v) { return to_bfloat16(v); }
};
template <>
struct Narrow<float16> {
  FASTRNN_HD static float16 from(float v) { return to_float16(v); }
};

template <typename S, typename A>
FASTRNN_HD inline S narrow(A v) {
  return Narrow<S>::from(v);
}

template <typename To, typename From>
FASTRNN_HD inline To convert(From v) {
  return narrow<To>(widen(v));
}

// A number per storage type, so that a saved context can tell bfloat16 from float16.
template <typename S>
constexpr int storage_id() {
  return sizeof(S) == 8 ? 8 : sizeof(S) == 4 ? 4 : 0;
}
template <>
constexpr int storage_id<bfloat16>() {
  return 16;
}
template <>
constexpr int storage_id<float16>() {
  return 2;
}

}  // namespace fastrnn
