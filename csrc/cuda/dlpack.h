// dlpack.h: the parts of the DLPack C ABI (v0.8, the unversioned "dltensor" capsule) that the
// bindings exchange with CuPy, PyTorch, JAX and NumPy. Layouts as in dmlc/dlpack's dlpack.h.
#pragma once

#include <stdint.h>

extern "C" {

enum FastrnnDLDeviceType : int32_t {
  kFastrnnDLCPU = 1,
  kFastrnnDLCUDA = 2,
  kFastrnnDLCUDAManaged = 13,
};

enum FastrnnDLDataTypeCode : uint8_t {
  kFastrnnDLInt = 0,
  kFastrnnDLUInt = 1,
  kFastrnnDLFloat = 2,
  kFastrnnDLBfloat = 4,  // bfloat16 (bits 16)
};

typedef struct {
  int32_t device_type;
  int32_t device_id;
} DLDevice;

typedef struct {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
} DLDataType;

typedef struct {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; null means C-contiguous
  uint64_t byte_offset;
} DLTensor;

typedef struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(struct DLManagedTensor* self);
} DLManagedTensor;

}  // extern "C"
