// PCI resets: which methods a function supports and why, and performing one
// with verification. The kernel's own path (reset_method + reset) comes first;
// pt performs a method itself only where the kernel cannot (5.10 has no
// reset_method; the kernel refuses a bus reset with siblings on the bus).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pt/address.hpp"
#include "pt/pci_config.hpp"
#include "pt/context.hpp"
#include "pt/pci.hpp"

namespace pt::reset {

// Every method pt reports, in the kernel's default order, then ours.
inline const std::vector<std::string> kMethods = {"device_specific", "acpi", "flr", "af_flr",
                                                  "pm",              "bus",  "slot", "rescan"};

// METHOD as the user gave it through OPTION (--method, --reset-method): one
// of kMethods, or "auto" where AUTO_OK. The usage error lists what is valid.
Status check_method(const std::string& method, const std::string& option, bool auto_ok = false);

struct MethodStatus {
  std::string name;
  bool available = false;
  std::optional<bool> kernel;  // from reset_method; nullopt where the kernel has no say (5.10, slot, rescan)
  std::string reason;
  // False when config space could not tell (too short, all ones): AVAILABLE
  // is then false and REASON says what could not be read, not a verdict.
  bool known = true;
  bool disagrees() const { return known && kernel && *kernel != available; }
};

struct DeviceMethods {
  Device device;
  std::vector<MethodStatus> methods;
  const MethodStatus* find(const std::string& name) const;
};

// Whether this kernel has the reset_method attribute at all (5.15+): a
// function without it then simply has no method.
bool kernel_has_reset_method(const Root& root, const std::vector<Device>& all);

DeviceMethods detect(const Root& root, const Device& dev, const ConfigSpace& config, const std::vector<Device>& all,
                     bool kernel_knows);

struct Phases {
  double prepare = 0, reset = 0, wait_ready = 0, restore = 0, verify = 0;  // milliseconds
};

// One reset domain: the functions reset together and how.
struct Job {
  std::string method;
  std::vector<Device> devices;        // the functions the reset reaches
  std::optional<Device> bridge;       // for bus resets: the parent bridge
  bool whole_bus = false;             // a bus reset with siblings, done by pt
  bool via_kernel = true;             // through reset_method + reset
  std::string kernel_method;          // what is written to reset_method
};

// A Resizable BAR the reset changed, and how pt put it back (verified).
struct RebarRestore {
  std::string device;
  int bar = 0;
  int before = 0, after_reset = 0;  // sizes, 2^size MiB
  std::string via;                  // "resize" (resourceN_resize, unbound) or "config"
};

struct Outcome {
  std::vector<RebarRestore> rebar;
  std::vector<std::string> devices;
  std::string method;
  std::string via;  // "kernel" or "pt"
  Phases phases;
  double total_ms = 0;
};

struct Options {
  std::optional<std::string> method;
  bool force = false;
};

// Resolves SPECS, chooses methods, applies the refusals; no writes.
Result<std::vector<Job>> plan(const Context& ctx, const std::vector<DeviceSpec>& specs, const Options& options);

// The writes a job makes, for --dry-run.
std::vector<std::string> describe(const Job& job, const Root& root);

// Performs JOBS, one thread per job (jobs never share a reset domain).
// Every job runs; the first failure is returned after all have finished.
Result<std::vector<Outcome>> perform(Context& ctx, const std::vector<Job>& jobs);

}  // namespace pt::reset
