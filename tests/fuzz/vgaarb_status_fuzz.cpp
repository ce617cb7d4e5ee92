// libFuzzer target for the VGA arbiter's status-line parser. Properties: no
// crash or sanitizer report on any input, and a line the parser accepts
// formats back to itself (without its newline), so nothing is accepted that
// the kernel's printf could not have printed.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pt/vgaarb_status.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto st = pt::vga::parse_status(in);
  if (!st) return 0;
  std::string_view body = in;
  if (!body.empty() && body.back() == '\n') body.remove_suffix(1);
  if (pt::vga::format_status(*st) != body) std::abort();
  auto again = pt::vga::parse_status(pt::vga::format_status(*st));
  if (!again || again->valid != st->valid || again->count != st->count ||
      again->device != st->device || again->decodes != st->decodes || again->owns != st->owns ||
      again->locks != st->locks || again->io_locks != st->io_locks ||
      again->mem_locks != st->mem_locks)
    std::abort();
  return 0;
}
