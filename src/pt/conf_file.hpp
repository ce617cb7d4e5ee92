// /etc/pt/pt.conf (pt.conf(5)): which functions vfio-pci claims at boot and
// what runs when a device returns to its host driver. TOML, read with toml++.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pt/address.hpp"
#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt {

inline constexpr const char* kConfPath = "/etc/pt/pt.conf";

enum class BootAction { none, vfio, host };

// One step of the recovery that pt-recover@.service runs; OPTIONS holds the
// step's table from [device.NAME.step.STEP] as strings, already validated.
struct RecoverStep {
  std::string name;  // "reset", "attach", "drm-wait", "vgaarb", "console", "drm-check"
  std::map<std::string, std::string> options;

  bool operator==(const RecoverStep&) const = default;
};

// Runtime power management while pt-bind detach holds the device's functions
// on their new driver (pt.conf power_control, d3cold_allowed); attach puts
// back what was there. Unset keys are left alone.
struct PowerPolicy {
  std::optional<std::string> control;  // power/control: "on" or "auto"
  std::optional<bool> d3cold_allowed;
  bool empty() const { return !control && !d3cold_allowed; }
  bool operator==(const PowerPolicy&) const = default;
};

struct DeviceConf {
  std::string name;  // the table's name, [device.NAME]
  PciAddress bdf;
  // With two identical GPUs the BDF tells them apart; the ID guards against a
  // BDF that moved to another card after a hardware change.
  std::optional<uint16_t> vendor;
  std::optional<uint16_t> device;
  BootAction boot = BootAction::none;
  std::vector<PciAddress> companions;  // further functions that move with it
  std::vector<RecoverStep> recover;
  PowerPolicy power;  // for every function the table names
  int vfs = 0;   // SR-IOV VFs pt-bind boot creates on vfio-pci (bdf is their PF)
  int line = 0;  // where the table starts, for messages

  bool operator==(const DeviceConf&) const = default;
};

struct Conf {
  std::string path;  // as shown in messages, "/etc/pt/pt.conf"
  std::vector<DeviceConf> devices;

  // The device whose bdf or companions contain ADDR.
  const DeviceConf* find(const PciAddress& addr) const;
};

// Parses TEXT; errors say "PATH:LINE:COLUMN: what is wrong" and exit 2.
Result<Conf> parse_conf(const std::string& text, const std::string& path);

// Reads ROOT/etc/pt/pt.conf. A missing file is an empty Conf. A file others
// can write, or that belongs to neither root nor the caller, is refused: it
// decides which drivers the kernel binds at boot.
Result<Conf> load_conf(const Root& root);

const char* to_string(BootAction action);

}  // namespace pt
