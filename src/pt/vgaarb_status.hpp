// The VGA arbiter's status line, as drivers/pci/vgaarb.c (vga_arb_read)
// prints it. Kept free of the kit's Result type so that the libFuzzer target
// builds with any clang, whatever its C++23 library support.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pt::vga {

// Legacy VGA resources as bits: the arbiter's io, mem and io+mem.
inline constexpr unsigned kIo = 1;
inline constexpr unsigned kMem = 2;
inline constexpr unsigned kIoMem = kIo | kMem;

// "none", "io", "mem", "io+mem": the kernel's vga_iostate_to_str.
const char* state_name(unsigned state);
// The inverse, exactly those four words; nullopt for anything else.
std::optional<unsigned> parse_state(std::string_view text);

struct Status {
  bool valid = false;  // false: the kernel printed "invalid" (no target, or the card is gone)
  int count = 0;       // VGA devices that decode legacy resources (vga_decode_count)
  std::string device;  // the target, "0000:01:00.0"
  unsigned decodes = 0;
  unsigned owns = 0;
  unsigned locks = 0;
  unsigned io_locks = 0;  // the (io:mem) lock counts
  unsigned mem_locks = 0;
};

// Parses "count:%d,PCI:%s,decodes=%s,owns=%s,locks=%s(%u:%u)" with an
// optional trailing newline, or "invalid". Numbers as printf prints them (no
// sign but count's '-', no leading zeros), so that a parsed line formats back
// to itself. nullopt for anything else.
std::optional<Status> parse_status(std::string_view text);

// The kernel's format, without the newline ("invalid" for an invalid status).
std::string format_status(const Status& status);

}  // namespace pt::vga
