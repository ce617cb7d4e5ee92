#include "pt/address.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <vector>

namespace pt {

std::string PciAddress::str() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%u", domain, bus, dev, unsigned(func));
  return buf;
}

namespace {

bool parse_hex(std::string_view s, size_t max_digits, uint32_t max_value, uint32_t& out) {
  if (s.empty() || s.size() > max_digits) return false;
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || end != s.data() + s.size() || v > max_value) return false;
  out = v;
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

}  // namespace

Result<DeviceSpec> parse_device_spec(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  auto bad = [&](std::string why) {
    return usage_error(quoted, "not a PCI device: " + why +
                                   "; write DOMAIN:BUS:DEV.FN (0000:3b:00.0), BUS:DEV.FN "
                                   "(3b:00.0) or BUS:DEV (3b:00, every function of the slot)");
  };
  if (text.empty()) return bad("empty");
  std::string_view fn_part;
  std::string_view head = text;
  if (auto dot = text.rfind('.'); dot != std::string_view::npos) {
    fn_part = text.substr(dot + 1);
    head = text.substr(0, dot);
  }
  auto parts = split(head, ':');
  DeviceSpec spec;
  spec.input = std::string(text);
  uint32_t domain = 0, bus = 0, dev = 0, fn = 0;
  if (parts.size() == 3) {
    if (!parse_hex(parts[0], 8, 0xffffffffu, domain)) return bad("bad domain");
  } else if (parts.size() != 2) {
    return bad("wrong number of ':' separators");
  }
  const auto& bus_s = parts[parts.size() - 2];
  const auto& dev_s = parts[parts.size() - 1];
  if (!parse_hex(bus_s, 2, 0xff, bus)) return bad("bus must be 00-ff");
  if (!parse_hex(dev_s, 2, 0x1f, dev)) return bad("device must be 00-1f");
  if (text.find('.') != std::string_view::npos) {
    if (fn_part.size() != 1 || !parse_hex(fn_part, 1, 7, fn)) return bad("function must be 0-7");
    spec.func = static_cast<uint8_t>(fn);
  }
  spec.domain = domain;
  spec.bus = static_cast<uint8_t>(bus);
  spec.dev = static_cast<uint8_t>(dev);
  return spec;
}

std::optional<PciAddress> parse_sysfs_name(std::string_view name) {
  auto spec = parse_device_spec(name);
  if (!spec || !spec->func || std::count(name.begin(), name.end(), ':') != 2) return std::nullopt;
  return PciAddress{spec->domain, spec->bus, spec->dev, *spec->func};
}

std::string hex4(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", v);
  return buf;
}

}  // namespace pt
