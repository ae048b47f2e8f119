// cells/hd.h: FASTRNN_HD marks functions that run on the host and, under nvcc, on the GPU;
// FASTRNN_INLINE ones that must be inlined (a cell's per-element code and the accessors it calls:
// a call per vector chunk, with vectors passed through memory, would cost more than the math).
#pragma once

#if defined(__CUDACC__)
#define FASTRNN_HD __host__ __device__
#define FASTRNN_INLINE __forceinline__
#else
#define FASTRNN_HD
#define FASTRNN_INLINE __attribute__((always_inline)) inline
#endif
