// The recovery tests' shared setup: a detached GPU with its display, a
// simulated arbiter and pt.conf's whole recipe (recover_test,
// recover_cmd_test).
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "fake_arbiter.hpp"
#include "fixture.hpp"
#include "pt/bind.hpp"
#include "pt/recover.hpp"

namespace pt::test::recover_env {

using namespace std::chrono_literals;

inline void write_conf(Fixture& fx, const std::string& text) {
  fx.write_file("/etc/pt/pt.conf", text);
  ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
}

inline DeviceSpec spec(const char* text) {
  return parse_device_spec(text).value();
}

// Whether another open file description can take the pt lock right now.
inline bool lock_free(Fixture& fx) {
  int fd = ::open((fx.dir() + kLockPath).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return true;  // no lock file: nobody holds it
  bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);
  return free;
}

// gpu_with_display (01:00.0 VGA with card0 and HDMI-A-1, 01:00.1 audio) with
// a simulated arbiter, pt.conf's whole recipe for it, and both functions
// detached to vfio-pci as a VM start leaves them.
struct Env {
  Fixture fx;
  std::optional<test::FakeArbiter> arb;
  Context ctx;
  std::vector<recover::Event> events;
  std::vector<bool> held_at_start;  // the pt lock as each step started
  Env(bool detach = true) {
    Fixture::gpu_with_display(fx);
    arb.emplace(fx);
    ctx = fx.context();
    ctx.arbiter = &*arb;
    ctx.timeout = 2000ms;
    // A step that took a lock of its own would wait on the one the recovery
    // holds and fail busy after this.
    ctx.lock_timeout = 200ms;
    write_conf(fx, test::kGuestClaim);
    if (detach) {
      const std::vector<DeviceSpec> slot{spec("01:00")};
      auto moved = bind::mutate(
          ctx,
          [&](const Journal& j) { return bind::plan_detach(ctx, slot, bind::DetachOptions{}, j); },
          false);
      REQUIRE(moved);
      REQUIRE(fx.driver_of("0000:01:00.0") == "vfio-pci");
      REQUIRE(fx.driver_of("0000:01:00.1") == "vfio-pci");
    }
  }
  Result<Exit> recover(const std::vector<DeviceSpec>& specs) {
    auto units = recover::plan(fx.root(), specs);
    if (!units) return std::unexpected(units.error());
    return recover::run(ctx, *units, [this](const recover::Event& e) {
      events.push_back(e);
      if (e.kind == recover::Event::Kind::start) held_at_start.push_back(!lock_free(fx));
    });
  }
  // "STEP KIND" for every event but the starts, in order.
  std::vector<std::string> seen() const {
    static const char* const kinds[] = {"start", "skip", "dry-run", "ok", "failed", "done"};
    std::vector<std::string> out;
    for (const auto& e : events)
      if (e.kind != recover::Event::Kind::start)
        out.push_back((e.step.name.empty() ? std::string() : e.step.name + " ") +
                      kinds[int(e.kind)]);
    return out;
  }
};

}  // namespace pt::test::recover_env
