// Runtime power management of a PCI function: what sysfs says about it, the
// pt.conf policy (power_control, d3cold_allowed) pt-bind puts in place while
// vfio-pci holds a function and takes back at attach, and the one wording for
// a function stuck in a low-power state with the reset that can wake it.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "pt/conf_file.hpp"
#include "pt/pci.hpp"
#include "pt/pci_config.hpp"
#include "pt/reset.hpp"
#include "pt/root.hpp"

namespace pt::power {

// The attributes a policy writes, relative to the function's directory.
inline constexpr const char* kControl = "power/control";
inline constexpr const char* kD3cold = "d3cold_allowed";
inline constexpr const char* kDisableIdleD3 = "/sys/module/vfio_pci/parameters/disable_idle_d3";

// Runtime PM as sysfs shows it; "" or nullopt where the attribute is absent.
struct Attrs {
  std::string control;         // power/control: "on" (runtime PM forbidden) or "auto"
  std::string runtime_status;  // power/runtime_status: "active", "suspended", ...
  std::optional<bool> d3cold_allowed;
};
Attrs read(const Root& root, const Device& device);

// vfio-pci's disable_idle_d3 parameter: true keeps idle functions in D0.
// nullopt when vfio_pci is not loaded (the parameter is not there).
std::optional<bool> vfio_disable_idle_d3(const Root& root);

// One attribute the policy sets: ATTR (kControl, kD3cold) to VALUE as
// written and as the kernel reads it back ("on", "0").
struct Setting {
  std::string attr, value;
  bool operator==(const Setting&) const = default;
};

// POLICY as settings, power/control first: a function is kept in D0 before
// D3cold is forbidden or allowed.
std::vector<Setting> settings(const PowerPolicy& policy);

// The value of ATTR of DEVICE now, or an Error naming the file when the
// kernel does not have it (power/control needs CONFIG_PM).
Result<std::string> current(const Root& root, const Device& device, const std::string& attr);

// How a write to ATTR runs: power/control resumes a suspended function,
// which waits on the device; d3cold_allowed returns at once.
WriteKind write_kind(const std::string& attr);

// Writes VALUE to PATH (a function's power/control or d3cold_allowed) and
// reads it back: an Error naming PATH when the kernel kept another value.
Status write_checked(Context& ctx, const std::string& path, const std::string& value,
                     WriteKind kind);

// The pt.conf policy for ADDR whose ID is VENDOR:DEVICE: nullopt when no
// table names it or the table sets no power key. A table whose id is not
// the function's is refused (exit 2): the BDF moved to another card.
Result<std::optional<PowerPolicy>> policy_for(const Conf& conf, const Device& device);

// "power_control = \"on\", d3cold_allowed = false", as pt.conf spells it.
std::string describe(const PowerPolicy& policy);

// Why DEVICE looks stuck in a low-power state, and which reset can bring it
// back, in one sentence for pt status, pt-bind show and pt-reset methods;
// nullopt when it is not stuck. CONFIG is its config space as read (after
// runtime PM was asked, as sysfs's config read wakes a suspended function),
// ATTRS its runtime PM, POWER_STATE sysfs's power_state ("D0", "" absent),
// METHODS reset::detect's.
//
// Stuck: config space reads all ones (the function is in D3cold, powered off
// or gone; FLR and PM reset are written to that config space and cannot
// reach it, so only the parent bridge, the slot or a rescan can), or the PM
// capability says D3hot while the kernel has it in D0.
std::optional<std::string> stuck_advice(const Device& device, const ConfigSpace& config,
                                        const Attrs& attrs, const std::string& power_state,
                                        const std::vector<reset::MethodStatus>& methods);

// The same, read from sysfs: DEVICE's config space, runtime PM and reset
// methods (ALL: the scan DEVICE is from, for its bus siblings).
std::optional<std::string> stuck_advice(const Root& root, const Device& device,
                                        const std::vector<Device>& all);

// pt-bind show's "power" object (pt-bind(8)): control, runtime_status,
// d3cold_allowed, vfio_disable_idle_d3 (null unless on vfio-pci), stuck.
nlohmann::json show_json(const Root& root, const Device& device, const std::vector<Device>& all);

// The same as pt-bind show's text lines.
std::string show_text(const nlohmann::json& power);

}  // namespace pt::power
