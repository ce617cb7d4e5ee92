// What every command prints through: padded text columns and JSON values.
// Commands build rows and documents from engine results; nothing else in
// libpt formats output.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "pt/error.hpp"
#include "pt/wait.hpp"

namespace pt::render {

using json = nlohmann::json;

// Every command's text output goes through printable (error.hpp), so no
// string from sysfs or /proc reaches the terminal raw.
using pt::printable;

// null for an empty string: "no driver" is null in JSON, not "".
inline json nullable(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

// S padded with spaces to WIDTH; never cut, so a long value shifts its row.
inline std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string join(const std::vector<std::string>& v, const char* sep);

// "0300": a PCI class as lspci prints it.
std::string class_hex(uint16_t class_id);

// S in single quotes for a message, with control characters, quotes and
// backslashes as C escapes ('\n', '\x1b'), so a value from a file or the
// command line can neither break a line nor hide what it holds.
std::string quote(std::string_view s);

// A document as every tool prints it: two-space indent, one trailing newline.
// Bytes that are not UTF-8 (a process name is any bytes) become U+FFFD
// instead of aborting the dump.
void emit(std::ostream& out, const json& doc);

// A wait shorter than this is not shown: most are over at once.
inline constexpr std::chrono::milliseconds kProgressAfter{300};

// "waiting for WHAT ... 2.3 s of 10 s": one progress line, without the
// tool's name.
std::string progress_text(const Wait& w);

// The progress printer every tool installs on a terminal (tools/common):
// nothing for a wait shorter than kProgressAfter, then one line on ERR,
// "TOOL: waiting for WHAT ... 2.3 s of 10 s", rewritten in place with \r.
// When the wait ends the line is cleared if it succeeded, or kept and ended
// with a newline if not, so the error that follows has its own line.
WaitObserver progress_printer(const std::string& tool, std::ostream& err);

// Rows of text under fixed column widths (the last column is not padded).
class Table {
 public:
  explicit Table(std::vector<size_t> widths) : widths_(std::move(widths)) {}
  void row(const std::vector<std::string>& cells);
  void write(std::ostream& out) const { out << text_; }
  const std::string& text() const { return text_; }

 private:
  std::vector<size_t> widths_;
  std::string text_;
};

}  // namespace pt::render
