// The device the user named: a DeviceSpec resolved against the devices that
// are there, under one rule set. What a slot address such as 01:00 means is
// the tool's choice (the Slot rule); the messages of each refusal are the
// tool's too, so a rule set carries them.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pt/address.hpp"
#include "pt/error.hpp"
#include "pt/pci.hpp"
#include "pt/root.hpp"

namespace pt::target {

// What a slot address (no function) names.
enum class Slot {
  every,      // every function of the slot
  refuse,     // nothing: the tool needs one function
  function0,  // function .0 of the slot
  single,     // the one function of the slot that Rules::kind accepts
};

struct Rules {
  Slot slot = Slot::every;
  bool endpoints_only = false;  // a bridge is refused: pt works on endpoints
  // The functions the tool works on; empty: every function.
  std::function<bool(const Device&)> kind;
  // The refusal of a function KIND does not accept (for Slot::single, of the
  // slot's first function when none is accepted).
  std::function<Error(const Device&, const DeviceSpec&)> not_kind;
  // "no such PCI device; " + this, about the input. Empty (read_one only):
  // the kernel's own answer from read_device.
  std::string list_hint = "list devices with 'pt-bind list'";
  // read_one: usage error for an empty input, subject and message; empty: none.
  std::string empty_subject, empty_message;
  // Slot::refuse: "names a slot; " + this + input + ".0".
  std::string slot_refusal = "name one function, e.g. ";
  // Slot::single, more than one accepted: "names N " + this + " functions; ...".
  std::string kind_name = "matching";
};

// The devices SPEC names among ALL, in address order.
Result<std::vector<Device>> resolve(const std::vector<Device>& all, const DeviceSpec& spec,
                                    const Rules& rules);

// The same for several specs; a function named twice comes once.
Result<std::vector<Device>> resolve(const std::vector<Device>& all,
                                    const std::vector<DeviceSpec>& specs, const Rules& rules);

// Parses INPUT and reads the one function it names straight from sysfs,
// without scanning the bus (Slot::refuse or Slot::function0).
Result<Device> read_one(const Root& root, std::string_view input, const Rules& rules);

// The functions SPECS name as sysfs lists them now, each once in address
// order, without reading them (Slot::every; a spec naming nothing is the
// missing-device error of RULES).
Result<std::vector<PciAddress>> present(const Root& root, const std::vector<DeviceSpec>& specs,
                                        const Rules& rules);

// Every argument parsed; the first bad one is the error.
Result<std::vector<DeviceSpec>> parse_all(const std::vector<std::string>& inputs);

// The rule sets of the tools.
const Rules& any();                    // pt-bind show, pt-reset: every function, bridges too
const Rules& endpoints();              // pt-bind detach/attach/set/unset: no bridges
const Rules& vga(bool allow_display);  // pt-vgaarb: the VGA function of a slot
const Rules& console_gpu();            // pt-console: one display function
const Rules& drm_display();            // pt-drm: the display function, .0 of a slot

}  // namespace pt::target
