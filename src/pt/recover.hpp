// The recovery recipe of pt(7), RECOVERY, defined once: its steps, the
// runner behind `pt-bind recover` (every step through the library, in one
// process, under one lock), and each step as the command line of the tool
// that performs the same, for shell users (`pt-bind recover --recipe`).
#pragma once

#include <array>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "pt/address.hpp"
#include "pt/conf_file.hpp"
#include "pt/context.hpp"
#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt::recover {

// The recipe's steps in their order, named as pt.conf's recover lists them.
inline constexpr std::array<const char*, 6> kRecipe = {"reset",  "attach",  "drm-wait",
                                                       "vgaarb", "console", "drm-check"};
// The reset the recipe asks for: the whole slot while it is on vfio-pci.
inline constexpr const char* kResetMethod = "bus";

// One step of a recovery.
struct Step {
  std::string name;                            // one of kRecipe
  std::vector<PciAddress> devices;             // reset, attach: all it acts on; the others: one GPU
  std::map<std::string, std::string> options;  // as pt.conf's [device.X.step.NAME] holds them
};

// The steps of one recovery and what it is about, for its "done" line.
struct Unit {
  std::string label;  // "0000:01:00.0", or the functions of a built-in recipe
  std::vector<Step> steps;
};

// STEP as the command line of the kit's tool that performs the same (the
// bare tool name, for PATH); ROOT is passed on as --root when not "/".
std::vector<std::string> step_argv(const Step& step, const std::string& root = "/");

// The built-in recipe for FUNCTIONS, each once in address order: one reset
// of every display function (class 03xx), one attach of them all, then for
// each display function the DRM wait, the arbiter's decodes (VGA class
// only), the console and the DRM check. RESET_METHOD "auto" (or empty)
// leaves the method to pt-reset. Reads each function's class from sysfs.
Result<std::vector<Step>> recipe(const Root& root, std::vector<PciAddress> functions,
                                 const std::string& reset_method = kResetMethod);

// What `pt-bind recover DEV...` runs for the functions SPECS name (a slot:
// each of its functions): for a function pt.conf names or accompanies, the
// recover list of its [device.NAME] table (once per table); for the others
// together, the built-in recipe with RESET_METHOD. A table that lists no
// recover steps is an error (exit 1), as is a function that is not there.
Result<std::vector<Unit>> plan(const Root& root, const std::vector<DeviceSpec>& specs,
                               const std::string& reset_method = kResetMethod);

// What happened at a step, as the runner reports it while it runs.
struct Event {
  enum class Kind { start, skip, dry_run, ok, failed, done };
  Kind kind = Kind::start;
  std::string unit;       // the recovery's label (Unit::label)
  Step step;              // as it runs (a reset without the functions it skips); none for done
  PciAddress device;      // the function the line is about
  std::string detail;     // skip: why; ok: what the step did; failed: the error
  int exit = 0;           // failed: the step's exit status
  double ms = 0;          // ok, failed: the step's time
  double elapsed_ms = 0;  // since the recovery started
};
using Observer = std::function<void(const Event&)>;

// Runs UNITS, step by step, each through its engine in this process: the
// pt lock is taken once for all of them (none with ctx.dry_run, which only
// reports the steps) and no step takes its own. A reset is skipped for a
// function that has left vfio-pci (udev starts a recovery after the host
// driver bound; a reset then would pull the device from under it). Each step
// verifies as its tool does; the first that fails stops the recovery, and
// the error carries that step's exit status. ON_EVENT (may be empty) hears
// each step as it starts and ends.
Result<Exit> run(Context& ctx, const std::vector<Unit>& units, const Observer& on_event);

// The lines pt-bind recover prints for the events: on a TERMINAL a line per
// step with the time since the start; otherwise "recover BDF: STEP: COMMAND"
// before a step and "recover BDF: STEP exited N after MS ms: WHAT" after it.
// ROOT is shown as --root in the commands when not "/".
Observer printer(std::ostream& out, bool terminal, const std::string& root = "/");

// The records pt-bind --json recover reports, one per step event appended to
// STEPS (an array): step, device, devices, result (skipped, planned, ok,
// failed), detail, argv, and for ok and failed the exit status and ms.
Observer recorder(nlohmann::json& steps, const std::string& root = "/");

}  // namespace pt::recover
