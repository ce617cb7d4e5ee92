// Waits a person at a terminal may notice: the pt lock, a blocking sysfs
// write, a DRM card, a device coming back after a reset. Each reports its
// start, its progress (about every kWaitTick) and its end to an observer the
// tool installs (Context::on_wait); the library never prints. Only the types
// and the reporter live here, so the seam (kernel_writer) can report too.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace pt {

struct Wait {
  enum class Phase { start, tick, end };
  Phase phase = Phase::start;
  // What is awaited, as the words after "waiting for": "the pt lock (held by
  // pid 42)", "nvidia to release 0000:01:00.0 (unbind)".
  std::string what;
  std::string subject;  // the device or path awaited
  std::chrono::milliseconds elapsed{0};
  std::chrono::milliseconds limit{0};  // the deadline's distance; 0: none
  bool ok = false;                     // at the end: what was awaited happened
};

using WaitObserver = std::function<void(const Wait&)>;

// The words for a wait on WHO's driver binding: "WHO to be bound to DRIVER",
// or "WHO to be unbound" when DRIVER is empty.
inline std::string binding_wait(const std::string& who, const std::string& driver) {
  return who + (driver.empty() ? " to be unbound" : " to be bound to " + driver);
}

// How often a wait reports while it lasts.
inline constexpr std::chrono::milliseconds kWaitTick{250};

// One wait as its observer sees it: start when constructed, a tick at most
// every kWaitTick, one end (ok, or not when it is destroyed unended, as an
// early return by an error). Without an observer every call does nothing.
class WaitReport {
 public:
  WaitReport(const WaitObserver& observer, std::string what, std::string subject,
             std::chrono::milliseconds limit);
  WaitReport(const WaitReport&) = delete;
  WaitReport& operator=(const WaitReport&) = delete;
  ~WaitReport() { end(false); }
  // Reports progress if kWaitTick has passed since the last report.
  void tick();
  void end(bool ok);

 private:
  using Clock = std::chrono::steady_clock;
  void report(Wait::Phase phase, bool ok);
  const WaitObserver* observer_;
  Wait wait_;
  Clock::time_point start_;
  Clock::time_point last_;
  bool ended_ = false;
};

}  // namespace pt
