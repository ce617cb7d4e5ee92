// SR-IOV: the capability of a physical function (PF), the virtual functions
// (VFs) the kernel made from it, and pt-bind vfs, which creates VFs for a VM
// (bound to vfio-pci before any host driver sees them) and removes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pt/address.hpp"
#include "pt/context.hpp"
#include "pt/journal.hpp"
#include "pt/pci_config.hpp"
#include "pt/sriov_variant.hpp"

namespace pt::sriov {

inline constexpr uint16_t kExtCapSriov = 0x0010;

// The SR-IOV extended capability (PCIe Base Spec 9.3.3) as the PF's config
// space holds it.
struct Cap {
  uint32_t capabilities = 0;
  uint16_t control = 0;  // bit 0: VF Enable
  uint16_t initial_vfs = 0;
  uint16_t total_vfs = 0;
  uint16_t num_vfs = 0;
  uint16_t first_vf_offset = 0;
  uint16_t vf_stride = 0;
  uint16_t vf_device = 0;
  bool vf_enable() const { return (control & 1) != 0; }
};

// Nullopt without the capability (or when the extended space is unreadable).
std::optional<Cap> decode(const ConfigSpace& config);

// The routing IDs of the VFs 0..N-1 of PF: offset and stride from the PF's
// own routing ID, as the kernel's pci_iov_virtfn_bus/devfn compute them.
std::vector<PciAddress> vf_addresses(const PciAddress& pf, const Cap& cap, int n);

// A function's SR-IOV state in sysfs.
struct State {
  PciAddress pf;
  std::optional<Cap> cap;         // from config space, when readable
  int total_vfs = 0;              // sriov_totalvfs
  int num_vfs = 0;                // sriov_numvfs
  std::optional<bool> autoprobe;  // sriov_drivers_autoprobe
  std::string vf_device;          // sriov_vf_device, "0x10ed"; empty before 5.6
  std::vector<PciAddress> vfs;    // the virtfnN links, in N order
  std::string driver;             // the PF's driver, empty when unbound
};

// The SR-IOV state of ADDR, or nullopt when it has no sriov_totalvfs (it is
// no PF: a VF, or a function without the capability). Reads only.
std::optional<State> read_state(const Root& root, const PciAddress& addr);

// For pt-bind show: the PF of a VF (its physfn link), nullopt otherwise.
std::optional<PciAddress> physfn(const Root& root, const PciAddress& addr);

struct Request {
  std::string device;  // as the user typed it
  int count = 0;       // 0 removes
  std::string to = kAuto;  // a driver, or "auto": the variant modules.alias names, else vfio-pci
  bool force = false;  // proceed although processes hold an existing VF
};

// What vfs will do, planned without a write.
struct Plan {
  State before;
  int count = 0;
  std::string to;
  bool already = false;
  std::optional<SriovRecord> record;  // what the journal holds for the PF
  std::vector<std::string> steps;     // one line per write or wait, for the dry run
  std::vector<std::string> notes;
  // The driver of each VF: for VFs still to come, from the modalias they will
  // have (the PF's, with the VF device ID), which execute reads again.
  std::vector<std::pair<std::string, VfDriver>> drivers;
  std::vector<std::string> warnings;
};

// Refuses (nothing written): DEV is no PF (exit 2), COUNT is above
// sriov_totalvfs (exit 2), the PF has no driver to configure SR-IOV (exit 1),
// existing VFs are in use (exit 1: a process holds one of their nodes, or
// one is bound to a host driver that is not a parking driver).
Result<Plan> plan(const Context& ctx, const Request& request, const Journal& journal);

struct VfResult {
  std::string device;
  std::string driver;  // what it ended on
  std::string why;     // how the driver was chosen (VfDriver::why)
};

struct Outcome {
  std::string pf;
  int count = 0;
  std::vector<VfResult> vfs;
  std::vector<std::string> notes;
  std::vector<std::string> warnings;
};

// Runs PLAN under the lock: journals the PF's numvfs and autoprobe, turns
// autoprobe off, writes numvfs (0 first when VFs exist), waits for the
// virtfnN links, binds every VF through driver_override to the plan's driver
// (with "auto": the variant driver its modalias names, loaded first, else
// vfio-pci), verifies, journals each VF's driver, restores autoprobe. COUNT 0
// unbinds and removes the VFs from whatever driver they are on, writes back
// the journaled numvfs and autoprobe, and drops the record. On failure
// it undoes what it did (Exit::rolled_back) or says what is left.
Result<Outcome> execute(Context& ctx, const Plan& plan, Journal& journal);

// plan + execute under the kit lock, as pt-bind vfs runs it.
Result<Outcome> run(Context& ctx, const Request& request);

// pt.conf's `vfs = N` as pt-bind boot applies it after its claims, with the
// lock held: each present PF gets its VFs as with --to auto (planned only with
// ctx.dry_run). One line per PF for the user; a PF not in sysfs is skipped.
struct ConfResult {
  std::string device;
  int count = 0;
  std::vector<std::string> lines;  // the dry run's steps, or the VFs made
  bool skipped = false;
};
Result<std::vector<ConfResult>> apply_conf(Context& ctx,
                                           const std::vector<std::pair<PciAddress, int>>& pfs);

}  // namespace pt::sriov
