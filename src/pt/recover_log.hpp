// The state at each step of a recovery, in the system log: the origin
// story's admin asked to "document the hardware state at each step", and a
// recovery started by udev or a hook has no one watching it.
#pragma once

#include <string>
#include <vector>

#include "pt/recover.hpp"
#include "pt/root.hpp"
#include "pt/vgaarb.hpp"

namespace pt::recover {

// Logs, through ROOT's /dev/log under TAG ("pt-bind", "pt"), each unit's
// state (state::summary of its first function's slot) before it starts,
// then after each step that ran what changed since the previous step
// (state::diff, "no change" when nothing did), at warning level for a step
// that failed. Then hands each event to NEXT. Only what steps change is read
// (state::Depth::steps before, state::refresh after each step), and never
// through the DRM backend: the DRM steps report
// the display themselves, and a connector probe per step would slow the
// recovery down. ARBITER may be null.
Observer state_logger(const Root& root, Arbiter* arbiter, std::string tag,
                      const std::vector<Unit>& units, Observer next);

}  // namespace pt::recover
