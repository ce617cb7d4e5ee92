// pt-vgaarb's engine: what the arbiter says about each display function,
// decodes changed and proved, the journal's `vga` records restored, and a
// command run under a VGA lock. The commands print what these return.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pt/context.hpp"
#include "pt/journal.hpp"
#include "pt/pci.hpp"
#include "pt/vgaarb.hpp"

namespace pt::vgaarb {

inline constexpr const char* kStates = "none, io, mem or io+mem";

// One display function as list and show print it.
struct Row {
  Device dev;
  bool arbitrated = false;
  std::optional<unsigned> command;  // IO (1) and MEM (2) enable of the PCI command register
  std::optional<vga::Status> status;
  std::string line;  // the arbiter's line as read
  std::string note;  // why there is no status
};

// Nothing when the context's arbiter can be used.
Status arbiter_state(Context& ctx);

struct Bridge {
  std::string device;
  std::optional<bool> vga_enable;  // nullopt: config space unreadable
};

// Every bridge above D, nearest first, with its Bridge Control VGA Enable.
std::vector<Bridge> upstream_bridges(const Root& root, const Device& d);

// pt-vgaarb list: every display function and pre-2.0 VGA device (what the
// arbiter could manage), in address order, and whether the arbiter answers.
struct Survey {
  std::vector<Row> rows;
  Status arbiter;
};
Result<Survey> survey(Context& ctx);

// pt-vgaarb show: DEV's row, the bridges above it, the kernel's log lines
// about it and its journal record.
struct Shown {
  Row row;
  std::vector<Bridge> bridges;
  Result<std::vector<std::string>> kernel_log;
  std::optional<VgaRecord> record;
  std::optional<Error> journal_error;  // the journal could not be read
};
Shown inspect(Context& ctx, const Device& dev);

// What the arbiter's decodes becomes for a requested state. The kernel's
// vga_str_to_iostate takes "io" and "mem" as io+mem; "none" is none.
unsigned effective_decodes(unsigned requested);

struct Change {
  vga::Status before, after;
  bool already = false;
};

// pt-vgaarb decodes: with ctx.dry_run, only the current status (in
// Change::before); else, under the lock, STATE written to DEV and proved by
// reading back.
Result<Change> decodes(Context& ctx, const Device& dev, unsigned state);

struct Restore {
  unsigned target = vga::kIoMem;
  std::string source;           // where TARGET comes from, for the user
  vga::Status current;          // dry run: the status now
  Change change;                // not a dry run
  bool dropped = false;         // the journal record is removed
  bool owns_note = false;       // the boot VGA device owns nothing now
  std::vector<Bridge> bridges;  // with owns_note
};

// pt-vgaarb restore: DEV's decodes back to its journal record (io+mem
// without one, and for the boot VGA whose record says none), the record
// removed. With ctx.dry_run nothing is written.
Result<Restore> restore(Context& ctx, const Device& dev);

// pt-vgaarb lock: runs ARGV with STATE of DEV locked, signals forwarded to
// it, then unlocks and hands the legacy resources back to their former
// owners. CMD's status: its exit code, or 128+N when signal N killed it.
Result<int> run_locked(Context& ctx, const Device& dev, unsigned state,
                       const std::vector<std::string>& argv);

}  // namespace pt::vgaarb
