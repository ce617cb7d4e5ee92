// libFuzzer target for the PCI address parsers: parse_device_spec (every DEV
// a tool takes: 0000:3b:00.0, 3b:00.0, 3b:00) and parse_sysfs_name (the
// kernel's names). Properties: no crash or sanitizer report; an accepted
// input is made of hex digits, ':' and '.' only (no sign, space or newline
// slips through from_chars); its fields are in range; and its canonical
// spelling parses back to the same value (round trip).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pt/address.hpp"

namespace {

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "property violated: %s\n", what);
  std::abort();
}

bool only_address_chars(std::string_view s) {
  for (char c : s) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex && c != ':' && c != '.') return false;
  }
  return true;
}

// The spelling pt prints for a spec: a function as PciAddress::str(), a slot
// as its first two fields.
std::string canonical(const pt::DeviceSpec& s) {
  if (s.func) return pt::PciAddress{s.domain, s.bus, s.dev, *s.func}.str();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x", s.domain, unsigned(s.bus), unsigned(s.dev));
  return buf;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  auto spec = pt::parse_device_spec(in);
  if (spec) {
    check(!in.empty() && only_address_chars(in), "accepted a character outside [0-9a-fA-F:.]");
    check(spec->dev <= 0x1f, "device number above 0x1f");
    check(!spec->func || *spec->func <= 7, "function number above 7");
    check(spec->input == in, "the spec does not keep the input as typed");
    const std::string again_text = canonical(*spec);
    auto again = pt::parse_device_spec(again_text);
    check(again.has_value(), "the canonical spelling of an accepted spec is refused");
    check(again->domain == spec->domain && again->bus == spec->bus && again->dev == spec->dev &&
              again->func == spec->func,
          "the canonical spelling parses to another spec");
    check(canonical(*again) == again_text, "the canonical spelling is not stable");
  } else {
    check(spec.error().exit == pt::Exit::usage, "a refused address is not a usage error");
    check(!spec.error().message.empty(), "a refused address has no message");
  }

  auto name = pt::parse_sysfs_name(in);
  if (name) {
    // A kernel name is a full address: a spec with a function.
    check(spec && spec->func, "a sysfs name the spec parser refuses or reads as a slot");
    check(name->domain == spec->domain && name->bus == spec->bus && name->dev == spec->dev &&
              name->func == *spec->func,
          "the two parsers disagree");
    auto again = pt::parse_sysfs_name(name->str());
    check(again && *again == *name, "str() of a sysfs name does not parse back to it");
  }
  return 0;
}
