#include "pt/vgaarb_status.hpp"

#include <cstdint>

namespace pt::vga {

const char* state_name(unsigned state) {
  switch (state & kIoMem) {
    case kIoMem:
      return "io+mem";
    case kIo:
      return "io";
    case kMem:
      return "mem";
  }
  return "none";
}

std::optional<unsigned> parse_state(std::string_view text) {
  if (text == "none") return 0u;
  if (text == "io") return kIo;
  if (text == "mem") return kMem;
  if (text == "io+mem") return kIoMem;
  return std::nullopt;
}

namespace {

// A cursor over the line; every step either consumes what it expects or fails.
struct Cursor {
  std::string_view s;
  bool literal(std::string_view lit) {
    if (s.substr(0, lit.size()) != lit) return false;
    s.remove_prefix(lit.size());
    return true;
  }
  // Decimal as %u prints it: "0" or no leading zero, at most UINT32_MAX.
  std::optional<uint32_t> number() {
    size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
    if (n == 0 || n > 10 || (n > 1 && s[0] == '0')) return std::nullopt;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = v * 10 + uint64_t(s[i] - '0');
    if (v > UINT32_MAX) return std::nullopt;
    s.remove_prefix(n);
    return uint32_t(v);
  }
  // One of the four state words, longest first ("io+mem" before "io").
  std::optional<unsigned> state() {
    for (const char* w : {"io+mem", "none", "mem", "io"})
      if (literal(w)) return parse_state(w);
    return std::nullopt;
  }
};

bool hex_digits(std::string_view s, size_t min, size_t max) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// pci_name(): "%04x:%02x:%02x.%d" (the domain may be wider, as VMD's 10000).
bool pci_name(std::string_view s) {
  auto c1 = s.find(':');
  if (c1 == std::string_view::npos || !hex_digits(s.substr(0, c1), 4, 8)) return false;
  s.remove_prefix(c1 + 1);
  return s.size() == 7 && hex_digits(s.substr(0, 2), 2, 2) && s[2] == ':' &&
         hex_digits(s.substr(3, 2), 2, 2) && s[5] == '.' && s[6] >= '0' && s[6] <= '7';
}

}  // namespace

std::optional<Status> parse_status(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  Status st;
  if (text == "invalid") return st;
  Cursor c{text};
  if (!c.literal("count:")) return std::nullopt;
  bool negative = c.literal("-");
  auto count = c.number();
  if (!count || *count > uint32_t(INT32_MAX) + (negative ? 1u : 0u) || (negative && *count == 0))
    return std::nullopt;
  st.count = negative ? int(-int64_t(*count)) : int(*count);
  if (!c.literal(",PCI:")) return std::nullopt;
  auto comma = c.s.find(',');
  if (comma == std::string_view::npos || !pci_name(c.s.substr(0, comma))) return std::nullopt;
  st.device = std::string(c.s.substr(0, comma));
  c.s.remove_prefix(comma);
  std::optional<unsigned> decodes, owns, locks;
  if (!c.literal(",decodes=") || !(decodes = c.state())) return std::nullopt;
  if (!c.literal(",owns=") || !(owns = c.state())) return std::nullopt;
  if (!c.literal(",locks=") || !(locks = c.state())) return std::nullopt;
  if (!c.literal("(")) return std::nullopt;
  auto io = c.number();
  if (!io || !c.literal(":")) return std::nullopt;
  auto mem = c.number();
  if (!mem || !c.literal(")") || !c.s.empty()) return std::nullopt;
  st.valid = true;
  st.decodes = *decodes;
  st.owns = *owns;
  st.locks = *locks;
  st.io_locks = *io;
  st.mem_locks = *mem;
  return st;
}

std::string format_status(const Status& st) {
  if (!st.valid) return "invalid";
  return "count:" + std::to_string(st.count) + ",PCI:" + st.device +
         ",decodes=" + state_name(st.decodes) + ",owns=" + state_name(st.owns) +
         ",locks=" + state_name(st.locks) + "(" + std::to_string(st.io_locks) + ":" +
         std::to_string(st.mem_locks) + ")";
}

}  // namespace pt::vga
