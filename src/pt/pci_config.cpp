#include "pt/pci_config.hpp"

#include "pt/pci.hpp"

namespace pt {

std::optional<uint16_t> ConfigSpace::find(uint8_t id) const {
  if (!(u16(reg::kStatus) & 0x10)) return std::nullopt;  // no capability list
  uint16_t pos = u8(reg::kCapPtr) & 0xfc;
  // 48 is the most capabilities that fit in 192 bytes; a loop means garbage.
  for (int guard = 0; pos >= 0x40 && guard < 48; ++guard) {
    if (u8(pos) == id) return pos;
    pos = u8(pos + 1) & 0xfc;
  }
  return std::nullopt;
}

bool ConfigSpace::flr() const {
  auto exp = find(reg::kCapExp);
  return exp && (u32(*exp + reg::kExpDevCap) & reg::kExpDevCapFlr);
}

bool ConfigSpace::af_flr() const {
  auto af = find(reg::kCapAf);
  if (!af) return false;
  uint8_t cap = u8(*af + reg::kAfCap);
  return (cap & reg::kAfCapTp) && (cap & reg::kAfCapFlr);
}

std::optional<bool> ConfigSpace::no_soft_reset() const {
  auto pm = find(reg::kCapPm);
  if (!pm) return std::nullopt;
  return (u16(*pm + reg::kPmCtrl) & reg::kPmNoSoftReset) != 0;
}

std::optional<int> ConfigSpace::power_state() const {
  auto pm = find(reg::kCapPm);
  if (!pm) return std::nullopt;
  return u16(*pm + reg::kPmCtrl) & 3;
}

std::optional<bool> ConfigSpace::link_active() const {
  auto exp = find(reg::kCapExp);
  if (!exp || !(u32(*exp + reg::kExpLnkCap) & reg::kExpLnkCapDllla)) return std::nullopt;
  return (u16(*exp + reg::kExpLnkSta) & reg::kExpLnkStaDllla) != 0;
}

std::optional<uint8_t> ConfigSpace::port_type() const {
  auto exp = find(reg::kCapExp);
  if (!exp) return std::nullopt;
  return uint8_t((u16(*exp + reg::kExpFlags) >> 4) & 0xf);
}

std::optional<std::string> ConfigSpace::caps_unreadable() const {
  if (b_.empty()) return "config space unreadable: no bytes were read";
  // A function in D3cold or removed answers every read with all ones; its
  // "capabilities" would be garbage, so none are decoded.
  if (!present()) return "config space reads all ones: the device is powered off or gone";
  // Without CAP_SYS_ADMIN sysfs returns only the 64-byte header.
  if (b_.size() < 256)
    return "capabilities unreadable: config space is " + std::to_string(b_.size()) +
           " bytes (run as root)";
  return std::nullopt;
}

std::optional<std::string> ConfigSpace::ext_caps_unreadable() const {
  if (auto why = caps_unreadable()) return why;
  if (!is_pcie()) return std::nullopt;  // conventional PCI has no extended space
  // Root reads 4096 bytes wherever the platform gives extended config access.
  if (b_.size() < 4096)
    return "extended capabilities unreadable: config space is " + std::to_string(b_.size()) +
           " bytes (no extended config access)";
  return std::nullopt;
}

std::optional<uint16_t> ConfigSpace::find_ext(uint16_t id) const {
  if (b_.size() < 4096) return std::nullopt;
  uint16_t pos = reg::kExtCapStart;
  // 960 four-byte headers fill the extended space; more means a loop.
  for (int guard = 0; pos >= reg::kExtCapStart && guard < 960; ++guard) {
    uint32_t header = u32(pos);
    if (header == 0 || header == 0xffffffffu) return std::nullopt;
    if ((header & 0xffff) == id) return pos;
    pos = uint16_t((header >> 20) & 0xffc);
  }
  return std::nullopt;
}

IsolationCaps ConfigSpace::isolation() const {
  IsolationCaps out;
  if (auto acs = find_ext(reg::kExtCapAcs))
    out.acs = Acs{u16(*acs + reg::kAcsCap), u16(*acs + reg::kAcsCtrl)};
  if (auto ats = find_ext(reg::kExtCapAts)) {
    out.ats = true;
    out.ats_enabled = (u16(*ats + reg::kAtsCtrl) & reg::kAtsCtrlEnable) != 0;
  }
  out.ari = find_ext(reg::kExtCapAri).has_value();
  return out;
}

namespace {
const std::pair<uint16_t, const char*> kAcsNames[] = {
    {reg::kAcsSv, "SV"}, {reg::kAcsTb, "TB"}, {reg::kAcsRr, "RR"}, {reg::kAcsCr, "CR"},
    {reg::kAcsUf, "UF"}, {reg::kAcsEc, "EC"}, {reg::kAcsDt, "DT"}};
}  // namespace

std::string acs_bits(uint16_t bits) {
  std::string out;
  for (const auto& [bit, name] : kAcsNames)
    out += (out.empty() ? "" : " ") + std::string(name) + (bits & bit ? "+" : "-");
  return out;
}

namespace {

// One bridge as pci_acs_enabled (drivers/pci/pci.c) judges it, without the
// kernel's device-specific quirks, which user space cannot see.
std::optional<AcsGap> judge_bridge(const PciAddress& addr, const ConfigSpace& c) {
  if (auto why = c.caps_unreadable()) return AcsGap{addr, "ACS unknown: " + *why, true};
  auto type = c.port_type();
  if (!type) return AcsGap{addr, "conventional PCI bridge, whose functions share one bus", false};
  if (*type == reg::kExpTypePcieToPci)
    return AcsGap{addr, "PCIe-to-PCI bridge, whose functions share one bus", false};
  // The spec asks ACS of root and downstream ports only.
  if (*type != reg::kExpTypeRootPort && *type != reg::kExpTypeDownstream) return std::nullopt;
  const std::string kind = *type == reg::kExpTypeRootPort ? "root port" : "downstream port";
  if (auto why = c.ext_caps_unreadable()) return AcsGap{addr, "ACS unknown: " + *why, true};
  auto acs = c.isolation().acs;
  if (!acs) return AcsGap{addr, kind + " without ACS", false};
  // A control the port does not implement counts as hard-wired on, as in
  // the kernel's pci_acs_flags_enabled.
  const uint16_t wanted = reg::kAcsSv | reg::kAcsRr | reg::kAcsCr | reg::kAcsUf;
  const uint16_t off = wanted & acs->capability & ~acs->control;
  if (!off) return std::nullopt;
  std::string bits;
  for (const auto& [bit, name] : kAcsNames)
    if (off & bit) bits += (bits.empty() ? "" : " ") + std::string(name) + "-";
  return AcsGap{addr, kind + " with ACS " + bits + " (disabled)", false};
}

}  // namespace

std::vector<AcsGap> acs_gaps(const Root& root, const PciAddress& addr) {
  std::vector<AcsGap> out;
  auto d = read_device(root, addr);
  if (!d) return out;
  std::optional<PciAddress> up = d->parent;
  // 32 levels is deeper than any real hierarchy; a loop of links ends here.
  for (int depth = 0; up && depth < 32; ++depth) {
    auto c = load_config(root, *up, 4096);
    if (!c)
      out.push_back(AcsGap{*up, "ACS unknown: " + c.error().message, true});
    else if (auto gap = judge_bridge(*up, *c))
      out.push_back(*gap);
    auto br = read_device(root, *up);
    if (!br) break;
    up = br->parent;
  }
  return out;
}

std::string acs_gap_warning(const AcsGap& gap) {
  if (gap.unknown) return gap.bridge.str() + ": " + gap.problem;
  return gap.bridge.str() + " is a " + gap.problem +
         ": the functions below it can reach each other without the IOMMU, which is why the IOMMU "
         "group is "
         "large (unless a kernel quirk vouches for it)";
}

Result<ConfigSpace> load_config(const Root& root, const PciAddress& addr, int len) {
  auto bytes = read_config(root, addr, len);
  if (!bytes) {
    // Without root sysfs shows only the first 64 bytes; extended space needs
    // root, and very old devices have only 256.
    if (len > 256) return load_config(root, addr, 256);
    if (len > 64) return load_config(root, addr, 64);
    Error e = bytes.error();
    e.message = "config space unreadable: not even its 64-byte header could be read (" + e.message +
                "); check that the device is still there with pt-bind list";
    return std::unexpected(e);
  }
  return ConfigSpace(std::move(*bytes));
}

}  // namespace pt
