// The whole state of a GPU's slot and IOMMU group in one value: what `pt
// status` shows, what `pt snapshot` saves and what `pt diff` compares. It is
// collected from the engines that own each part (pci, pci_config, reset,
// vgaarb, console, drm, holders, journal), read-only: collecting never
// writes to sysfs, and a DRM read that does not return is abandoned and
// reported instead of waited on.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pt/drm.hpp"
#include "pt/error.hpp"
#include "pt/modules.hpp"
#include "pt/root.hpp"
#include "pt/vgaarb.hpp"

namespace pt::state {

// The snapshot file's format; a file of another version is refused.
inline constexpr int kFormat = 1;
// A snapshot file larger than this is not one pt wrote.
inline constexpr size_t kMaxSnapshotBytes = 1 << 20;

struct Link {
  std::string speed, max_speed;  // "8.0 GT/s"; "" unknown
  int width = 0, max_width = 0;  // lanes; 0 unknown
  bool operator==(const Link&) const = default;
};

struct Aer {
  uint64_t correctable = 0, nonfatal = 0, fatal = 0;  // the kernel's TOTAL_ERR_* lines
  bool operator==(const Aer&) const = default;
};

struct Vga {
  std::string decodes, owns, locks;  // "io+mem", "none", ...
  unsigned io_locks = 0, mem_locks = 0;
  bool operator==(const Vga&) const = default;
};

struct Connector {
  std::string name, status, enabled, dpms;
  int modes = 0;
  bool operator==(const Connector&) const = default;
};

struct Drm {
  std::string card;  // "card0"
  std::string node;  // "/dev/dri/card0"
  bool node_exists = false;
  std::string render;  // "/dev/dri/renderD128" or ""
  std::vector<Connector> connectors;
  // "ok", "no-kms" (read, but the driver has no KMS), "stuck" (the read did
  // not return within --timeout), "unreadable" (an error), "no-node".
  std::string kms;
  std::string kms_error;  // why, for stuck and unreadable
  std::string verdict;    // pt-drm check's: healthy, degraded, no-drm-device
  std::optional<bool> fbcon_on_card;
  bool operator==(const Drm&) const = default;
};

struct Firmware {
  std::string name, driver, how;  // "efi-framebuffer.0", "efifb", "iomem"
  bool operator==(const Firmware&) const = default;
};

struct Holder {
  int pid = 0;
  std::string command, node;
  bool operator==(const Holder&) const = default;
};

// What the journal says about the function.
struct Record {
  std::string from_driver;  // the driver it had before pt-bind detach ("" none)
  std::string to;           // where pt moved it
  std::string from_override;
  bool boot = false;
  bool operator==(const Record&) const = default;
};

struct Function {
  std::string bdf;
  std::string vendor, device_id;  // "10de", "2484"
  // pci.ids names (pci_ids_path); nullopt (null) when pci.ids does not know the ID.
  std::optional<std::string> vendor_name, device_name;
  std::string class_id;  // "0300"
  std::string class_name;
  std::string driver, driver_override;  // "" none
  std::optional<int> iommu_group;
  std::string vfio_node;  // "/dev/vfio/1" when it exists
  std::optional<bool> boot_vga;
  std::string power_state;                      // sysfs power_state ("D0"), "" when absent
  std::string pm_state;                         // PMCSR from config space ("D3hot"), "" without PM
  std::string runtime_status, runtime_control;  // power/runtime_status, power/control
  std::optional<bool> d3cold_allowed;           // d3cold_allowed; nullopt when absent
  // vfio-pci's disable_idle_d3 parameter, for a function on vfio-pci only
  // (it decides whether vfio-pci lets the idle function go to D3hot).
  std::optional<bool> vfio_disable_idle_d3;
  std::optional<uint16_t> command;              // config 0x04; nullopt when unreadable
  std::optional<Link> link;                     // PCIe functions only
  std::optional<Aer> aer;                       // when the kernel has AER counters for it
  std::optional<std::vector<std::string>> kernel_reset_methods;  // nullopt: no reset_method
  std::vector<std::string> reset_methods;                        // available to pt-reset
  std::optional<Vga> vga;                 // VGA-class functions, when the arbiter reads
  std::string vga_error;                  // why not
  std::vector<std::string> framebuffers;  // "fb0 virtio_gpudrmfb"
  std::vector<Firmware> firmware;
  std::optional<Drm> drm;  // display functions with a DRM card
  std::vector<Holder> holders;
  std::optional<Record> journal;
  std::optional<Vga> journal_vga;             // the arbiter state pt-bind detach recorded
  std::vector<std::string> journal_consoles;  // console changes pt-console release made
  bool in_slot = true;                        // false: a member of the group only
  bool operator==(const Function&) const = default;
};

// What blocks or weakens passing the slot through, found while collecting:
// KIND is one of "no-iommu", "no-vfio-pci" (bind::readiness_hints), "acs",
// "acs-unknown" (a bridge on the path to the root port: acs_gaps),
// "config-unreadable" (a short or failed config read) and "stuck-d3"
// (config space reads all ones, or PMCSR says D3hot while the kernel has
// the function in D0; power::stuck_advice's sentence, naming the reset
// that can bring it back). DEVICE is the function it is about, ""
// for the machine; MESSAGE is the library's sentence, as pt-bind says it.
struct Warning {
  std::string kind, device, message;
  bool operator==(const Warning&) const = default;
};

struct VtCon {
  std::string name, mark;
  bool bound = false;
  bool operator==(const VtCon&) const = default;
};

struct Snapshot {
  std::string device;               // the DEV asked for, as typed
  std::vector<Function> functions;  // the slot's, then the rest of the groups, address order
  std::vector<VtCon> vtconsoles;
  std::string active_vt;
  // fbcon's console -> framebuffer index map (FBIOGET_CON2FBMAP); nullopt
  // when it cannot be read (no fbdev node, a --root tree).
  std::optional<std::map<int, int>> con2fb;
  std::string journal_job;    // the op of a job in flight, "" none
  std::string journal_error;  // the journal could not be read
  std::vector<Warning> warnings;  // the machine's first, then by function
  bool operator==(const Snapshot&) const = default;
};

// Where collect reads what sysfs does not hold. ARBITER may be null (no
// arbiter: VGA fields say so). BACKEND should be bounded
// (drm::make_bounded_backend): a wedged driver's read is abandoned.
// MODULES, when given, is asked whether vfio-pci could be loaded (null: the
// no-vfio-pci warning is not looked for).
struct Sources {
  Arbiter* arbiter = nullptr;
  drm::Backend* backend = nullptr;
  ModuleLoader* modules = nullptr;
};

// How much collect reads: everything pt status shows, or only what
// recovery steps change (as refresh reads it, plus the journal's job).
enum class Depth { whole, steps };

// The state of every function of DEV's slot and of their IOMMU groups.
// DEV is an address as pt-bind takes it (01:00, 01:00.0); a function names
// its slot. Read-only.
Result<Snapshot> collect(const Root& root, std::string_view dev, const Sources& sources,
                         Depth depth = Depth::whole);

// The state a recovery step can change, read again for the functions of
// PREVIOUS (a collect of the same slot): drivers, overrides, power, the
// command register, the arbiter, framebuffers and consoles. It leaves out
// what the steps do not change and costs a whole scan to read (names, reset
// methods, link, AER, holders, the journal, DRM, warnings), so a recovery can log its
// state after every step cheaply; two refreshes compare field by field. A
// function that is gone is left out.
Result<Snapshot> refresh(const Root& root, const Snapshot& previous, const Sources& sources);

// SNAPSHOT less what refresh leaves out, to compare with a refresh.
Snapshot volatile_part(Snapshot snapshot);

// The --json document of pt status (pt(8), JSON), which is also the
// snapshot file's content with "format".
nlohmann::json to_json(const Snapshot& snapshot);

// The inverse, for a snapshot file: every field checked; a document that is
// not one pt wrote is a usage error (exit 2) naming SUBJECT and the field.
Result<Snapshot> from_json(const nlohmann::json& doc, const std::string& subject);

// Reads a snapshot file (at most kMaxSnapshotBytes) as untrusted input.
Result<Snapshot> load(const std::string& path);

// One field that differs: "0000:01:00.0 driver: vfio-pci -> nvidia".
struct Change {
  std::string function;  // "0000:01:00.0", or "" for the whole system (vtconsoles, journal job)
  std::string field;     // "driver", "vga.decodes", "drm.connector HDMI-A-1.status"
  std::string before, after;  // as text; "(none)" for an absent value
  std::string describe() const;
};

// Field by field, in a stable order. Holders are compared by command and
// node, not pid (a restarted daemon is the same holder). Warnings come last,
// by device and kind: "0000:01:00.0 warning acs: (none) -> MESSAGE" is one
// that came (several of one kind and device are one value, joined by "; ").
std::vector<Change> diff(const Snapshot& a, const Snapshot& b);

// CHANGES as pt diff --json lists them: function (null: the whole
// system), field, before, after.
nlohmann::json changes_json(const std::vector<Change>& changes);

// The snapshot in one line for the system log: each function of the slot
// with its driver, override, power state and arbiter decodes, then the bound
// vtconsoles: "0000:01:00.0 vfio-pci override=vfio-pci D0 decodes=none;
// 0000:01:00.1 vfio-pci D0; vtcon bound: frame buffer device".
std::string summary(const Snapshot& snapshot);

// fbcon's map as one line, consoles grouped by framebuffer: "1-6+8=fb0 7=fb1".
std::string con2fb_text(const std::map<int, int>& map);

// "0x0107" bits by name: io, mem, master, ..., as lspci spells them.
std::vector<std::string> command_bits(uint16_t command);

}  // namespace pt::state
