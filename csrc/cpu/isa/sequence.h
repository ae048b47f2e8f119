// cpu/isa/sequence.h: a sequence call's shapes and indexing (sorted rows, lengths, reverse),
// the threads a recurrence uses, and the vector loads/stores of one nr-block's chunks.
// Part of the one translation unit per ISA: included by cpu/isa/kernels.cpp inside
// fastrnn::<isa>::(anonymous), so it has no namespace, no include guard and no includes.

// Shapes and indexing shared by forward and backward.

template <typename T>
struct Seq {
  const SeqArgs<T>& a;
  int64_t Tn, B, I, H, G, GH, nb;
  int cw;  // cache width in units of H
  explicit Seq(const SeqArgs<T>& args) : a(args) {
    Tn = a.steps;
    B = a.batch;
    I = a.input;
    H = a.hidden;
    G = cells::num_gates(a.cell);
    GH = G * H;
    nb = ceil_div(H, Tile<T>::NR);
    cw = cells::cache_width(a.cell);
  }
  int64_t batch_of(int64_t sb) const { return a.order ? a.order[sb] : sb; }
  int64_t len_of(int64_t b) const { return a.len ? a.len[b] : Tn; }
  int64_t active(int64_t s) const { return a.active ? a.active[s] : B; }
  // time index of step s for batch row b
  int64_t time_of(int64_t s, int64_t b) const { return a.reverse ? len_of(b) - 1 - s : s; }
};

// Threads for a recurrence of `items` work items per stage: extra threads only pay off when a
// step has enough work to amortize a barrier (a few hundred nanoseconds within a sequence's
// parallel region) or, for a streaming step (`with_input`), the region itself (about a
// microsecond), i.e. once its weights no longer sit comfortably in one core's L2 (about 0.6 MB).
// Thresholds in flops per step, measured at B=1..2, H=64..384.
template <typename T>
int recurrence_threads(const Seq<T>& q, int requested, int64_t items, bool with_input = false) {
  const double k = double(q.H) + (with_input ? double(q.I) : 0.0);
  const double flops = 2.0 * double(q.GH) * k * double(q.B);
  int nt = requested;
  if (flops < (with_input ? 3.0e5 : 5.0e4)) nt = 1;
  if (nt > items) nt = int(items);
  return nt < 1 ? 1 : nt;
}

// Iterates the vector chunks of one nr-block: f(offset of the chunk's first unit, lanes valid).
template <typename T, typename F>
inline void for_chunks(int64_t j0, int64_t H, F&& f) {
  constexpr int W = Tile<T>::W;
  for (int v = 0; v < Tile<T>::NV; ++v) {
    const int64_t j = j0 + v * W;
    if (j >= H) break;
    f(j, v * W, int(imin(W, H - j)));
  }
}

// Row stride of buffers whose rows feed a product as A: padded by a cache line or two so that the
// MR rows a kernel reads at once do not all fall into the same L1 sets (a row of 1024 floats is
// exactly 4 KiB, and 12 such rows would fill every way of their sets).
inline int64_t padded_ld(int64_t n) { return (n + 15) / 16 * 16 + 16; }

template <typename T>
inline Vec<T> ld(const T* p, int n) {
  return n == Vec<T>::W ? Vec<T>::loadu(p) : Vec<T>::load_n(p, n);
}
template <typename T>
inline void st(T* p, Vec<T> v, int n) {
  if (n == Vec<T>::W)
    v.storeu(p);
  else
    v.store_n(p, n);
}
