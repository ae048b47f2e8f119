// cells/cells.h: the cells for baseline and CUDA code, in namespace fastrnn::cells (see
// cells/all.h). The per-ISA kernels include cells/all.h in their own namespace instead.
#pragma once

#include <stdint.h>

#include "cells/math.h"
#include "fastrnn.h"

namespace fastrnn {
namespace cells {
#include "cells/all.h"
}  // namespace cells

// The baseline code's names for the cells' sizes.
using cells::cache_width;
using cells::has_cell_state;
using cells::has_peephole;
using cells::num_gates;

}  // namespace fastrnn
