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

int get_num_threads();
void set_num_threads(int n);

}  // namespace fastrnn
