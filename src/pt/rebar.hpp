// Resizable BAR: the capability's decoding (PCIe r6.0 sec 7.8.6), sizes as a
// person writes them ("256M", "8G"), and resizing a BAR through the
// kernel's resourceN_resize attribute (Linux 6.1 and later) while no driver
// holds the function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pt/address.hpp"
#include "pt/error.hpp"
#include "pt/pci_config.hpp"
#include "pt/root.hpp"

namespace pt::rebar {

inline constexpr uint16_t kExtCapRebar = 0x0015;
// The VF Resizable BAR capability sizes the BARs of SR-IOV virtual
// functions; pt never resizes those, so it is not decoded.
inline constexpr uint16_t kExtCapVfRebar = 0x0024;
// The first kernel with resourceN_resize (Alex Williamson, "PCI: Expose PCIe
// Resizable BAR support via sysfs", merged for 6.1).
inline constexpr const char* kResizeKernel = "6.1";

// A size is its encoding in the capability: 2^size MiB (0 = 1M ... 43 = 8E).
inline constexpr int kMaxSize = 43;

struct Bar {
  int index = 0;           // the BAR, 0..5
  uint64_t supported = 0;  // bit N: a 2^N MiB BAR is supported
  int current = 0;         // the size programmed now
  uint16_t control = 0;    // offset of the entry's control register

  bool operator==(const Bar&) const = default;
};

// Every BAR the capability describes, or an empty vector without one.
// Answer only when config.ext_caps_unreadable() is nullopt.
std::vector<Bar> decode(const ConfigSpace& config);

// "1M", "256M", "8G", "1T".
std::string size_name(int size);
// "256M 512M 1G": every size set in MASK.
std::string size_list(uint64_t mask);
// TEXT as a size: a power of two of at least 1 MiB with a unit M, G, T, P or
// E (MB, MiB, GB ... too, any case). A usage error names TEXT otherwise.
Result<int> parse_size(const std::string& text, const std::string& subject);

// One BAR to resize: "0=8G".
struct Request {
  int bar = 0;
  int size = 0;
  bool operator==(const Request&) const = default;
};
Result<Request> parse_request(const std::string& text, const std::string& subject);

// /sys/bus/pci/devices/BDF/resourceN_resize
std::string resize_path(const PciAddress& addr, int bar);

// The function's ReBAR BARs, read from its config space (4096 bytes: run as
// root). An Error when the extended capabilities cannot be read.
Result<std::vector<Bar>> read(const Root& root, const PciAddress& addr);

// Refuses (exit 2) a request the function cannot take: no ReBAR
// capability, no such BAR in it, a size it does not support (the message
// lists those it does). Then refuses (exit 1) a kernel without
// resourceN_resize, naming the kernel version that has it.
Status check(const Root& root, const PciAddress& addr, const std::vector<Bar>& bars,
             const Request& request);

// The BAR of BARS with INDEX, or null.
const Bar* find(const std::vector<Bar>& bars, int index);

}  // namespace pt::rebar
