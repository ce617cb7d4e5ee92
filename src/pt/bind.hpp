// Moving PCI functions between drivers: plan, execute, verify, roll back.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pt/address.hpp"
#include "pt/conf_file.hpp"
#include "pt/context.hpp"
#include "pt/journal.hpp"
#include "pt/pci.hpp"

namespace pt::bind {

struct Write {
  std::string path;  // absolute, unprefixed
  std::string value;
  WriteKind kind = WriteKind::attribute;
};

// One function's move from its current driver to a target.
struct Move {
  Device before;            // as read when planning
  std::string to_driver;    // empty with probe: whatever the kernel chooses
  std::string to_override;  // empty: cleared
  bool probe = true;        // false restores an unbound function
  bool already = false;     // nothing to do
  std::string note;         // "already on vfio-pci"
  std::vector<Write> writes;
  std::optional<JournalEntry> record;  // created before the first write
  // Runtime PM settings (pt.conf's power policy at detach, the journaled
  // values at attach), written once the function is on its new driver and
  // read back; POWER_UNDO holds what they replace, for a rollback.
  std::vector<Write> power, power_undo;
  bool drop_record = false;            // removed after success
  // Resizable BARs: BAR -> the size (2^size MiB) it must have after the
  // writes, checked by verify; and the sizes before, which a rollback restores.
  std::map<int, int> rebar;
  std::map<int, int> rebar_before;
};

struct Plan {
  std::string op;
  std::vector<std::string> drivers;  // target drivers to make available first
  std::vector<std::pair<std::string, std::string>> driver_modules;  // driver, module hint
  std::vector<Move> moves;           // in execution order
  std::vector<std::string> notes;
};

struct DetachOptions {
  std::string to = "vfio-pci";
  bool force = false;        // proceed although processes hold a device
  bool force_group = false;  // move group members bound to unrelated host drivers
  // pt.conf: the power policy of the functions it names (null: none).
  const Conf* conf = nullptr;
  // BAR=SIZE requests ("0=8G", rebar::parse_request), applied to each moved
  // function whose Resizable BAR capability covers the BAR, while unbound.
  std::vector<std::string> rebar;
};

struct AttachOptions {
  bool force = false;
};

// Refuses (exit 2) NAME as the driver of OPTION ("--to", "DRIVER") unless it
// can be a directory of /sys/bus/pci/drivers: not empty, not . or .., no
// slash, blank or control character, at most 64 bytes. Checked before
// anything is written: "/sys/bus/pci/drivers/../unbind" is a real file.
Status check_driver_name(const std::string& name, const std::string& option);

// What keeps this machine from passing a device through: KIND names it
// ("no-iommu", "no-vfio-pci"), MESSAGE is a sentence saying what to do.
struct Hint {
  std::string kind, message;
};

// The hints of this machine: no IOMMU groups at all, no vfio-pci driver or
// module (asked of MODULES; null: not asked). Empty when ready. ALL is any
// set of devices: one with a group proves an IOMMU without reading
// /sys/kernel/iommu_groups. Reads only.
std::vector<Hint> readiness_hints(const Root& root, ModuleLoader* modules,
                                  const std::vector<Device>& all);

// Builds the writes that take BEFORE to (driver, override), without I/O.
std::vector<Write> writes_for(const Device& before, const std::string& to_driver, const std::string& to_override,
                              bool probe);

Result<Plan> plan_detach(const Context& ctx, const std::vector<DeviceSpec>& specs, const DetachOptions& options,
                         const Journal& journal);
Result<Plan> plan_attach(const Context& ctx, const std::vector<DeviceSpec>& specs, const AttachOptions& options,
                         const Journal& journal);
Result<Plan> plan_set(const Context& ctx, const std::vector<DeviceSpec>& specs, const std::string& driver,
                      bool force, const Journal& journal);
Result<Plan> plan_unset(const Context& ctx, const std::vector<DeviceSpec>& specs, bool force,
                        const Journal& journal);

struct MoveResult {
  std::string device;
  std::string from;
  std::string to;  // the driver it ended on
  bool already = false;
  std::string note;
  std::chrono::microseconds elapsed{0};
};

struct Outcome {
  std::vector<MoveResult> moves;
  std::vector<std::string> notes;
};

// Runs PLAN: loads drivers, journals, writes, verifies. On failure undoes the
// functions it changed, in reverse order, and returns Exit::rolled_back, or
// Exit::not_rolled_back with the state of every function when the undo fails
// too. A write stuck in the kernel stops everything with Exit::timeout and
// leaves the job in the journal for the next run. Call with the lock held.
Result<Outcome> execute(Context& ctx, const Plan& plan, Journal& journal);

// Finishes or undoes an interrupted job found in the journal: a job not
// covered by COVERED is undone (its functions go back to their recorded
// drivers; a function that has vanished from sysfs has nothing to undo).
//
// check_stuck_write refuses (exit 5) while the writer of an earlier run's timed-out write is
// still in the kernel: scanning the device would block on its lock.
Status check_stuck_write(const Root& root, const Journal& journal);

// A run killed while its writer was in the kernel recorded no writer; the
// writer outlives it. Finds a process with a control file of the journal job's
// functions open (a driver's bind/unbind, the function's driver_override,
// remove or reset, drivers_probe, rescan) and records it in the job as the
// stuck writer, so check_stuck_write refuses while it lives and the job stays
// journaled. True when it recorded one; the caller saves the journal.
bool adopt_unrecorded_writer(const Root& root, Journal& journal);

// What finishing or undoing the journal's job will do, planned without a
// write: the dry run shows it, recover_job carries it out.
struct JobRecovery {
  std::string what;               // "an interrupted detach of 2 function(s) by pid 42"
  bool take_over = false;         // the new plan covers every function of the job
  std::vector<std::string> gone;  // functions of the job no longer in sysfs
  std::optional<Plan> undo;       // the attach that undoes the job, when any is left
};
Result<JobRecovery> plan_recovery(const Context& ctx, const Journal& journal,
                                  const std::vector<std::string>& covered, bool force = false);
// One line per function of RECOVERY that is gone, for the user.
std::vector<std::string> gone_notes(const JobRecovery& recovery, const Journal& journal);

// The notes for the user: empty when there was no job. An error's message
// starts "undoing an interrupted ... failed:".
Result<std::vector<std::string>> recover_job(Context& ctx, Journal& journal,
                                             const std::vector<std::string>& covered,
                                             bool force = false);

// A detach, attach, set or unset as pt-bind runs it: under the pt lock
// (none of its own with ctx.lock_held), a writer a killed run left in the
// kernel adopted into the journal, a write still stuck there refused, an
// interrupted job finished or undone, then the plan MAKE_PLAN makes from the
// journal executed (planned again when undoing the job changed the devices).
struct Mutation {
  Plan plan;
  Outcome outcome;
};
Result<Mutation> mutate(Context& ctx, const std::function<Result<Plan>(const Journal&)>& make_plan,
                        bool force);

// "0000:01:00.0 driver=vfio-pci override=vfio-pci" lines for every function.
// LOCKED: a device whose sysfs write is stuck in the kernel; only its driver
// link is read (its driver_override would block on the device lock).
std::string state_report(const Root& root, const std::vector<std::string>& devices,
                         const std::string& locked = "");

}  // namespace pt::bind
