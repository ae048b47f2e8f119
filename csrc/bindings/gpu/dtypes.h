// dtypes.h: part of bindings/cuda_module.cpp (dtypes and the host-side 16-bit conversions).
// Included inside that file's anonymous namespace, after its includes and aliases; not a
// standalone header.

// ------------------------------------------------------------------------------------------------
// dtypes

// kBF16, kF16: 16-bit storage of the float types (cuda/half.h). NumPy has float16 but no
// bfloat16: a bfloat16 array comes to NumPy through ml_dtypes (if installed) or widened to float32,
// and its `dtype` is the string "bfloat16". __cuda_array_interface__ spells bfloat16 "<V2" (the
// typestr of ml_dtypes and PyTorch); DLPack has a code of its own.
enum class DType { kF32, kF64, kI32, kI64, kBF16, kF16 };

struct DTypeInfo {
  const char* name;
  const char* typestr;
  int itemsize;
  uint8_t dl_code;
};

const DTypeInfo& info(DType d) {
  static const DTypeInfo t[] = {
      {"float32", "<f4", 4, kFastrnnDLFloat},   {"float64", "<f8", 8, kFastrnnDLFloat},
      {"int32", "<i4", 4, kFastrnnDLInt},       {"int64", "<i8", 8, kFastrnnDLInt},
      {"bfloat16", "<V2", 2, kFastrnnDLBfloat}, {"float16", "<f2", 2, kFastrnnDLFloat}};
  return t[int(d)];
}

bool is_16bit(DType d) { return d == DType::kBF16 || d == DType::kF16; }

DType dtype_from_name(const std::string& s, const char* what) {
  for (DType d : {DType::kF32, DType::kF64, DType::kI32, DType::kI64, DType::kBF16, DType::kF16})
    if (s == info(d).name || s == info(d).typestr || s == info(d).typestr + 1) return d;
  throw py::type_error(std::string(what) + ": unsupported dtype " + s +
                       " (expected float32, float64, bfloat16, float16, int32 or int64)");
}

// The dtype as Python sees it: a numpy.dtype, except "bfloat16", which NumPy lacks (a string).
py::object dtype_object(DType d) {
  if (d == DType::kBF16) return py::str("bfloat16");
  return py::dtype(info(d).name);
}

// Calls f(T{}) with T the storage type of a float dtype.
template <class F>
auto dispatch_float(DType d, F&& f) {
  switch (d) {
    case DType::kF32:
      return f(float{});
    case DType::kF64:
      return f(double{});
    case DType::kBF16:
      return f(fastrnn::bfloat16{});
    case DType::kF16:
      return f(fastrnn::float16{});
    default:
      throw py::type_error(std::string("expected a float dtype, got ") + info(d).name);
  }
}

// ------------------------------------------------------------------------------------------------
// Host-side conversions to and from the 16-bit types (the device kernels use the same functions).

// double -> float rounded to odd: then rounding that float to 16 bits (<= 11 significant bits)
// gives the correctly rounded result of the double, with no double-rounding error.
float round_to_odd(double d) {
  float f = float(d);
  if (std::isfinite(f) && double(f) != d) {
    uint32_t u = fastrnn::bits_of(f);
    if (!(u & 1u)) u = std::fabs(d) > std::fabs(double(f)) ? u + 1 : u - 1;
    f = fastrnn::float_of(u);
  }
  return f;
}

uint16_t narrow_bits(float v, DType s) {
  return s == DType::kBF16 ? fastrnn::to_bfloat16(v).bits : fastrnn::to_float16(v).bits;
}

float widen_bits(uint16_t b, DType s) {
  return s == DType::kBF16 ? fastrnn::to_float(fastrnn::bfloat16{b})
                           : fastrnn::to_float(fastrnn::float16{b});
}

// A host float array (float64, float32, float16 or ml_dtypes' bfloat16) rounded to the 16-bit
// storage type s (nearest even), as its bits.
std::vector<uint16_t> storage_bits(const py::array& in, DType s, const char* name) {
  py::array a = py::array::ensure(in, py::array::c_style);
  if (!a) throw py::type_error(std::string(name) + ": expected an array");
  const DType from = dtype_from_name(py::str(a.dtype()), name);
  const int64_t n = a.size();
  std::vector<uint16_t> out(size_t(n), 0);
  switch (from) {
    case DType::kF32: {
      const float* p = static_cast<const float*>(a.data());
      for (int64_t i = 0; i < n; ++i) out[i] = narrow_bits(p[i], s);
      break;
    }
    case DType::kF64: {
      const double* p = static_cast<const double*>(a.data());
      for (int64_t i = 0; i < n; ++i) out[i] = narrow_bits(round_to_odd(p[i]), s);
      break;
    }
    case DType::kBF16:
    case DType::kF16: {
      const uint16_t* p = static_cast<const uint16_t*>(a.data());
      for (int64_t i = 0; i < n; ++i)
        out[i] = from == s ? p[i] : narrow_bits(widen_bits(p[i], from), s);
      break;
    }
    default:
      throw py::type_error(std::string(name) + ": expected a float array, got dtype " +
                           info(from).name);
  }
  return out;
}

DType dtype_of(const py::handle& obj) {  // a numpy dtype, a string, or torch.float32-like
  std::string s = py::str(obj);
  if (s.rfind("torch.", 0) == 0) s = s.substr(6);
  return dtype_from_name(s, "dtype");
}

std::string device_str(int device) {
  return (gpu::emulated() ? "cuda-host-emulation:" : "cuda:") + std::to_string(device);
}
