// dispatch.h: which ISA's kernels run, and how many threads they use. Baseline-compiled.
#pragma once

#include <string>
#include <vector>

#include "fastrnn.h"

namespace fastrnn {

// The kernels in use: the best ISA this CPU supports, or FASTRNN_ISA / set_isa's choice.
const KernelTable& kernels();
template <typename T>
const Kernels<T>& kernels_for();

std::vector<std::string> compiled_isas();
std::vector<std::string> supported_isas();  // compiled and runnable on this CPU
std::string active_isa();
void set_isa(const std::string& name);  // std::invalid_argument if unknown or unsupported

// Threads. Every parallel region's team size comes from get_num_threads() or cap_threads(): the
// one place where a count is bounded. In a process forked after a team of two or more threads
// ran, kernels use one thread: libgomp's pool does not survive fork (a second team would wait for
// ever on the parent's threads), while a one-thread region never touches the pool.
constexpr int kMaxThreads = 512;
int get_num_threads();            // the count set_num_threads asked for, capped as above
void set_num_threads(int64_t n);  // std::invalid_argument outside [1, kMaxThreads]
int cap_threads(int64_t wanted);  // wanted clamped to [1, kMaxThreads], and 1 after such a fork

}  // namespace fastrnn
