// cpu/isa/cell_math.h: the math the cell templates (cells/*.h) call, for Vec<T>: vsigmoid, vtanh,
// vrelu come from vec.h; fmadd, where_pos and one_like here. The scalar counterparts, for the CUDA
// kernels and their host build, are in cells/math.h.
// Included by cpu/isa/kernels.cpp inside fastrnn::<isa> (no namespace, no include guard).

template <typename T>
inline Vec<T> fmadd(Vec<T> a, Vec<T> b, Vec<T> c) {
  return Vec<T>::fmadd(a, b, c);
}
// x > 0 ? a : 0, per lane
template <typename T>
inline Vec<T> where_pos(Vec<T> x, Vec<T> a) {
  return Vec<T>::where_pos(x, a);
}
template <typename T>
inline Vec<T> one_like(Vec<T>) {
  return Vec<T>::set1(T(1));
}
