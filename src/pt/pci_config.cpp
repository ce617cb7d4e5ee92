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

Result<ConfigSpace> load_config(const Root& root, const PciAddress& addr, int len) {
  auto bytes = read_config(root, addr, len);
  if (!bytes) {
    // Without root sysfs shows only the first 64 bytes; extended space needs
    // root, and very old devices have only 256.
    if (len > 256) return load_config(root, addr, 256);
    if (len > 64) return load_config(root, addr, 64);
    return std::unexpected(bytes.error());
  }
  return ConfigSpace(std::move(*bytes));
}

}  // namespace pt
