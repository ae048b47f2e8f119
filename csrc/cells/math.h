// cells/math.h: the scalar math the cell templates (cells/*.h) call, for float and double, on the
// host and on the GPU: vsigmoid, vtanh, vrelu, fmadd, where_pos, one_like. The SIMD CPU kernels
// give the same names for Vec<T> (cpu/isa/cell_math.h), so one template serves both.
//
// fmadd(a, b, c) here is written a * b + c: nvcc fuses it on the GPU (its default), the host build
// (baseline x86-64, no FMA instruction) rounds twice, as the GPU path always did.
#pragma once

#include <math.h>

#include "cells/hd.h"

namespace fastrnn {
namespace cells {

FASTRNN_HD inline float vtanh(float x) { return tanhf(x); }
FASTRNN_HD inline double vtanh(double x) { return tanh(x); }
// 1 / (1 + e^-x): exp overflows to inf for x < -88 (float), giving exactly 0, never NaN.
FASTRNN_HD inline float vsigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
FASTRNN_HD inline double vsigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

template <typename T>
FASTRNN_HD inline T vrelu(T x) {
  return x > T(0) ? x : T(0);
}
template <typename T>
FASTRNN_HD inline T fmadd(T a, T b, T c) {
  return a * b + c;
}
// x > 0 ? a : 0
template <typename T>
FASTRNN_HD inline T where_pos(T x, T a) {
  return x > T(0) ? a : T(0);
}
template <typename T>
FASTRNN_HD inline T one_like(T) {
  return T(1);
}

}  // namespace cells
}  // namespace fastrnn
