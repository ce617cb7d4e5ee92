// Decoding PCI configuration space: the capability lists and the few
// registers the kit reasons about (FLR, PM, bridge control, link status).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
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
inline constexpr uint16_t kExpFlags = 2;  // from the PCIe capability: version, port type
inline constexpr uint8_t kExpTypeRootPort = 0x4;
inline constexpr uint8_t kExpTypeUpstream = 0x5;
inline constexpr uint8_t kExpTypeDownstream = 0x6;
inline constexpr uint8_t kExpTypePcieToPci = 0x7;
inline constexpr uint16_t kExtCapStart = 0x100;
inline constexpr uint16_t kExtCapAcs = 0x000d;
inline constexpr uint16_t kExtCapAri = 0x000e;
inline constexpr uint16_t kExtCapAts = 0x000f;
inline constexpr uint16_t kAcsCap = 4;
inline constexpr uint16_t kAcsCtrl = 6;
inline constexpr uint16_t kAcsSv = 0x0001;
inline constexpr uint16_t kAcsTb = 0x0002;
inline constexpr uint16_t kAcsRr = 0x0004;
inline constexpr uint16_t kAcsCr = 0x0008;
inline constexpr uint16_t kAcsUf = 0x0010;
inline constexpr uint16_t kAcsEc = 0x0020;
inline constexpr uint16_t kAcsDt = 0x0040;
inline constexpr uint16_t kAtsCtrl = 6;
inline constexpr uint16_t kAtsCtrlEnable = 0x8000;
}  // namespace reg

// The ACS capability's two registers (bits reg::kAcsSv .. reg::kAcsDt).
struct Acs {
  uint16_t capability = 0;
  uint16_t control = 0;
};

// The extended capabilities that decide how a function can be isolated.
// Meaningful only when ConfigSpace::ext_caps_unreadable() is nullopt.
struct IsolationCaps {
  std::optional<Acs> acs;  // nullopt: no ACS capability
  bool ats = false;
  bool ats_enabled = false;
  bool ari = false;
};

// "SV+ TB- RR+ CR+ UF+ EC- DT-", lspci's order.
std::string acs_bits(uint16_t bits);

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
  // Something answered: not all ones. A function in D3cold or gone reads all
  // ones everywhere; an SR-IOV VF reads 0xffff as its vendor and device IDs
  // by the specification, but its command, status and class registers hold
  // values, so the IDs alone are no verdict.
  bool present() const {
    if (b_.empty()) return false;
    if (u32(0) != 0xffffffffu) return true;
    return b_.size() >= 12 && (u32(4) != 0xffffffffu || u32(8) != 0xffffffffu);
  }

  // Why the standard capability list cannot be walked (all ones, fewer
  // than 256 bytes), or nullopt when it can. The decoders below answer
  // from missing bytes as if they were absent: callers ask this first.
  std::optional<std::string> caps_unreadable() const;
  // Why the extended capabilities cannot be walked, or nullopt when they
  // can (or the function is conventional PCI, which has none).
  std::optional<std::string> ext_caps_unreadable() const;

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
  std::optional<uint8_t> port_type() const;   // PCIe device/port type; nullopt without PCIe

  // Offset of the extended capability ID, walking from 0x100 with a loop guard.
  std::optional<uint16_t> find_ext(uint16_t id) const;
  IsolationCaps isolation() const;

 private:
  std::vector<uint8_t> b_;
};

// Reads up to LEN bytes, falling back to 256 and 64 where sysfs gives
// fewer; an Error only when not even the 64-byte header can be read.
Result<ConfigSpace> load_config(const Root& root, const PciAddress& addr, int len = 256);

// A bridge between a function and its root port that lets peer-to-peer
// requests bypass the IOMMU, or whose ACS could not be read.
struct AcsGap {
  PciAddress bridge;
  std::string problem;   // "root port without ACS", "ACS unknown: ...": follows "BRIDGE is a"
  bool unknown = false;  // PROBLEM says why ACS could not be read, not a verdict
};

// The kernel's walk (pci_acs_path_enabled): every bridge upstream of ADDR,
// from its sysfs path up to the root bus, checked for the ACS controls the
// IOMMU grouping requires (SV, RR, CR, UF on root and downstream ports).
// An empty result: every bridge isolates; the group is as small as the
// function's own slot allows.
std::vector<AcsGap> acs_gaps(const Root& root, const PciAddress& addr);

// Why a gap makes the IOMMU group large, as one sentence for the user.
std::string acs_gap_warning(const AcsGap& gap);

}  // namespace pt
