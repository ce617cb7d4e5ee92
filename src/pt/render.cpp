#include "pt/render.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>

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

std::string progress_text(const Wait& w) {
  char buf[64];
  if (w.limit.count() > 0)
    std::snprintf(buf, sizeof buf, " ... %.1f s of %g s", double(w.elapsed.count()) / 1000.0,
                  double(w.limit.count()) / 1000.0);
  else
    std::snprintf(buf, sizeof buf, " ... %.1f s", double(w.elapsed.count()) / 1000.0);
  return printable("waiting for " + w.what) + buf;
}

WaitObserver progress_printer(const std::string& tool, std::ostream& err) {
  // How wide the line on screen is, so a shorter one overwrites all of it;
  // 0: nothing shown.
  auto shown = std::make_shared<size_t>(0);
  return [tool, &err, shown](const Wait& w) {
    if (w.elapsed < kProgressAfter && *shown == 0) return;
    if (w.phase == Wait::Phase::end && w.ok) {
      err << "\r" << std::string(*shown, ' ') << "\r" << std::flush;
      *shown = 0;
      return;
    }
    std::string line = printable(tool) + ": " + progress_text(w);
    const size_t width = line.size();
    if (width < *shown) line.append(*shown - width, ' ');
    err << "\r" << line;
    if (w.phase == Wait::Phase::end) {
      err << "\n";
      *shown = 0;
    } else {
      *shown = std::max(width, *shown);
    }
    err << std::flush;
  };
}

void Table::row(const std::vector<std::string>& cells) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i)
    line += i + 1 < cells.size() && i < widths_.size() ? pad(printable(cells[i]), widths_[i])
                                                       : printable(cells[i]);
  text_ += line + "\n";
}

}  // namespace pt::render
