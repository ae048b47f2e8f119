// cell_names.h: the cells' names as the Python side spells them. Baseline code only (bindings and
// drivers); the ISA-compiled sources never include it.
#pragma once

#include <stdexcept>
#include <string>

#include "fastrnn.h"

namespace fastrnn {

inline Cell parse_cell(const std::string& name) {
  if (name == "rnn_tanh") return Cell::kRnnTanh;
  if (name == "rnn_relu") return Cell::kRnnRelu;
  if (name == "gru") return Cell::kGru;
  if (name == "gru_reset_before") return Cell::kGruResetBefore;
  if (name == "lstm") return Cell::kLstm;
  throw std::invalid_argument("cell: expected one of rnn_tanh, rnn_relu, gru, gru_reset_before, "
                              "lstm, got '" + name + "'");
}

inline const char* cell_name(Cell cell) {
  switch (cell) {
    case Cell::kRnnTanh: return "rnn_tanh";
    case Cell::kRnnRelu: return "rnn_relu";
    case Cell::kGru: return "gru";
    case Cell::kGruResetBefore: return "gru_reset_before";
    case Cell::kLstm: return "lstm";
  }
  return "?";
}

}  // namespace fastrnn
