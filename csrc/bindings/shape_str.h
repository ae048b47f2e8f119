// shape_str.h: shapes in error messages, written as Python writes tuples: (2, 3), (5,), ().
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace fastrnn {

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "(";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << (s.size() == 1 ? ",)" : ")");
  return o.str();
}

}  // namespace fastrnn
