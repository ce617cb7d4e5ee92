#include "pt/context.hpp"

#include <cmath>
#include <cstdio>
#include <thread>

namespace pt {

Result<std::chrono::milliseconds> duration(double seconds, const std::string& name, bool zero_ok) {
  // %g keeps 1e300 short in the message, where the digits would not help.
  char shown[32];
  std::snprintf(shown, sizeof shown, "%g", seconds);
  char range[96];
  std::snprintf(range, sizeof range, "give a number of seconds from %s to %g",
                zero_ok ? "0" : "0.001", kMaxDurationSeconds);
  if (!std::isfinite(seconds))
    return usage_error(name, std::string("'") + shown + "' is not a number of seconds; " + range);
  if (seconds < 0 || (seconds == 0 && !zero_ok) || seconds > kMaxDurationSeconds)
    return usage_error(name, std::string("'") + shown + "' is out of range; " + range);
  // Checked above, so the conversion is defined; ceil: 0.0001 s waits 1 ms, not 0.
  auto ms = std::chrono::milliseconds(int64_t(std::ceil(seconds * 1000.0)));
  return ms;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  return wait_until(pred, timeout, nullptr, "", "");
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                const WaitObserver& on_wait, const std::string& what, const std::string& subject) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (pred()) return true;
  WaitReport report(on_wait, what, subject, timeout);
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
    if (pred()) {
      report.end(true);
      return true;
    }
    report.tick();
  }
}

}  // namespace pt
