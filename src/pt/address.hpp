// PCI addresses as users type them and as sysfs names them.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pt/error.hpp"

namespace pt {

struct PciAddress {
  uint32_t domain = 0;
  uint8_t bus = 0;
  uint8_t dev = 0;
  uint8_t func = 0;

  std::string str() const;  // "0000:3b:00.0"
  bool same_slot(const PciAddress& o) const {
    return domain == o.domain && bus == o.bus && dev == o.dev;
  }
  auto operator<=>(const PciAddress&) const = default;
};

// What a user named on the command line: one function or a whole slot.
struct DeviceSpec {
  uint32_t domain = 0;
  uint8_t bus = 0;
  uint8_t dev = 0;
  std::optional<uint8_t> func;  // empty: every function of the slot
  std::string input;            // as typed, for messages

  bool matches(const PciAddress& a) const {
    return a.domain == domain && a.bus == bus && a.dev == dev && (!func || *func == a.func);
  }
};

// Accepts "0000:3b:00.0", "3b:00.0" (domain 0) and "3b:00" (the slot).
// Anything else is a usage error that quotes the input.
Result<DeviceSpec> parse_device_spec(std::string_view text);

// "10de", "0300": a vendor, device or class id as lspci and sysfs spell it.
std::string hex4(uint16_t v);

// Parses a full sysfs name such as "0000:3b:00.0"; nullopt for anything else.
std::optional<PciAddress> parse_sysfs_name(std::string_view name);

}  // namespace pt
