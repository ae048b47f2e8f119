// weights.h: part of bindings/cuda_module.cpp (one layer and direction's weights on one device, and
// its forward/backward). Included inside that file's anonymous namespace, after its includes and
// aliases; not a standalone header.

// ------------------------------------------------------------------------------------------------
// One layer and direction's weights on one device.

struct ContextHandle {
  gpu::Context ctx;
};

class Weights {
 public:
  // dtype: the storage type, by default w_hh's. bfloat16 / float16 round float weights once here
  // (nearest even); the input-side bias sum b_ih + b_hh is then formed in float from the rounded
  // values and kept in float (the compute type), so a 16-bit layer computes exactly what a
  // float32 layer with the rounded weights computes.
  Weights(const std::string& cell_name_, const py::object& w_ih, const py::object& w_hh,
          const py::object& b_ih, const py::object& b_hh, const py::object& peephole, int device,
          const py::object& dtype)
      : cell_(parse_cell(cell_name_)), device_(device) {
    if (device < 0) throw std::invalid_argument("device: expected an ordinal >= 0");
    DType given = DType::kF32;
    py::array wi = host_copy(w_ih, "w_ih"), wh = host_copy(w_hh, "w_hh", &given);
    if (wi.ndim() != 2 || wh.ndim() != 2)
      throw std::invalid_argument("w_ih and w_hh must be 2-D (G*H, I) and (G*H, H)");
    dtype_ = dtype.is_none() ? given : dtype_of(dtype);
    if (dtype_ == DType::kI32 || dtype_ == DType::kI64)
      throw py::type_error("w_hh: expected dtype float32, float64, bfloat16 or float16");
    if (is_16bit(dtype_)) {
      init_16bit(wi, wh, b_ih, b_hh, peephole);
      return;
    }
    const int64_t G = fastrnn::num_gates(cell_);
    hidden_ = wh.shape(1);
    input_ = wi.shape(1);
    if (hidden_ < 1 || input_ < 1)
      throw std::invalid_argument("w_ih, w_hh: input and hidden sizes must be >= 1");
    const int64_t GH = G * hidden_;
    check_host(wi, "w_ih", {GH, input_});
    check_host(wh, "w_hh", {GH, hidden_});
    w_ih_ = from_numpy(wi, device);
    w_hh_ = from_numpy(wh, device);
    const bool has_bi = !b_ih.is_none(), has_bh = !b_hh.is_none();
    if (has_bi != has_bh) throw std::invalid_argument("b_ih, b_hh: give both biases or neither");
    if (has_bi) {
      py::array bi = host_copy(b_ih, "b_ih"), bh = host_copy(b_hh, "b_hh");
      check_host(bi, "b_ih", {GH});
      check_host(bh, "b_hh", {GH});
      // b_ih + b_hh on the input side, except the cell's inner bias (the bias rule, cells/all.h)
      py::array bx = dtype_ == DType::kF32 ? input_bias<float>(bi, bh) : input_bias<double>(bi, bh);
      bias_x_ = std::make_unique<DeviceArray>(from_numpy(bx, device));
      if (const int g = fastrnn::cells::inner_bias_gate(cell_); g >= 0) {
        py::array bhn = py::array(bh[py::slice(g * hidden_, (g + 1) * hidden_, 1)]);
        b_hn_ = std::make_unique<DeviceArray>(from_numpy(bhn, device));
      }
      has_bias_ = true;
    }
    if (!peephole.is_none()) {
      if (!fastrnn::has_peephole(cell_))
        throw std::invalid_argument("peephole: only the LSTM has peephole weights");
      py::array p = host_copy(peephole, "peephole");
      check_host(p, "peephole", {3 * hidden_});
      peep_ = std::make_unique<DeviceArray>(from_numpy(p, device));
    }
  }

  std::string cell() const { return cell_name(cell_); }
  int64_t input_size() const { return input_; }
  int64_t hidden_size() const { return hidden_; }
  py::object dtype() const { return dtype_object(dtype_); }
  int device() const { return device_; }
  bool has_bias() const { return has_bias_; }
  bool has_peephole() const { return bool(peep_); }

  // Writes y (a [T, B, H] view, zero-filled by the caller), h_n, c_n; returns the context of a
  // training forward, else None.
  py::object forward(const py::object& x, const py::object& h0, const py::object& c0,
                     const py::object& lengths, bool reverse, bool training, const py::object& y,
                     const py::object& h_n, const py::object& c_n, const py::object& persistent) {
    const Expect ex{dtype_, device_};
    const int mode = persistent_mode(persistent);
    DeviceArray xa = as_device_array(x, "x");
    if (xa.shape.size() != 3)
      throw std::invalid_argument("x: expected a 3-D array (T, B, I=" + std::to_string(input_) +
                                  "), got shape " + shape_str(xa.shape));
    const int64_t Tn = xa.shape[0], B = xa.shape[1], H = hidden_;
    if (Tn < 1 || B < 1) throw std::invalid_argument("x: T and B must be >= 1");
    xa = check_arg(xa, "x", ex, {Tn, B, input_}, false, false);
    const bool lstm = fastrnn::has_cell_state(cell_);
    std::unique_ptr<DeviceArray> h0a, c0a, cna;
    if (!h0.is_none())
      h0a = std::make_unique<DeviceArray>(device_arg(h0, "h0", ex, {B, H}, false, true));
    if (!c0.is_none()) {
      if (!lstm) throw std::invalid_argument("c0: only the LSTM has a cell state");
      c0a = std::make_unique<DeviceArray>(device_arg(c0, "c0", ex, {B, H}, false, true));
    }
    DeviceArray ya = device_arg(y, "y", ex, {Tn, B, H}, true, false);
    DeviceArray hna = device_arg(h_n, "h_n", ex, {B, H}, true, true);
    if (lstm) {
      if (c_n.is_none()) throw std::invalid_argument("c_n: the LSTM needs a c_n output");
      cna = std::make_unique<DeviceArray>(device_arg(c_n, "c_n", ex, {B, H}, true, true));
    }
    // lengths: the forward's plan (made once for every layer and direction), or an array
    std::shared_ptr<const fastrnn::LengthsPlan> plan = fastrnn::given_plan(lengths, B, Tn);
    if (!plan && !lengths.is_none()) {
      auto l = py::array_t < int64_t, py::array::c_style | py::array::forcecast > ::ensure(lengths);
      if (!l || l.ndim() != 1 || l.shape(0) != B)
        throw std::invalid_argument("lengths: expected " + std::to_string(B) + " integers");
      plan = std::make_shared<const fastrnn::LengthsPlan>(fastrnn::lengths_plan(l.data(), B, Tn));
    }
    const gpu::Context ctx = dispatch_float(dtype_, [&](auto tag) {
      return run_forward<decltype(tag)>(xa, h0a.get(), c0a.get(), plan, reverse, training, ya, hna,
                                        cna.get(), mode);
    });
    if (!training) return py::none();
    return py::cast(ContextHandle{ctx});
  }

  // Writes dx (a [T, B, I] view: zero-filled by the caller, or accumulated into), dh0, dc0;
  // returns the weight gradients as new device arrays.
  py::dict backward(const ContextHandle& pc, const py::object& dy, const py::object& dh_n,
                    const py::object& dc_n, const py::object& dx, bool dx_accumulate,
                    const py::object& dh0, const py::object& dc0) {
    const gpu::Context& ctx = pc.ctx;
    if (ctx.itemsize != info(dtype_).itemsize || ctx.cell != cell_ || ctx.input != input_ ||
        ctx.hidden != hidden_ || ctx.device != device_)
      throw std::invalid_argument("ctx: it comes from a different layer");
    const Expect ex{dtype_, device_};
    const int64_t Tn = ctx.steps, B = ctx.batch, H = hidden_, I = input_;
    const int64_t GH = fastrnn::num_gates(cell_) * H;
    const bool lstm = fastrnn::has_cell_state(cell_);
    std::unique_ptr<DeviceArray> dya, dhna, dcna, dc0a;
    if (!dy.is_none())
      dya = std::make_unique<DeviceArray>(device_arg(dy, "dy", ex, {Tn, B, H}, false, false));
    if (!dh_n.is_none())
      dhna = std::make_unique<DeviceArray>(device_arg(dh_n, "dh_n", ex, {B, H}, false, true));
    if (!dc_n.is_none() && lstm)
      dcna = std::make_unique<DeviceArray>(device_arg(dc_n, "dc_n", ex, {B, H}, false, true));
    DeviceArray dxa = device_arg(dx, "dx", ex, {Tn, B, I}, true, false);
    DeviceArray dh0a = device_arg(dh0, "dh0", ex, {B, H}, true, true);
    if (lstm) {
      if (dc0.is_none()) throw std::invalid_argument("dc0: the LSTM needs a dc0 output");
      dc0a = std::make_unique<DeviceArray>(device_arg(dc0, "dc0", ex, {B, H}, true, true));
    }
    DeviceArray dw_ih = DeviceArray::empty({GH, I}, dtype_, device_);
    DeviceArray dw_hh = DeviceArray::empty({GH, H}, dtype_, device_);
    std::unique_ptr<DeviceArray> db_ih, db_hh, dpeep;
    if (has_bias_) {
      db_ih = std::make_unique<DeviceArray>(DeviceArray::empty({GH}, dtype_, device_));
      db_hh = std::make_unique<DeviceArray>(DeviceArray::empty({GH}, dtype_, device_));
    }
    if (peep_) dpeep = std::make_unique<DeviceArray>(DeviceArray::empty({3 * H}, dtype_, device_));
    dispatch_float(dtype_, [&](auto tag) {
      run_backward<decltype(tag)>(ctx, dya.get(), dhna.get(), dcna.get(), dxa, dx_accumulate, dh0a,
                                  dc0a.get(), dw_ih, dw_hh, db_ih.get(), db_hh.get(), dpeep.get());
    });
    py::dict g;
    g["w_ih"] = dw_ih;
    g["w_hh"] = dw_hh;
    g["b_ih"] = db_ih ? py::cast(*db_ih) : py::none();
    g["b_hh"] = db_hh ? py::cast(*db_hh) : py::none();
    g["peephole"] = dpeep ? py::cast(*dpeep) : py::none();
    return g;
  }

 private:
  // A host array of a weight given as NumPy, a torch CPU tensor or a device array (16-bit device
  // arrays come back widened to float32, exactly); `dt` gets the dtype as given.
  static py::array host_copy(const py::object& obj, const char* name, DType* dt = nullptr) {
    if (!py::isinstance<py::array>(obj) &&
        (py::isinstance<DeviceArray>(obj) || py::hasattr(obj, "__cuda_array_interface__") ||
         is_dlpack_device_array(obj))) {
      DeviceArray d = as_device_array(obj, name);
      if (dt) *dt = d.dtype;
      return is_16bit(d.dtype) ? d.numpy(py::str("float32")) : d.numpy();
    }
    py::array a = py::array::ensure(obj, py::array::c_style);
    if (!a) throw py::type_error(std::string(name) + ": expected an array");
    if (dt) *dt = dtype_from_name(py::str(a.dtype()), name);
    return a;
  }

  void check_shape(const py::array& a, const char* name, const std::vector<int64_t>& shape) const {
    std::vector<int64_t> got(a.shape(), a.shape() + a.ndim());
    if (got != shape)
      throw std::invalid_argument(std::string(name) + ": expected shape " + shape_str(shape) +
                                  ", got " + shape_str(got));
  }

  // The constructor for bfloat16 / float16 storage: any float host array is rounded once.
  void init_16bit(const py::array& wi, const py::array& wh, const py::object& b_ih,
                  const py::object& b_hh, const py::object& peephole) {
    const int64_t G = fastrnn::num_gates(cell_);
    hidden_ = wh.shape(1);
    input_ = wi.shape(1);
    if (hidden_ < 1 || input_ < 1)
      throw std::invalid_argument("w_ih, w_hh: input and hidden sizes must be >= 1");
    const int64_t GH = G * hidden_, H = hidden_;
    check_shape(wi, "w_ih", {GH, input_});
    check_shape(wh, "w_hh", {GH, hidden_});
    w_ih_ = upload(storage_bits(wi, dtype_, "w_ih").data(), {GH, input_}, dtype_, device_);
    w_hh_ = upload(storage_bits(wh, dtype_, "w_hh").data(), {GH, hidden_}, dtype_, device_);
    const bool has_bi = !b_ih.is_none(), has_bh = !b_hh.is_none();
    if (has_bi != has_bh) throw std::invalid_argument("b_ih, b_hh: give both biases or neither");
    if (has_bi) {
      py::array bi = host_copy(b_ih, "b_ih"), bh = host_copy(b_hh, "b_hh");
      check_shape(bi, "b_ih", {GH});
      check_shape(bh, "b_hh", {GH});
      const std::vector<uint16_t> i16 = storage_bits(bi, dtype_, "b_ih");
      const std::vector<uint16_t> h16 = storage_bits(bh, dtype_, "b_hh");
      std::vector<float> bx(size_t(GH), 0.0f);  // in float, from the rounded values
      for (int64_t i = 0; i < GH; ++i) {
        bx[i] = widen_bits(i16[i], dtype_);
        if (fastrnn::cells::folds_hidden_bias(cell_, i, H)) bx[i] += widen_bits(h16[i], dtype_);
      }
      bias_x_ = std::make_unique<DeviceArray>(upload(bx.data(), {GH}, DType::kF32, device_));
      if (const int g = fastrnn::cells::inner_bias_gate(cell_); g >= 0)
        b_hn_ = std::make_unique<DeviceArray>(upload(h16.data() + g * H, {H}, dtype_, device_));
      has_bias_ = true;
    }
    if (!peephole.is_none()) {
      if (!fastrnn::has_peephole(cell_))
        throw std::invalid_argument("peephole: only the LSTM has peephole weights");
      py::array p = host_copy(peephole, "peephole");
      check_shape(p, "peephole", {3 * H});
      peep_ = std::make_unique<DeviceArray>(
          upload(storage_bits(p, dtype_, "peephole").data(), {3 * H}, dtype_, device_));
    }
  }

  void check_host(const py::array& a, const char* name, const std::vector<int64_t>& shape) const {
    if (dtype_of(a.dtype()) != dtype_)
      throw py::type_error(std::string(name) + ": expected dtype " + info(dtype_).name + ", got " +
                           std::string(py::str(a.dtype())));
    std::vector<int64_t> got(a.shape(), a.shape() + a.ndim());
    if (got != shape)
      throw std::invalid_argument(std::string(name) + ": expected shape " + shape_str(shape) +
                                  ", got " + shape_str(got));
  }

  template <typename T>
  py::array input_bias(const py::array& bi, const py::array& bh) const {
    auto a = py::array_t<T, py::array::c_style>::ensure(bi);
    auto b = py::array_t<T, py::array::c_style>::ensure(bh);
    const int64_t GH = a.shape(0), H = hidden_;
    py::array_t<T> out(GH);
    for (int64_t i = 0; i < GH; ++i) {
      T v = a.data()[i];
      if (fastrnn::cells::folds_hidden_bias(cell_, i, H)) v += b.data()[i];
      out.mutable_data()[i] = v;
    }
    return out;
  }

  template <typename T>
  gpu::Weights<T> weights() const {
    gpu::Weights<T> w;
    w.cell = cell_;
    w.input = input_;
    w.hidden = hidden_;
    w.w_ih = w_ih_.data<T>();
    w.w_hh = w_hh_.data<T>();
    w.bias_x = ptr_or_null<fastrnn::accum_t<T>>(bias_x_.get());
    w.b_hn = ptr_or_null<T>(b_hn_.get());
    w.peep = ptr_or_null<T>(peep_.get());
    return w;
  }

  template <typename T>
  gpu::Context run_forward(const DeviceArray& x, const DeviceArray* h0, const DeviceArray* c0,
                           const std::shared_ptr<const fastrnn::LengthsPlan>& plan, bool reverse,
                           bool training, const DeviceArray& y, const DeviceArray& h_n,
                           const DeviceArray* c_n, int persistent) {
    gpu::ForwardIO<T> io;
    io.persistent = persistent;
    io.x = x.data<T>();
    io.x_st = x.strides[0];
    io.x_sb = x.strides[1];
    io.h0 = ptr_or_null<T>(h0);
    io.c0 = ptr_or_null<T>(c0);
    io.y = y.data<T>();
    io.y_st = y.strides[0];
    io.y_sb = y.strides[1];
    io.h_n = h_n.data<T>();
    io.c_n = c_n ? c_n->data<T>() : nullptr;
    io.steps = x.shape[0];
    io.batch = x.shape[1];
    const gpu::Weights<T> w = weights<T>();
    py::gil_scoped_release nogil;
    return gpu::forward<T>(device_, w, io, plan, reverse, training);
  }

  template <typename T>
  void run_backward(const gpu::Context& ctx, const DeviceArray* dy, const DeviceArray* dh_n,
                    const DeviceArray* dc_n, const DeviceArray& dx, bool dx_accumulate,
                    const DeviceArray& dh0, const DeviceArray* dc0, const DeviceArray& dw_ih,
                    const DeviceArray& dw_hh, const DeviceArray* db_ih, const DeviceArray* db_hh,
                    const DeviceArray* dpeep) {
    gpu::BackwardIO<T> io;
    io.dy = ptr_or_null<T>(dy);
    if (dy) {
      io.dy_st = dy->strides[0];
      io.dy_sb = dy->strides[1];
    }
    io.dh_n = ptr_or_null<T>(dh_n);
    io.dc_n = ptr_or_null<T>(dc_n);
    io.dx = dx.data<T>();
    io.dx_st = dx.strides[0];
    io.dx_sb = dx.strides[1];
    io.dx_accumulate = dx_accumulate;
    io.dh0 = dh0.data<T>();
    io.dc0 = dc0 ? dc0->data<T>() : nullptr;
    io.dw_ih = dw_ih.data<T>();
    io.dw_hh = dw_hh.data<T>();
    io.db_ih = db_ih ? db_ih->data<T>() : nullptr;
    io.db_hh = db_hh ? db_hh->data<T>() : nullptr;
    io.dpeep = dpeep ? dpeep->data<T>() : nullptr;
    const gpu::Weights<T> w = weights<T>();
    py::gil_scoped_release nogil;
    gpu::backward<T>(device_, w, ctx, io);
  }

  Cell cell_;
  int device_;
  DType dtype_ = DType::kF32;
  int64_t input_ = 0, hidden_ = 0;
  bool has_bias_ = false;
  DeviceArray w_ih_, w_hh_;
  std::unique_ptr<DeviceArray> bias_x_, b_hn_, peep_;  // bias_x_: float for the 16-bit types
};
