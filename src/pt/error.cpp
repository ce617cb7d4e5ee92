#include "pt/error.hpp"

#include <cstring>

namespace pt {

std::string Error::describe() const {
  std::string out;
  if (!subject.empty()) out = subject + ": ";
  // The errno belongs to the first line; later lines carry state tables.
  auto nl = message.find('\n');
  out += message.substr(0, nl);
  if (err != 0) {
    out += " (";
    out += std::strerror(err);
    out += ")";
  }
  if (nl != std::string::npos) out += message.substr(nl);
  return out;
}

}  // namespace pt
