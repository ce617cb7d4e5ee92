#include "pt/error.hpp"

#include <cstring>

namespace pt {

std::string Error::describe() const {
  std::string out;
  if (!subject.empty()) out = subject + ": ";
  out += message;
  if (err != 0) {
    out += " (";
    out += std::strerror(err);
    out += ")";
  }
  return out;
}

}  // namespace pt
