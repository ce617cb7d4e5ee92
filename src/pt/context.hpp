// What every operation needs: where the system is, how to write to it and
// load modules, and the limits the user set.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "pt/error.hpp"
#include "pt/modules.hpp"
#include "pt/root.hpp"
#include "pt/sysfs.hpp"
#include "pt/wait.hpp"

namespace pt {

class Arbiter;

struct Context {
  Root root;
  SysfsWriter* writer = nullptr;
  ModuleLoader* modules = nullptr;
  Arbiter* arbiter = nullptr;  // /dev/vga_arbiter; null where a caller has none
  std::chrono::milliseconds timeout{10000};       // per blocking write and per verification
  std::chrono::milliseconds lock_timeout{30000};
  bool dry_run = false;
  // The caller holds the kit lock for the whole run (pt-bind recover's
  // steps): the engines take none of their own, which would wait on it.
  bool lock_held = false;
  // Told when a wait that may take seconds starts, how it goes and when it
  // ends (wait.hpp); a tool on a terminal shows it. Empty: nobody is told.
  WaitObserver on_wait = nullptr;
  // Tests replace the clock-free parts; production leaves these alone.
  std::function<int64_t()> now = nullptr;  // seconds since the epoch
};

// Options every tool shares (pt(7)); tools/common.cpp registers them.
struct CommonOptions {
  // Not an option: the tool's name (add_common_options), the identifier of
  // its journal records (journald.hpp).
  std::string tool;
  std::optional<std::string> root;
  bool json = false;
  int verbose = 0;
  bool dry_run = false;
  double timeout = 10.0;
  double lock_timeout = 30.0;
  // Not an option: the progress printer main installs (on a terminal, not
  // --json), which open_system hands to Context::on_wait.
  WaitObserver on_wait = nullptr;
};

// The longest duration pt takes from a person (--timeout, --lock-timeout,
// pt.conf's drm-wait timeout): a day. poll(2) takes an int of milliseconds.
inline constexpr double kMaxDurationSeconds = 86400;

// The one check of such a duration: finite, above 0 (or 0 itself where
// ZERO_OK, "try once"), at most kMaxDurationSeconds. NAME is the option or
// key, for the message; the error is a usage error (exit 2). A positive value
// under a millisecond becomes 1 ms.
Result<std::chrono::milliseconds> duration(double seconds, const std::string& name, bool zero_ok);

// Polls PRED with a growing interval (1 ms doubling to 50 ms) until it holds
// or TIMEOUT passes; used where the kernel finishes work asynchronously.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// The same, told to ON_WAIT as a wait for WHAT (wait.hpp) once PRED first
// fails, so a wait that is over at once is not reported at all.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                const WaitObserver& on_wait, const std::string& what, const std::string& subject);

}  // namespace pt
