// Decoding PCI configuration space: the capability lists and the few
// registers the kit reasons about (FLR, PM, bridge control, link status).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "pt/address.hpp"
#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt {

namespace reg {
inline constexpr uint16_t kCommand = 0x04;
inline constexpr uint16_t kStatus = 0x06;
inline constexpr uint16_t kHeaderType = 0x0e;
inline constexpr uint16_t kBar0 = 0x10;
inline constexpr uint16_t kCapPtr = 0x34;
inline constexpr uint16_t kBridgeControl = 0x3e;
inline constexpr uint16_t kBridgeCtlVga = 0x0008;
inline constexpr uint16_t kBridgeCtlBusReset = 0x0040;
inline constexpr uint8_t kCapPm = 0x01;
inline constexpr uint8_t kCapExp = 0x10;
inline constexpr uint8_t kCapAf = 0x13;
inline constexpr uint16_t kPmCtrl = 4;                 // PMCSR, from the PM capability
inline constexpr uint16_t kPmNoSoftReset = 0x0008;
inline constexpr uint16_t kExpDevCap = 4;              // from the PCIe capability
inline constexpr uint32_t kExpDevCapFlr = 1u << 28;
inline constexpr uint16_t kExpDevCtl = 8;
inline constexpr uint16_t kExpDevCtlFlr = 0x8000;
inline constexpr uint16_t kExpLnkCap = 0x0c;
inline constexpr uint32_t kExpLnkCapDllla = 1u << 20;
inline constexpr uint16_t kExpLnkCtl = 0x10;
inline constexpr uint16_t kExpLnkSta = 0x12;
inline constexpr uint16_t kExpLnkStaDllla = 0x2000;
inline constexpr uint16_t kExpDevCtl2 = 0x28;
inline constexpr uint16_t kAfCap = 3;
inline constexpr uint8_t kAfCapTp = 0x01;
inline constexpr uint8_t kAfCapFlr = 0x02;
inline constexpr uint16_t kAfCtrl = 4;
}  // namespace reg

class ConfigSpace {
 public:
  ConfigSpace() = default;
  explicit ConfigSpace(std::vector<uint8_t> bytes) : b_(std::move(bytes)) {}

  size_t size() const { return b_.size(); }
  const std::vector<uint8_t>& bytes() const { return b_; }
  uint8_t u8(size_t off) const { return off < b_.size() ? b_[off] : 0xff; }
  uint16_t u16(size_t off) const { return uint16_t(u8(off) | u8(off + 1) << 8); }
  uint32_t u32(size_t off) const { return uint32_t(u16(off)) | uint32_t(u16(off + 2)) << 16; }

  uint16_t vendor() const { return u16(0); }
  uint16_t device() const { return u16(2); }
  uint16_t command() const { return u16(reg::kCommand); }
  uint8_t header_type() const { return u8(reg::kHeaderType) & 0x7f; }
  bool present() const { return vendor() != 0xffff && !b_.empty(); }

  // Offset of the standard capability ID, walking the list with a loop guard.
  std::optional<uint16_t> find(uint8_t id) const;

  bool flr() const;                          // PCIe DevCap FLR
  bool af_flr() const;                       // AF capability with TP and FLR
  bool has_af() const { return find(reg::kCapAf).has_value(); }
  bool has_pm() const { return find(reg::kCapPm).has_value(); }
  std::optional<bool> no_soft_reset() const;  // PMCSR NoSoftRst; nullopt without PM
  std::optional<int> power_state() const;     // 0..3 for D0..D3hot
  bool is_pcie() const { return find(reg::kCapExp).has_value(); }
  std::optional<bool> link_active() const;    // nullopt when the port cannot report it

 private:
  std::vector<uint8_t> b_;
};

Result<ConfigSpace> load_config(const Root& root, const PciAddress& addr, int len = 256);

}  // namespace pt
