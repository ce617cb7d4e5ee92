// The recovery recipe of pt(7), RECOVERY, defined once: its steps, each as a
// command line of the kit's tools, and the runner behind `pt-bind recover`.
// The hypervisor hooks, the demo and the VM helpers take the recipe from
// `pt-bind recover --recipe` instead of spelling it.
#pragma once

#include <array>
#include <ostream>
#include <string>
#include <vector>

#include "pt/address.hpp"
#include "pt/context.hpp"
#include "pt/error.hpp"
#include "pt/ptconf.hpp"
#include "pt/root.hpp"

namespace pt::recover {

// The recipe's steps in their order, named as pt.conf's recover lists them.
inline constexpr std::array<const char*, 6> kRecipe = {"reset",  "attach",  "drm-wait",
                                                       "vgaarb", "console", "drm-check"};
// The reset the recipe asks for: the whole slot while it is on vfio-pci.
inline constexpr const char* kResetMethod = "bus";

// One recovery step as the command line of the tool that performs it.
// TOOL_DIR holds the pt tools (empty: the bare name, for PATH); ROOT is
// passed on as --root when not "/".
std::vector<std::string> step_argv(const RecoverStep& step, const PciAddress& dev,
                                   const std::string& tool_dir, const std::string& root);

struct Command {
  std::string step;   // "reset", "attach", ...
  PciAddress device;  // the function the step is about (attach: the first)
  std::vector<std::string> argv;
};

// The built-in recipe for FUNCTIONS, each once in address order: a reset of
// every display function (class 03xx), one attach of them all, then for
// each display function the DRM wait, the arbiter's decodes (VGA class
// only), the console and the DRM check. RESET_METHOD "auto" (or empty)
// leaves the method to pt-reset. Reads each function's class from sysfs.
Result<std::vector<Command>> recipe(const Root& root, std::vector<PciAddress> functions,
                                    const std::string& reset_method = kResetMethod);

// pt-bind recover: the steps pt.conf lists for the device DEV names or
// accompanies, each as its own tool from TOOL_DIR with the pt lock handed
// down through PT_LOCK_FD; a reset is skipped once the function has left
// vfio-pci. Progress lines go to OUT as the steps run; the first step that
// fails stops the recovery with its exit status.
Result<Exit> run(Context& ctx, const PciAddress& dev, const std::string& tool_dir,
                 std::ostream& out);

}  // namespace pt::recover
