#include "pt/recover.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "fake_arbiter.hpp"
#include "fixture.hpp"
#include "pt/bind.hpp"
#include "pt/journal.hpp"
#include "recover_env.hpp"

using namespace pt;
using namespace std::chrono_literals;
using pt::test::Fixture;
using namespace pt::test::recover_env;

namespace {

const char* const kClaim = test::kGuestClaim;

std::vector<std::string> lines(const std::vector<recover::Step>& steps) {
  std::vector<std::string> out;
  for (const auto& s : steps) {
    std::string l;
    for (const auto& a : recover::step_argv(s)) l += (l.empty() ? "" : " ") + a;
    out.push_back(s.name + ": " + l);
  }
  return out;
}

}  // namespace

TEST_CASE("each recovery step is its tool's command line") {
  auto conf = parse_conf(kClaim, "/etc/pt/pt.conf");
  REQUIRE(conf);
  const auto& d = conf->devices[0];
  auto step = [&](size_t i) {
    return recover::Step{d.recover[i].name, {d.bdf}, d.recover[i].options};
  };
  using V = std::vector<std::string>;
  CHECK(recover::step_argv(step(0)) == V{"pt-reset", "--method", "bus", "--force", "0000:01:00.0"});
  CHECK(recover::step_argv(step(1), "/t") ==
        V{"pt-bind", "--root", "/t", "attach", "0000:01:00.0"});
  CHECK(recover::step_argv(step(2)) == V{"pt-drm", "wait", "0000:01:00.0", "--timeout", "20"});
  CHECK(recover::step_argv(step(3)) == V{"pt-vgaarb", "restore", "0000:01:00.0"});
  CHECK(recover::step_argv(step(4)) == V{"pt-console", "restore", "0000:01:00.0"});
  CHECK(recover::step_argv(step(5)) == V{"pt-drm", "check", "0000:01:00.0"});
}

TEST_CASE("the built-in recipe is pt(7)'s pipeline, for every display function named") {
  Fixture fx;
  Fixture::gpu_with_audio(fx);
  const PciAddress gpu{0, 1, 0, 0}, audio{0, 1, 0, 1};
  auto steps = recover::recipe(fx.root(), {audio, gpu});
  REQUIRE(steps);
  using V = std::vector<std::string>;
  CHECK(lines(*steps) ==
        V{"reset: pt-reset --method bus 0000:01:00.0",
          "attach: pt-bind attach 0000:01:00.0 0000:01:00.1", "drm-wait: pt-drm wait 0000:01:00.0",
          "vgaarb: pt-vgaarb restore 0000:01:00.0", "console: pt-console restore 0000:01:00.0",
          "drm-check: pt-drm check 0000:01:00.0"});
  auto own = recover::recipe(fx.root(), {gpu}, "auto");
  REQUIRE(own);
  CHECK(lines(*own).front() == "reset: pt-reset 0000:01:00.0");
  CHECK(lines(*own)[1] == "attach: pt-bind attach 0000:01:00.0");
  // The audio function alone is no display: it is only attached.
  auto sound = recover::recipe(fx.root(), {audio});
  REQUIRE(sound);
  CHECK(lines(*sound) == V{"attach: pt-bind attach 0000:01:00.1"});
  auto gone = recover::recipe(fx.root(), {PciAddress{0, 7, 0, 0}});
  REQUIRE_FALSE(gone);
  CHECK(gone.error().err == ENODEV);
}

TEST_CASE("the built-in recipe resets several GPUs in one step, then settles them one by one") {
  Fixture fx;
  Fixture::gpu_with_audio(fx);
  fx.add_bridge("0000:00:02.0");
  fx.add_device({.bdf = "0000:02:00.0",
                 .class_code = 0x030200,
                 .parent = "0000:00:02.0",
                 .driver = "nvidia",
                 .group = 2});
  auto steps = recover::recipe(fx.root(), {PciAddress{0, 2, 0, 0}, PciAddress{0, 1, 0, 0}});
  REQUIRE(steps);
  using V = std::vector<std::string>;
  // 02:00.0 is a 3D controller (0302): the arbiter does not manage it.
  CHECK(lines(*steps) ==
        V{"reset: pt-reset --method bus 0000:01:00.0 0000:02:00.0",
          "attach: pt-bind attach 0000:01:00.0 0000:02:00.0", "drm-wait: pt-drm wait 0000:01:00.0",
          "vgaarb: pt-vgaarb restore 0000:01:00.0", "console: pt-console restore 0000:01:00.0",
          "drm-check: pt-drm check 0000:01:00.0", "drm-wait: pt-drm wait 0000:02:00.0",
          "console: pt-console restore 0000:02:00.0", "drm-check: pt-drm check 0000:02:00.0"});
}

TEST_CASE("the recipe's steps are the steps pt.conf knows, in its order") {
  auto conf = parse_conf(kClaim, "/etc/pt/pt.conf");
  REQUIRE(conf);
  const auto& d = conf->devices[0];
  REQUIRE(d.recover.size() == recover::kRecipe.size());
  for (size_t i = 0; i < d.recover.size(); ++i) CHECK(d.recover[i].name == recover::kRecipe[i]);
}

TEST_CASE("plan: pt.conf's list for the functions it names, the built-in recipe for the rest") {
  Fixture fx;
  Fixture::gpu_with_audio(fx);
  fx.add_bridge("0000:00:02.0");
  fx.add_device({.bdf = "0000:02:00.0",
                 .class_code = 0x030000,
                 .parent = "0000:00:02.0",
                 .driver = "nvidia",
                 .group = 2});
  write_conf(fx, R"([device.guest]
bdf = "0000:01:00.0"
companions = ["0000:01:00.1"]
recover = ["attach", "drm-check"]
)");
  // The slot names the device and its companion: its table's list, once.
  auto units = recover::plan(fx.root(), {spec("01:00"), spec("02:00.0")});
  REQUIRE(units);
  REQUIRE(units->size() == 2);
  CHECK((*units)[0].label == "0000:01:00.0");
  CHECK(lines((*units)[0].steps) ==
        std::vector<std::string>{"attach: pt-bind attach 0000:01:00.0",
                                 "drm-check: pt-drm check 0000:01:00.0"});
  CHECK((*units)[1].label == "0000:02:00.0");
  CHECK(lines((*units)[1].steps).front() == "reset: pt-reset --method bus 0000:02:00.0");
  CHECK((*units)[1].steps.size() == 6);

  write_conf(fx, "[device.guest]\nbdf = \"0000:01:00.0\"\nboot = \"vfio\"\n");
  auto empty = recover::plan(fx.root(), {spec("01:00.0")});
  REQUIRE_FALSE(empty);
  CHECK(empty.error().message.find("lists no recover steps") != std::string::npos);
  auto missing = recover::plan(fx.root(), {spec("07:00.0")});
  REQUIRE_FALSE(missing);
}

TEST_CASE("run: every step through its engine, in order, under one lock taken once") {
  Env e;
  const auto writes = e.fx.kernel().log.size();
  auto r = e.recover({spec("01:00.0")});
  REQUIRE_MESSAGE(r, (r ? "" : r.error().describe()));
  CHECK(*r == Exit::ok);
  CHECK(e.seen() == std::vector<std::string>{"reset ok", "attach ok", "drm-wait ok", "vgaarb ok",
                                             "console ok", "drm-check ok", "done"});
  // Each step ran with the lock held, and none took one of its own (it
  // would have waited on this one and failed busy); it is free afterwards.
  CHECK(e.held_at_start == std::vector<bool>(6, true));
  CHECK(lock_free(e.fx));
  // What the steps wrote: the bus reset (Secondary Bus Reset on the root
  // port, set then cleared), both functions back on their drivers with no
  // override, the journal's records gone, decodes io+mem.
  const std::vector<std::pair<std::string, std::string>> log(
      e.fx.kernel().log.begin() + long(writes), e.fx.kernel().log.end());
  const std::pair<std::string, std::string> sbr_on{"/sys/bus/pci/devices/0000:00:01.0/config",
                                                   "@0x03e=0x0040"},
      sbr_off{"/sys/bus/pci/devices/0000:00:01.0/config", "@0x03e=0x0000"};
  auto on = std::find(log.begin(), log.end(), sbr_on);
  REQUIRE(on != log.end());
  CHECK(std::find(on, log.end(), sbr_off) != log.end());
  // The reset came before the attach's first write.
  const std::pair<std::string, std::string> unbind{"/sys/bus/pci/drivers/vfio-pci/unbind",
                                                   "0000:01:00.0"};
  CHECK(std::find(log.begin(), on, unbind) == on);
  CHECK(std::find(on, log.end(), unbind) != log.end());
  CHECK(e.fx.driver_of("0000:01:00.0") == "nvidia");
  CHECK(e.fx.driver_of("0000:01:00.1") == "snd_hda_intel");
  CHECK(e.fx.override_of("0000:01:00.0") == "(null)");
  CHECK(e.fx.override_of("0000:01:00.1") == "(null)");
  auto journal = load_journal(e.fx.root());
  REQUIRE(journal);
  CHECK(journal->devices.empty());
  CHECK_FALSE(journal->job);
  CHECK(e.arb->card("0000:01:00.0").decodes == vga::kIoMem);
  // The details the steps report.
  CHECK(e.events[1].kind == recover::Event::Kind::ok);
  CHECK(e.events[1].detail.starts_with("0000:01:00.0 0000:01:00.1 bus via pt"));
  CHECK(e.events.back().unit == "0000:01:00.0");
  for (const auto& ev : e.events)
    if (ev.kind == recover::Event::Kind::ok && ev.step.name == "drm-check")
      CHECK(ev.detail.starts_with("healthy"));
}

TEST_CASE("run: the failing step's exit status; later steps do not run") {
  Env e;
  // drivers_probe of the GPU fails: the attach undoes itself (exit 3).
  e.fx.fail_write("/sys/bus/pci/drivers_probe", "0000:01:00.0", EIO);
  auto r = e.recover({spec("01:00.0")});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(r.error().message.starts_with("recovery stopped at step 'attach' (exit 3): "));
  CHECK(e.seen() == std::vector<std::string>{"reset ok", "attach failed"});
  CHECK(e.events.back().exit == 3);
  CHECK(e.fx.driver_of("0000:01:00.0") == "vfio-pci");
  CHECK(e.fx.driver_of("0000:01:00.1") == "vfio-pci");
  CHECK(lock_free(e.fx));
}

TEST_CASE("run: an unhealthy display stops at drm-check with its verdict's status") {
  Env e;
  write_conf(e.fx, R"([device.guest]
bdf = "0000:01:00.0"
companions = ["0000:01:00.1"]
recover = ["drm-check", "attach"]
)");
  // Still on vfio-pci: no DRM device, the verdict's exit 1, and the attach
  // after it does not run.
  auto r = e.recover({spec("01:00.0")});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(r.error().message.starts_with(
      "recovery stopped at step 'drm-check' (exit 1): no-drm-device"));
  CHECK(e.seen() == std::vector<std::string>{"drm-check failed"});
  CHECK(e.fx.driver_of("0000:01:00.0") == "vfio-pci");
}

TEST_CASE("run: the lock is taken before any step; held elsewhere, nothing runs (75)") {
  Env e;
  const auto before = e.fx.snapshot();
  int fd = ::open((e.fx.dir() + kLockPath).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  auto r = e.recover({spec("01:00.0")});
  ::close(fd);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::busy);
  CHECK(e.events.empty());
  CHECK(e.fx.snapshot() == before);
}

TEST_CASE("run: a reset is skipped once the function has left vfio-pci") {
  Env e(false);
  auto r = e.recover({spec("01:00.0")});
  REQUIRE_MESSAGE(r, (r ? "" : r.error().describe()));
  CHECK(e.seen().front() == "reset skip");
  CHECK(e.events.front().detail == "the function is on nvidia, not vfio-pci");
  CHECK(e.seen()[1] == "attach ok");
  for (const auto& w : e.fx.kernel().log)
    CHECK(w.first.find("0000:00:01.0/config") == std::string::npos);
}

TEST_CASE("run: a dry run reports the steps, takes no lock and writes nothing") {
  Env e;
  e.ctx.dry_run = true;
  const auto before = e.fx.snapshot();
  const auto writes = e.fx.kernel().log.size();
  auto r = e.recover({spec("01:00.0")});
  REQUIRE(r);
  CHECK(e.seen() == std::vector<std::string>{"reset dry-run", "attach dry-run", "drm-wait dry-run",
                                             "vgaarb dry-run", "console dry-run",
                                             "drm-check dry-run", "done"});
  CHECK(e.fx.snapshot() == before);
  CHECK(e.fx.kernel().log.size() == writes);
}

TEST_CASE("printer: plain lines for logs, a line per step with the elapsed time on a terminal") {
  recover::Unit unit{"0000:01:00.0", {recover::Step{"attach", {PciAddress{0, 1, 0, 0}}, {}}}};
  const auto& step = unit.steps[0];
  using K = recover::Event::Kind;
  std::ostringstream plain, tty;
  auto p = recover::printer(plain, false, "/t");
  auto t = recover::printer(tty, true);
  for (const auto& ev :
       {recover::Event{K::start, unit.label, step, PciAddress{0, 1, 0, 0}, "", 0, 0, 0},
        recover::Event{K::ok, unit.label, step, PciAddress{0, 1, 0, 0},
                       "0000:01:00.0 vfio-pci -> nvidia", 0, 12.4, 1500},
        recover::Event{K::done, unit.label, {}, {}, "", 0, 0, 1600}}) {
    p(ev);
    t(ev);
  }
  CHECK(plain.str() ==
        "recover 0000:01:00.0: attach: pt-bind --root /t attach 0000:01:00.0\n"
        "recover 0000:01:00.0: attach exited 0 after 12 ms: 0000:01:00.0 vfio-pci -> nvidia\n"
        "recover 0000:01:00.0: done\n");
  CHECK(tty.str() ==
        "[   1.50 s] 0000:01:00.0  attach  ok  12.4 ms  0000:01:00.0 vfio-pci -> nvidia\n"
        "[   1.60 s] 0000:01:00.0  recovered\n");
}
