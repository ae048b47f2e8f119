// gates.h: the per-element gate math of every cell, forward and backward, as __host__ __device__
// functions. The CUDA kernels (csrc/cuda/) call these on the GPU; the host build of the same
// kernels (csrc/cuda/runtime_host.cpp, compiled into fastrnn._C and exposed to the tests as
// fastrnn._C._cuda_host) calls them on the CPU, so the CPU test suite checks the formulas the GPU
// runs against tests/reference.py.
//
// Not used by the SIMD CPU kernels (csrc/cpu/isa/), which spell the same formulas with vectors;
// the comments below quote the forward line each backward line differentiates, as there.
// Conventions (gate orders, peepholes, what is cached) are those of fastrnn.h.
#pragma once

#include <math.h>

#if defined(__CUDACC__)
#define FASTRNN_HD __host__ __device__
#else
#define FASTRNN_HD
#endif

namespace fastrnn {
namespace gates {

FASTRNN_HD inline float tanh_of(float x) { return tanhf(x); }
FASTRNN_HD inline double tanh_of(double x) { return tanh(x); }
FASTRNN_HD inline float exp_of(float x) { return expf(x); }
FASTRNN_HD inline double exp_of(double x) { return exp(x); }

// 1 / (1 + e^-x): exp overflows to inf for x < -88 (float), giving exactly 0, never NaN.
template <typename T>
FASTRNN_HD inline T sigmoid(T x) {
  return T(1) / (T(1) + exp_of(-x));
}

// ------------------------------------------------------------------------------------------------
// RNN: h = act(pre), pre = W_ih x + b_ih + W_hh h_prev + b_hh

template <typename T>
FASTRNN_HD inline T rnn_forward(T pre, bool relu) {
  return relu ? (pre > T(0) ? pre : T(0)) : tanh_of(pre);
}

// dL/dpre from dL/dh and h itself
template <typename T>
FASTRNN_HD inline T rnn_backward(T dh, T h, bool relu) {
  // h = relu(pre): dpre = dh [h > 0];  h = tanh(pre): dpre = dh (1 - h^2)
  return relu ? (h > T(0) ? dh : T(0)) : dh * (T(1) - h * h);
}

// ------------------------------------------------------------------------------------------------
// LSTM, gates (i, f, g, o); peepholes p_i, p_f see c_prev, p_o sees c (ignored unless `peep`).

template <typename T>
struct LstmForward {
  T i, f, g, o, c, h;
};

// a_* = the gate's input projection + recurrent product + biases
template <typename T>
FASTRNN_HD inline LstmForward<T> lstm_forward(T a_i, T a_f, T a_g, T a_o, T c_prev, bool peep,
                                              T p_i, T p_f, T p_o) {
  LstmForward<T> r;
  if (peep) {
    a_i += p_i * c_prev;
    a_f += p_f * c_prev;
  }
  r.i = sigmoid(a_i);
  r.f = sigmoid(a_f);
  r.g = tanh_of(a_g);
  r.c = r.f * c_prev + r.i * r.g;
  if (peep) a_o += p_o * r.c;
  r.o = sigmoid(a_o);
  r.h = r.o * tanh_of(r.c);
  return r;
}

template <typename T>
struct LstmBackward {
  T da_i, da_f, da_g, da_o;  // gradients of the gates' pre-activations
  T dc_prev;
};

// dh: dL/dh (all paths), dc: dL/dc arriving from the next step
template <typename T>
FASTRNN_HD inline LstmBackward<T> lstm_backward(T dh, T dc, T i, T f, T g, T o, T c, T c_prev,
                                                bool peep, T p_i, T p_f, T p_o) {
  LstmBackward<T> r;
  const T tc = tanh_of(c);
  // h = o tanh(c)
  r.da_o = dh * tc * o * (T(1) - o);
  dc += dh * o * (T(1) - tc * tc);
  // o = sigmoid(a_o + p_o c)
  if (peep) dc += r.da_o * p_o;
  // c = f c_prev + i g
  r.da_i = dc * g * i * (T(1) - i);
  r.da_f = dc * c_prev * f * (T(1) - f);
  r.da_g = dc * i * (T(1) - g * g);
  r.dc_prev = dc * f;
  // i = sigmoid(a_i + p_i c_prev), f = sigmoid(a_f + p_f c_prev)
  if (peep) r.dc_prev += r.da_i * p_i + r.da_f * p_f;
  return r;
}

// ------------------------------------------------------------------------------------------------
// GRU, PyTorch's reset-after form, gates (r, z, n):
//   r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z), n = tanh(x_n + r hn), h = (1 - z) n + z h_prev
// with x_* = W_i* x + biases (b_in only for n) and hn = W_hn h_prev + b_hn.

template <typename T>
struct GruForward {
  T r, z, n, h;
};

template <typename T>
FASTRNN_HD inline GruForward<T> gru_forward(T x_r, T x_z, T x_n, T h_r, T h_z, T hn, T h_prev) {
  GruForward<T> o;
  o.r = sigmoid(x_r + h_r);
  o.z = sigmoid(x_z + h_z);
  o.n = tanh_of(x_n + o.r * hn);
  o.h = o.n + o.z * (h_prev - o.n);
  return o;
}

template <typename T>
struct GruBackward {
  T da_r, da_z;  // pre-activation gradients of r and z (both sides)
  T da_n;        // of x_n (input side)
  T dhn;         // of hn = W_hn h_prev + b_hn (hidden side of n)
  T dh_direct;   // the part of dL/dh_prev that bypasses W_hh
};

template <typename T>
FASTRNN_HD inline GruBackward<T> gru_backward(T dh, T h_prev, T r, T z, T n, T hn) {
  GruBackward<T> o;
  // h = (1 - z) n + z h_prev
  o.dh_direct = dh * z;
  // n = tanh(x_n + r hn)
  o.da_n = dh * (T(1) - z) * (T(1) - n * n);
  o.dhn = o.da_n * r;
  // z = sigmoid(x_z + h_z)
  o.da_z = dh * (h_prev - n) * z * (T(1) - z);
  // r = sigmoid(x_r + h_r)
  o.da_r = o.da_n * hn * r * (T(1) - r);
  return o;
}

// ------------------------------------------------------------------------------------------------
// GRU, original reset-before form, in two halves around the product W_hn (r h_prev):
//   r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z), rh = r h_prev          (first half)
//   n = tanh(x_n + W_hn rh), h = (1 - z) n + z h_prev                     (second half)
// where x_n already holds b_in + b_hn.

template <typename T>
struct GruRbGates {
  T r, z, rh;
};

template <typename T>
FASTRNN_HD inline GruRbGates<T> gru_rb_gates(T x_r, T x_z, T h_r, T h_z, T h_prev) {
  GruRbGates<T> o;
  o.r = sigmoid(x_r + h_r);
  o.z = sigmoid(x_z + h_z);
  o.rh = o.r * h_prev;
  return o;
}

template <typename T>
struct GruRbState {
  T n, h;
};

template <typename T>
FASTRNN_HD inline GruRbState<T> gru_rb_state(T x_n, T hn, T z, T h_prev) {
  GruRbState<T> o;
  o.n = tanh_of(x_n + hn);
  o.h = o.n + z * (h_prev - o.n);
  return o;
}

template <typename T>
struct GruRbBackwardZn {
  T da_z, da_n;  // da_n is the gradient of both x_n and W_hn rh
  T dh_direct;
};

// first half of the backward step: everything but r
template <typename T>
FASTRNN_HD inline GruRbBackwardZn<T> gru_rb_backward_zn(T dh, T h_prev, T z, T n) {
  GruRbBackwardZn<T> o;
  // h = (1 - z) n + z h_prev
  o.dh_direct = dh * z;
  // n = tanh(x_n + W_hn rh)
  o.da_n = dh * (T(1) - z) * (T(1) - n * n);
  // z = sigmoid(x_z + h_z)
  o.da_z = dh * (h_prev - n) * z * (T(1) - z);
  return o;
}

template <typename T>
struct GruRbBackwardR {
  T da_r;
  T dh_direct;  // to add to the first half's
};

// second half: drh = da_n W_hn (a product of the whole row), then rh = r h_prev
template <typename T>
FASTRNN_HD inline GruRbBackwardR<T> gru_rb_backward_r(T drh, T h_prev, T r) {
  GruRbBackwardR<T> o;
  // rh = r h_prev;  r = sigmoid(x_r + h_r)
  o.da_r = drh * h_prev * r * (T(1) - r);
  o.dh_direct = drh * r;
  return o;
}

}  // namespace gates
}  // namespace fastrnn
