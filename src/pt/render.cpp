#include "pt/render.hpp"

#include <cstdio>

#include "pt/address.hpp"

namespace pt::render {

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::string class_hex(uint16_t class_id) { return hex4(class_id); }

void emit(std::ostream& out, const json& doc) {
  out << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}
std::string quote(std::string_view s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\\' || c == '\'')
      out += std::string("\\") + char(c);
    else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else
      out += char(c);
  }
  return out + "'";
}


void Table::row(const std::vector<std::string>& cells) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i)
    line += i + 1 < cells.size() && i < widths_.size() ? pad(printable(cells[i]), widths_[i])
                                                       : printable(cells[i]);
  text_ += line + "\n";
}

}  // namespace pt::render
