// Lines for the system log: the datagram syslog(3) would send to /dev/log,
// where journald (or rsyslog) picks it up, but sent to ROOT's /dev/log, so
// a --root run logs into its own tree and never into the host's.
#pragma once

#include <string_view>

#include "pt/root.hpp"

namespace pt::syslog {

enum class Level { warning = 4, info = 6 };

// Sends "<PRI>TAG[PID]: MESSAGE" (facility daemon) to ROOT/dev/log. Best
// effort: logging never fails or delays what is being logged, so a missing
// socket, a full queue or a dead logger loses the line silently. Control
// characters in MESSAGE become spaces (one line per record).
void send(const Root& root, Level level, std::string_view tag, std::string_view message);

}  // namespace pt::syslog
