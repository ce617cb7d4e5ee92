// Structured records for the systemd journal: each change pt makes to the
// system, each recovery step and the end of a run that changed something, as
// journald's native protocol carries them (a datagram of KEY=value fields),
// with a MESSAGE_ID per kind of event that the catalog (systemd/pt.catalog)
// explains and PT_* fields a fleet can filter on:
//
//   journalctl MESSAGE_ID=<id> PT_BDF=0000:01:00.0 -o json
//
// Sent to ROOT's /run/systemd/journal/socket, so a --root run logs into its
// own tree and never into the host's. Without a journal there (rsyslog, a
// container, a fixture tree) nothing is sent: the syslog lines pt already
// writes (syslog.hpp) stay the record there.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pt/error.hpp"
#include "pt/kernel_writer.hpp"
#include "pt/root.hpp"

namespace pt::journald {

// The kinds of event, one MESSAGE_ID each (pt.catalog holds their text).
enum class Kind {
  bind,          // a driver binding changes: driver_override, bind, unbind, drivers_probe, new_id
  reset,         // a reset or what replaces one: reset, reset_method, remove, rescan, slot power
  vgaarb,        // the VGA arbiter's decodes of a device
  console,       // a vtconsole bound or unbound, a framebuffer handed over
  power,         // runtime power management: power/control, d3cold_allowed
  write,         // any other kernel attribute or config register pt writes
  recover_step,  // a step of pt-bind recover / pt recover ended
  command,       // a run that changed the system ended, with its exit status
};

// The 128-bit id in 32 lowercase hex digits, as journalctl MESSAGE_ID= takes it.
std::string_view message_id(Kind kind);
// "bind", "reset", ...: the kind's name, PT_EVENT's value.
std::string_view kind_name(Kind kind);

struct Record {
  Kind kind = Kind::write;
  int priority = 6;        // syslog(3) level: 6 info, 4 warning, 3 error
  std::string identifier;  // SYSLOG_IDENTIFIER: the tool ("pt-bind")
  std::string message;     // MESSAGE: one line for a person
  // PT_BDF, PT_STEP, PT_RESULT, PT_EXIT and the like, in order.
  std::vector<std::pair<std::string, std::string>> fields;
};

// RECORD as one datagram of journald's native protocol: KEY=value lines,
// and the binary form (KEY, newline, 64-bit little-endian length, bytes) for
// a value holding a newline. MESSAGE_ID, PRIORITY, SYSLOG_IDENTIFIER,
// PT_EVENT and MESSAGE come first, then FIELDS.
std::string encode(const Record& record);

// Sends RECORD to ROOT/run/systemd/journal/socket. Best effort, as syslog
// is: never blocks and never fails what is being logged. False when there is
// no journal to take it.
bool send(const Root& root, const Record& record);

// What a kernel write means as a record: its kind, step (the attribute:
// "unbind", "decodes", "config") and function. ARBITER_TARGET keeps the
// device the VGA arbiter was last pointed at, since its writes name it only
// in "target". Nothing for writes that change no state of a device (the
// arbiter's target, lock and unlock).
std::optional<Record> step_record(const std::string& tool, const WriteEvent& event,
                                  std::string& arbiter_target);

// The writer observer every tool gets (open_system): each write as a record
// through send(), then NEXT (the -v printer; may be empty). The first record
// makes the run one that changed the system, for command_end().
ObservedWriter::Observer step_logger(const Root& root, std::string tool,
                                     ObservedWriter::Observer next);

// At the end of a run: when step_logger() logged a change in this process,
// one `command` record with PT_EXIT (and the functions it touched in PT_BDF,
// space-separated); otherwise nothing, so read-only commands stay silent.
void command_end(const std::string& tool, Exit exit, const std::string& error_text);

}  // namespace pt::journald
