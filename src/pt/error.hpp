// Error values shared by every pt tool. Exceptions are reserved for bugs.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace pt {

// The exit codes documented in pt(7); every tool of the kit uses this table.
enum class Exit : int {
  ok = 0,
  failed = 1,           // failed, nothing changed
  usage = 2,            // bad command line or malformed input
  rolled_back = 3,      // failed after changing something, and every change was undone
  not_rolled_back = 4,  // failed and the undo failed too; the state is printed
  timeout = 5,          // a write blocked in the kernel past --timeout
  degraded = 6,         // reserved for pt-drm check
  busy = 75,            // another pt run holds the lock (EX_TEMPFAIL)
};

struct Error {
  int err = 0;          // errno, or 0 when the failure is not a system call's
  std::string subject;  // the path, device or input the error is about
  std::string message;  // what happened and what to do about it
  Exit exit = Exit::failed;
  // Exit::timeout of a blocking write: the pid of the writer left behind in
  // the kernel, which the journal records so that later runs can wait for it.
  int writer = 0;

  // One line for a person: "subject: message (strerror)".
  std::string describe() const;
};

// S as a terminal may show it: control characters (ESC, CR, a newline in a
// process name any user chose) become \xNN; with KEEP_LINES a newline stays,
// for a whole text output. describe() applies it, and so does every
// command's text output (render.hpp). Bytes in ALSO are escaped too: the
// quotes and operators of a udev rule, for one.
std::string printable(std::string_view s, bool keep_lines = false, std::string_view also = {});

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(std::string subject, std::string message, int err = 0,
                                   Exit exit = Exit::failed) {
  return std::unexpected(Error{err, std::move(subject), std::move(message), exit});
}

inline std::unexpected<Error> usage_error(std::string subject, std::string message) {
  return fail(std::move(subject), std::move(message), 0, Exit::usage);
}

}  // namespace pt
