#include "pt/console_change.hpp"

#include <doctest/doctest.h>

#include "fixture.hpp"
#include "pt/journal.hpp"

using namespace pt;
using namespace std::chrono_literals;

namespace {
Context context_of(test::Fixture& fx, bool dry_run = false) {
  Context ctx = fx.context(dry_run);
  ctx.lock_timeout = 200ms;
  ctx.now = [] { return int64_t(1700000000); };
  return ctx;
}

const std::string kGpu = "0000:01:00.0";
}  // namespace

TEST_CASE("release reports each step done and records it; restore undoes them newest first") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  auto ctx = context_of(fx);
  auto r = console::release(ctx, kGpu);
  REQUIRE(r);
  REQUIRE(r->steps.size() == 2);
  CHECK(r->steps[0].step.change.kind == "vtconsole");
  CHECK(r->steps[0].did == "done");
  CHECK(r->steps[0].result == "done");
  CHECK(r->steps[1].step.path == "/sys/bus/platform/drivers/efi-framebuffer/unbind");
  auto j = load_journal(fx.root());
  REQUIRE(j);
  REQUIRE(j->consoles.count(kGpu));
  CHECK(j->consoles[kGpu].size() == 2);

  auto back = console::restore(ctx, kGpu);
  REQUIRE(back);
  CHECK(back->recorded);
  CHECK(!back->failure);
  REQUIRE(back->steps.size() == 2);
  CHECK(back->steps[0].step.change.kind == "framebuffer");
  CHECK(back->steps[0].step.bind);
  CHECK(back->steps[0].result == "done");
  CHECK(back->steps[1].step.path == "/sys/class/vtconsole/vtcon1/bind");
  CHECK(back->steps[1].step.value == "1");
  REQUIRE(!back->notes.empty());
  CHECK(back->notes.back().rfind("now: fbcon bound", 0) == 0);
  j = load_journal(fx.root());
  REQUIRE(j);
  CHECK(j->consoles.empty());

  auto again = console::restore(ctx, kGpu);
  REQUIRE(again);
  CHECK(!again->recorded);
  CHECK(again->steps.empty());
}

TEST_CASE("release and restore in a dry run plan and change nothing") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "simpledrm");
  auto before = fx.snapshot();
  auto ctx = context_of(fx, true);
  auto r = console::release(ctx, kGpu);
  REQUIRE(r);
  REQUIRE(r->steps.size() == 2);
  for (const auto& s : r->steps) CHECK(s.result == "planned");
  CHECK(fx.kernel().log.empty());
  CHECK(fx.snapshot() == before);
}

TEST_CASE("release undoes its earlier steps when a later one fails") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  fx.fail_write("/sys/bus/platform/drivers/efi-framebuffer/unbind", "", EBUSY);
  auto ctx = context_of(fx);
  auto r = console::release(ctx, kGpu);
  REQUIRE(!r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(fx.read("/sys/class/vtconsole/vtcon1/bind") == "1");
  auto j = load_journal(fx.root());
  REQUIRE(j);
  CHECK(j->consoles.empty());
}

TEST_CASE("bind_named: already, planned and done, and unknown names") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  auto ctx = context_of(fx);
  auto r = console::bind_named(ctx, "frame buffer device", "", true);
  REQUIRE(r);
  CHECK(r->result == "already");
  CHECK(r->already == "vtcon1 'frame buffer device' is already bound");
  CHECK(fx.kernel().log.empty());

  auto dry = context_of(fx, true);
  r = console::bind_named(dry, "frame buffer device", "", false);
  REQUIRE(r);
  CHECK(r->result == "planned");
  CHECK(r->step.path == "/sys/class/vtconsole/vtcon1/bind");
  CHECK(r->step.value == "0");
  CHECK(fx.kernel().log.empty());

  r = console::bind_named(ctx, "frame buffer device", "", false);
  REQUIRE(r);
  CHECK(r->result == "done");
  CHECK(fx.read("/sys/class/vtconsole/vtcon1/bind") == "0");

  r = console::bind_named(ctx, "frame buffer device", "vesafb", true);
  REQUIRE(!r);
  CHECK(r.error().exit == Exit::usage);
  r = console::bind_named(ctx, "no such console", "", true);
  REQUIRE(!r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().message.find("known here:") != std::string::npos);
}

TEST_CASE("switch_vt refuses a /dev/tty0 that is not a character device under --root") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  auto ctx = context_of(fx, true);
  auto r = console::switch_vt(ctx, 2);
  REQUIRE(!r);
  CHECK(r.error().message.find("under --root") != std::string::npos);
}

TEST_CASE("con2fb_text folds runs of consoles mapped to one framebuffer") {
  console::Con2Fb m;
  CHECK(console::con2fb_text(m).rfind("unknown", 0) == 0);
  m.known = true;
  CHECK(console::con2fb_text(m) == "no console is mapped to a framebuffer");
  for (int c = 1; c <= 3; ++c) m.map[c] = 0;
  m.map[5] = 0;
  m.map[6] = 1;
  CHECK(console::con2fb_text(m) == "tty1-3 -> fb0, tty5 -> fb0, tty6 -> fb1");
  CHECK(console::ms_text(12.34) == "12.3 ms");
  CHECK(console::shown(console::VtConsole{"vtcon1", "frame buffer device", "M", true}) ==
        "(M) frame buffer device");
}
