#include "pt/wait.hpp"

namespace pt {

WaitReport::WaitReport(const WaitObserver& observer, std::string what, std::string subject,
                       std::chrono::milliseconds limit)
    : observer_(observer ? &observer : nullptr), start_(Clock::now()), last_(start_) {
  if (!observer_) return;
  wait_.what = std::move(what);
  wait_.subject = std::move(subject);
  wait_.limit = limit;
  report(Wait::Phase::start, false);
}

void WaitReport::tick() {
  if (!observer_ || ended_) return;
  if (Clock::now() - last_ < kWaitTick) return;
  report(Wait::Phase::tick, false);
}

void WaitReport::end(bool ok) {
  if (!observer_ || ended_) return;
  ended_ = true;
  report(Wait::Phase::end, ok);
}

void WaitReport::report(Wait::Phase phase, bool ok) {
  last_ = Clock::now();
  wait_.phase = phase;
  wait_.ok = ok;
  wait_.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(last_ - start_);
  (*observer_)(wait_);
}

}  // namespace pt
