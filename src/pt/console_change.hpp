// The changes pt-console makes: release a GPU's consoles and record them in
// the journal's console section, restore exactly what was recorded, bind or
// unbind one console by name, switch the foreground VT. The command parses,
// calls one of these and renders the report; nothing here prints.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pt/console.hpp"
#include "pt/context.hpp"
#include "pt/error.hpp"

namespace pt::console {

// One step as a command reports it.
struct StepOutcome {
  Step step;
  std::string did;     // what happened to the write: planned, done, already, gone, failed
  std::string result;  // the step's end: DID, or failed when what came after it failed
  double ms = 0;       // how long a done write took
};

struct ReleaseReport {
  Plan plan;  // with the notes and what an earlier release already did
  std::vector<StepOutcome> steps;
};

// Releases the consoles of GPU (a display-class PCI function). Takes the pt
// lock unless dry run; records each change in the journal as it is made; when
// a step fails, undoes this run's earlier steps, newest first, and the error
// says whether that worked (Exit::rolled_back, Exit::not_rolled_back).
Result<ReleaseReport> release(Context& ctx, const std::string& gpu);

struct RestoreReport {
  bool recorded = true;  // false: the journal holds nothing for the GPU
  std::vector<StepOutcome> steps;
  std::vector<std::string> notes;
  // A step that failed: what came before it is reported (and left out of the
  // journal); what is not restored stays in the journal.
  std::optional<Error> failure;
};

// Undoes what release recorded for GPU, newest first, and maps the consoles
// fbcon showed on the GPU back to it.
Result<RestoreReport> restore(Context& ctx, const std::string& gpu);

struct BindReport {
  Step step;
  std::string result;   // already, planned, done
  std::string already;  // why nothing was done, for result already
  double ms = 0;
  std::vector<std::string> notes;
};

// Binds (BIND) or unbinds one vtconsole or firmware framebuffer device by
// NAME; DRIVER: the platform driver to bind a firmware framebuffer to ("":
// the registered default).
Result<BindReport> bind_named(Context& ctx, const std::string& name, const std::string& driver,
                              bool bind);

struct VtSwitch {
  std::string tty0;    // the device the switch goes through
  std::string active;  // the active VT after it, "" when unreadable
  double ms = 0;
};

// Switches the foreground VT to ttyN through /dev/tty0 and waits up to the
// context's timeout for the switch (Exit::timeout past it). Dry run only
// checks that /dev/tty0 is a character device.
Result<VtSwitch> switch_vt(Context& ctx, int n);

// "(M) frame buffer device": a vtconsole as list and messages show it.
std::string shown(const VtConsole& v);

// "tty1-63 -> fb0, tty64 -> fb1": runs of consoles mapped to one fb.
std::string con2fb_text(const Con2Fb& m);

// "1 ms" as the commands print a step's time: "%.1f ms".
std::string ms_text(double ms);

}  // namespace pt::console
