// cpu/isa/schedule.h: the stage-by-stage scheduler of the recurrence (Stages) and its waits.
// Part of the one translation unit per ISA: included by cpu/isa/kernels.cpp inside
// fastrnn::<isa>::(anonymous), so it has no namespace, no include guard and no includes.

// Stage-by-stage scheduling of the recurrence. A stage is one pass over the nb hidden-unit blocks
// (one step, or one half of a reset-before GRU step) and starts when the previous stage is
// complete. Each thread takes the blocks of its own range first (their weight panels stay in its L2
// from step to step), then takes what is left in the other ranges, so a thread that the OS
// deschedules holds up a step by at most the one block it was working on. Waiting spins briefly,
// then yields, then sleeps: a barrier that only spins collapses when another process takes a core.
struct alignas(64) Counter {
  int64_t v;
};

// Spin for up to ~100k TSC ticks (tens of microseconds: about one block's work, the usual
// imbalance between threads within a step when both have a core), then yield for ~2M ticks, then
// sleep 20 us at a time. A pause is 10 to 140 cycles depending on the CPU, so the budget is
// counted in time, not in pauses.
inline void wait_until(const int64_t* p, int64_t target) {
  if (__atomic_load_n(p, __ATOMIC_ACQUIRE) >= target) return;
  const uint64_t start = __rdtsc();
  while (__atomic_load_n(p, __ATOMIC_ACQUIRE) < target) {
    const uint64_t waited = __rdtsc() - start;
    if (waited < 100000) {
      __builtin_ia32_pause();
    } else if (waited < 2000000) {
      sched_yield();
    } else {
      struct timespec ts = {0, 20000};
      nanosleep(&ts, nullptr);
    }
  }
}

class Stages {
 public:
  Stages(int64_t nb, int threads) : nb_(nb), nt_(threads), claim_(new Counter[threads]) {
    for (int r = 0; r < nt_; ++r) claim_[r].v = 0;
    done_.v = 0;
  }
  ~Stages() { delete[] claim_; }

  // f(stage, block) for every block of every stage on `threads` threads; one thread runs them in
  // order without a team (a streaming step is a few microseconds: no region, no allocation).
  template <typename F>
  static void parallel(int64_t nb, int threads, int64_t stages, F&& f) {
    if (threads <= 1) {
      for (int64_t st = 0; st < stages; ++st)
        for (int64_t jb = 0; jb < nb; ++jb) f(st, jb);
      return;
    }
    Stages work(nb, threads);
#pragma omp parallel num_threads(threads)
    work.run(omp_get_thread_num(), stages, f);
  }

 private:
  // f(stage, block) for every block of every stage, as thread tid of nt_
  template <typename F>
  void run(int tid, int64_t stages, F&& f) {
    for (int64_t st = 0; st < stages; ++st) {
      wait_until(&done_.v, st * nb_);
      for (int k = 0; k < nt_; ++k) {
        const int r = (tid + k) % nt_;
        const int64_t b0 = nb_ * r / nt_, size = nb_ * (r + 1) / nt_ - b0;
        if (size == 0) continue;
        for (;;) {
          int64_t c = __atomic_load_n(&claim_[r].v, __ATOMIC_RELAXED);
          if (c >= (st + 1) * size) break;
          if (!__atomic_compare_exchange_n(&claim_[r].v, &c, c + 1, false, __ATOMIC_ACQ_REL,
                                           __ATOMIC_RELAXED))
            continue;
          f(st, b0 + c - st * size);
          __atomic_fetch_add(&done_.v, 1, __ATOMIC_RELEASE);
        }
      }
    }
  }

  int64_t nb_;
  int nt_;
  Counter* claim_;
  Counter done_;
};
