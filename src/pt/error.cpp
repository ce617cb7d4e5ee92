#include "pt/error.hpp"

#include <cstdio>
#include <cstring>

namespace pt {

std::string printable(std::string_view s, bool keep_lines, std::string_view also) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c < 0x20 && !(keep_lines && c == '\n')) || c == 0x7f ||
        also.find(char(c)) != std::string_view::npos) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out;
}

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
  // A subject or message may carry a process name or an attribute's bytes.
  return printable(out, true);
}

}  // namespace pt
