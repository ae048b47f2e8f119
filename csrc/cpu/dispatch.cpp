// dispatch.cpp: detects the CPU once (cpuid, and xgetbv for the OS's register state) and picks
// one function table. Compiled for baseline x86-64 only: nothing here may use AVX.
#include "cpu/dispatch.h"

#include <cpuid.h>
#include <omp.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace fastrnn {
namespace scalar {
KernelTable table();
}
namespace avx2 {
KernelTable table();
}
namespace avx512 {
KernelTable table();
KernelTable table_bf16();
}  // namespace avx512
namespace amx {
KernelTable table();
}

namespace {

uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

// Linux keeps AMX's 8 KiB of tile data out of a thread's saved state until the process asks for
// it; a tile instruction before that faults. Granted once for the whole process.
bool request_amx_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

struct CpuFeatures {
  bool avx2 = false;
  bool avx512 = false;
  bool avx512_bf16 = false;
  bool amx_bf16 = false;  // AMX-TILE and AMX-BF16, the OS saving tile state, permission granted
  CpuFeatures() {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12);
    if (!osxsave || !avx) return;
    const uint64_t xcr0 = xgetbv0();
    const bool ymm_state = (xcr0 & 0x6) == 0x6;
    const bool zmm_state = (xcr0 & 0xE6) == 0xE6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    avx2 = ymm_state && fma && (b & (1u << 5));
    const bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    avx512 = avx2 && zmm_state && f && dq && bw && vl;
    const bool amx_tile = d & (1u << 24), amx_bf16_ops = d & (1u << 22);
    const bool tile_state = (xcr0 & 0x60000) == 0x60000;  // XTILECFG, XTILEDATA
    const unsigned max_sub = a;
    if (avx512 && max_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
      avx512_bf16 = a & (1u << 5);
    amx_bf16 = avx512_bf16 && amx_tile && amx_bf16_ops && tile_state && request_amx_permission();
  }
};

// The ISAs from the most portable to the fastest; the default is the last this CPU supports.
// A table is made by code compiled for its ISA, so only a supported ISA's factory is ever
// called: before that check, no instruction beyond baseline x86-64 may run.
struct IsaEntry {
  const char* name;
  KernelTable (*make)();
};
constexpr IsaEntry kIsas[] = {{"scalar", scalar::table},
                              {"avx2", avx2::table},
                              {"avx512", avx512::table},
                              {"avx512_bf16", avx512::table_bf16},
                              {"amx_bf16", amx::table}};
constexpr int kTables = sizeof(kIsas) / sizeof(kIsas[0]);

struct Registry {
  KernelTable tables[kTables] = {};
  bool supported[kTables] = {};
  std::atomic<int> active{0};
  Registry() {
    CpuFeatures cpu;
    supported[0] = true;
    supported[1] = cpu.avx2;
    supported[2] = cpu.avx512;
    supported[3] = cpu.avx512_bf16;
    supported[4] = cpu.amx_bf16;
    for (int i = 0; i < kTables; ++i) {
      if (!supported[i]) continue;
      tables[i] = kIsas[i].make();
      active = i;
    }
    if (const char* env = std::getenv("FASTRNN_ISA")) {
      if (*env) active = index_of(env);  // throws for an unknown or unsupported name
    }
  }
  int index_of(const std::string& name) const {
    std::string names;
    for (int i = 0; i < kTables; ++i) {
      names += std::string(i ? ", " : "") + kIsas[i].name;
      if (name != kIsas[i].name) continue;
      if (!supported[i])
        throw std::invalid_argument("ISA '" + name +
                                    "' is compiled but this CPU does not support it");
      return i;
    }
    throw std::invalid_argument("unknown ISA '" + name + "': expected one of " + names);
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

std::atomic<int>& thread_count() {
  static std::atomic<int> n{[] {
    int p = omp_get_num_procs();
    return p < 1 ? 1 : p > kMaxThreads ? kMaxThreads : p;
  }()};
  return n;
}

std::atomic<bool> team_started{false};  // a parallel region of >= 2 threads may have run
std::atomic<bool> single_after_fork{false};

const bool fork_handler_installed = [] {
  pthread_atfork(nullptr, nullptr, [] {
    if (team_started.load()) single_after_fork = true;
  });
  return true;
}();

}  // namespace

const KernelTable& kernels() {
  Registry& r = registry();
  return r.tables[r.active.load()];
}

template <>
const Kernels<float>& kernels_for<float>() {
  return kernels().f32;
}
template <>
const Kernels<double>& kernels_for<double>() {
  return kernels().f64;
}

std::vector<std::string> compiled_isas() {
  std::vector<std::string> out;
  for (const IsaEntry& e : kIsas) out.push_back(e.name);
  return out;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  Registry& r = registry();
  for (int i = 0; i < kTables; ++i)
    if (r.supported[i]) out.push_back(kIsas[i].name);
  return out;
}

std::string active_isa() { return kernels().name; }

void set_isa(const std::string& name) {
  Registry& r = registry();
  r.active = r.index_of(name);
}

int cap_threads(int64_t wanted) {
  if (wanted <= 1 || single_after_fork.load()) return 1;
  team_started = true;
  return wanted > kMaxThreads ? kMaxThreads : int(wanted);
}

int get_num_threads() { return cap_threads(thread_count().load()); }

void set_num_threads(int64_t n) {
  if (n < 1 || n > kMaxThreads)
    throw std::invalid_argument("num_threads: expected an integer in [1, " +
                                std::to_string(kMaxThreads) + "], got " + std::to_string(n));
  thread_count() = int(n);
}

}  // namespace fastrnn
