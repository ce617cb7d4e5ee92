// The journal under /run/pt: what each detached function was bound to before
// pt moved it, and the job in flight, so that a crash of pt itself can be
// finished or undone by the next run.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt {

inline constexpr const char* kStateDir = "/run/pt";
inline constexpr const char* kJournalPath = "/run/pt/journal.json";
inline constexpr const char* kLockPath = "/run/pt/lock";

struct JournalEntry {
  std::string driver;           // original driver, empty if it was unbound
  std::string module;           // module providing it, empty if built in
  std::string driver_override;  // original override, usually empty
  std::string to;               // the driver pt moved it to
  int attach_order = 0;         // lower attaches first
  int64_t time = 0;             // seconds since the epoch
  // Claimed by pt-bind boot before any host driver probed it: attach lets the
  // kernel choose the driver instead of restoring "unbound".
  bool boot = false;
  // What pt.conf's power policy replaced when detach applied it: the
  // function's attribute ("power/control", "d3cold_allowed") and its value
  // before, which attach writes back. Empty: no policy was applied.
  std::map<std::string, std::string> power;
  // Resizable BARs pt-bind detach --rebar resized: BAR -> the size it had
  // before (2^size MiB), which attach and rollback put back.
  std::map<int, int> rebar;

  bool operator==(const JournalEntry&) const = default;
};

struct Job {
  std::string op;  // "detach", "attach", "set", "unset"
  int pid = 0;
  int64_t started = 0;
  std::vector<std::string> devices;
  // A blocking write that outlived --timeout: the forked writer still in the
  // kernel, and what it writes. While it lives the device's lock is held, and
  // reading the device's driver_override would block the next run too.
  int writer = 0;
  std::string write_path;
  std::string write_value;

  bool operator==(const Job&) const = default;
};

// The arbiter's view of a VGA device when pt-bind detached it, so that
// pt-vgaarb restore can put back exactly that. It outlives the attach: the
// drivers come back first, the arbiter state after.
struct VgaRecord {
  std::string decodes;  // "none", "io", "mem" or "io+mem"
  std::string owns;
  bool boot_vga = false;
  std::string driver;  // bound when recorded
  int64_t time = 0;

  bool operator==(const VgaRecord&) const = default;
};

// A framebuffer of the GPU that fbcon served when pt-console release
// unbound it, so that restore can say what replaced it and map the consoles back.
struct ServedFb {
  std::string node;  // "fb0"
  std::string name;  // "virtio_gpudrmfb"
  std::vector<int>
      consoles;  // the consoles fbcon mapped to it; empty when the map could not be read

  bool operator==(const ServedFb&) const = default;
};

// One change pt-console release made, so that restore undoes exactly it.
struct ConsoleChange {
  std::string
      kind;  // "vtconsole" (unbound from the VT layer) or "framebuffer" (platform device unbound)
  std::string
      name;  // vtconsole name without its (S)/(M) mark, or the platform device, "efi-framebuffer.0"
  std::string driver;  // "framebuffer": the driver it was unbound from, "efi-framebuffer"
  std::string node;    // where it was found, "vtcon1"; for messages, never for lookup
  int64_t time = 0;
  std::vector<ServedFb> served;  // "vtconsole": the GPU's framebuffers fbcon served

  bool operator==(const ConsoleChange&) const = default;
};

// A PF whose VFs pt-bind vfs created: what to put back when they go.
struct SriovRecord {
  int numvfs = 0;         // sriov_numvfs before pt changed it
  std::string autoprobe;  // sriov_drivers_autoprobe before, "0" or "1"; empty: no such file
  int count = 0;          // the VFs pt created
  std::string to;         // the driver asked for: a name, or "auto" (sriov_variant.hpp)
  int64_t time = 0;
  // The driver each VF went to, keyed by the VF: with "auto" a VF may be on
  // a variant driver that modules.alias named rather than on vfio-pci.
  std::map<std::string, std::string> drivers;

  bool operator==(const SriovRecord&) const = default;
};

struct Journal {
  std::map<std::string, JournalEntry> devices;  // keyed by "0000:3b:00.0"
  std::optional<Job> job;
  std::map<std::string, VgaRecord> vga;  // keyed by the VGA device
  std::map<std::string, std::vector<ConsoleChange>>
      consoles;  // keyed by the GPU; in the order made
  std::map<std::string, SriovRecord> sriov;  // keyed by the PF

  // Saving and loading again gives an equal journal (tests/fuzz/journal_fuzz).
  bool operator==(const Journal&) const = default;
};

// Checks /run/pt: it must be a directory owned by us and closed to others.
// With CREATE, makes it (0700) when missing.
Status check_state_dir(const Root& root, bool create);

// A missing journal is an empty one. One that others can write, or that
// belongs to another user, is refused: it decides which drivers root binds.
Result<Journal> load_journal(const Root& root);

// Temp file, fsync, rename, fsync of the directory.
Status save_journal(const Root& root, const Journal& journal);

std::string journal_to_text(const Journal& journal);
Result<Journal> journal_from_text(const std::string& text, const std::string& path);

}  // namespace pt
