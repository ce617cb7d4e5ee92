#include "pt/recover_log.hpp"

#include <map>
#include <memory>
#include <utility>

#include "pt/journald.hpp"
#include "pt/state.hpp"
#include "pt/syslog.hpp"

namespace pt::recover {

namespace {

struct UnitState {
  std::string device;  // the first function a step acts on: collect's DEV
  std::optional<state::Snapshot> last;
};

}  // namespace

Observer state_logger(const Root& root, Arbiter* arbiter, std::string tag,
                      const std::vector<Unit>& units, Observer next) {
  auto states = std::make_shared<std::map<std::string, UnitState>>();
  const state::Sources sources{arbiter, nullptr};
  for (const auto& u : units) {
    if (u.steps.empty() || u.steps.front().devices.empty()) continue;
    UnitState& us = (*states)[u.label];
    us.device = u.steps.front().devices.front().str();
    auto s = state::collect(root, us.device, sources, state::Depth::steps);
    if (s) {
      syslog::send(root, syslog::Level::info, tag,
                   "recover " + u.label + ": state before: " + state::summary(*s));
      us.last = state::volatile_part(std::move(*s));
    } else {
      syslog::send(root, syslog::Level::warning, tag,
                   "recover " + u.label + ": state before: unreadable: " + s.error().describe());
    }
  }
  return [root, arbiter, tag = std::move(tag), states, next = std::move(next)](const Event& e) {
    if (e.kind == Event::Kind::ok || e.kind == Event::Kind::failed) {
      auto it = states->find(e.unit);
      if (it != states->end()) {
        UnitState& us = it->second;
        const bool ok = e.kind == Event::Kind::ok;
        std::string head = "recover " + e.unit + ": state after " + e.step.name +
                           (ok ? " (ok)" : " (failed, exit " + std::to_string(e.exit) + ")") + ": ";
        // After a step only what a step changes is read again: a whole
        // collect per step would cost the recovery more than its writes.
        const state::Sources src{arbiter, nullptr};
        auto s = us.last ? state::refresh(root, *us.last, src)
                         : state::collect(root, us.device, src, state::Depth::steps);
        std::string body;
        if (!s) {
          body = "unreadable: " + s.error().describe();
        } else {
          if (us.last) {
            for (const auto& c : state::diff(*us.last, *s))
              body += (body.empty() ? "" : "; ") + c.describe();
            if (body.empty()) body = "no change";
          } else {
            body = state::summary(*s);
          }
          us.last = state::volatile_part(std::move(*s));
        }
        // With a journal, the line goes there as a structured record (its
        // text unchanged, under the same identifier); syslog is the fallback.
        journald::Record rec{journald::Kind::recover_step, ok ? 6 : 4, tag, head + body, {}};
        for (const auto& d : e.step.devices) rec.fields.emplace_back("PT_BDF", d.str());
        rec.fields.emplace_back("PT_STEP", e.step.name);
        rec.fields.emplace_back("PT_RESULT", ok ? "ok" : "failed");
        rec.fields.emplace_back("PT_EXIT", std::to_string(ok ? 0 : e.exit));
        rec.fields.emplace_back("PT_UNIT", e.unit);
        rec.fields.emplace_back("PT_STATE_CHANGES", body);
        if (!journald::send(root, rec))
          syslog::send(root, ok ? syslog::Level::info : syslog::Level::warning, tag, head + body);
      }
    }
    if (next) next(e);
  };
}

}  // namespace pt::recover
