// cell_names.h: the cells' names as the Python side spells them (each cell's kName). Baseline code
// only (bindings and drivers); the ISA-compiled sources never include it.
#pragma once

#include <stdexcept>
#include <string>

#include "cells/cells.h"
#include "fastrnn.h"

namespace fastrnn {

using cells::cell_name;

inline Cell parse_cell(const std::string& name) {
  std::string all;
  for (int i = 0; i < kNumCells; ++i) {
    const Cell c = Cell(i);
    if (name == cell_name(c)) return c;
    all += std::string(i ? ", " : "") + cell_name(c);
  }
  throw std::invalid_argument("cell: expected one of " + all + ", got '" + name + "'");
}

}  // namespace fastrnn
