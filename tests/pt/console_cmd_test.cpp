#include "pt/console_cmd.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "fixture.hpp"
#include "pt/journal.hpp"

using namespace pt;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {
Result<Exit> run(test::Fixture& fx, const std::string& command, const std::string& target,
                 std::string& out, bool json_out = false, bool dry_run = false) {
  console::CliOptions o;
  o.command = command;
  o.target = target;
  o.common.json = json_out;
  o.common.dry_run = dry_run;
  Context ctx;
  ctx.root = fx.root();
  ctx.writer = &fx.kernel();
  ctx.modules = &fx.modules();
  ctx.timeout = 200ms;
  ctx.lock_timeout = 200ms;
  ctx.dry_run = dry_run;
  ctx.now = [] { return int64_t(1700000000); };
  std::ostringstream s;
  auto r = console::run_in(o, ctx, s);
  out = s.str();
  return r;
}

Journal journal_of(test::Fixture& fx) {
  auto j = load_journal(fx.root());
  REQUIRE(j);
  return *j;
}
}  // namespace

TEST_CASE(
    "list --json shows every vtconsole, framebuffer, firmware framebuffer and the active VT") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  std::string out;
  REQUIRE(run(fx, "list", "", out, true));
  auto j = json::parse(out);
  REQUIRE(j["vtconsoles"].size() == 2);
  CHECK(j["vtconsoles"][1] == json{{"node", "vtcon1"},
                                   {"name", "frame buffer device"},
                                   {"mark", "M"},
                                   {"bound", true},
                                   {"fbcon", true}});
  REQUIRE(j["framebuffers"].size() == 1);
  CHECK(j["framebuffers"][0]["node"] == "fb0");
  CHECK(j["framebuffers"][0]["firmware"] == "efi-framebuffer.0");
  CHECK(j["framebuffers"][0]["gpu"] == "0000:01:00.0");
  CHECK(j["framebuffers"][0]["pci"].is_null());
  REQUIRE(j["firmware_framebuffers"].size() == 1);
  CHECK(j["firmware_framebuffers"][0]["driver"] == "efi-framebuffer");
  CHECK(j["firmware_framebuffers"][0]["gpu_from"] == "iomem");
  CHECK(j["con2fb"].is_null());
  CHECK(j["active_vt"] == "tty1");
  CHECK(j["boot_vga"] == "0000:01:00.0");
  CHECK(j["released"] == json::object());
  REQUIRE(run(fx, "list", "", out));
  CHECK(out.find("vtcon1     (M) frame buffer device       bound  (fbcon)") != std::string::npos);
  CHECK(out.find("efi-framebuffer.0") != std::string::npos);
  CHECK(out.find("active VT:  tty1") != std::string::npos);
}

TEST_CASE("release then restore on efifb: files written, journal kept in order and emptied") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  auto before = fx.snapshot();
  std::string out;
  auto r = run(fx, "release", "01:00.0", out);
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  CHECK(fx.read("/sys/class/vtconsole/vtcon1/bind") == "0");
  CHECK(fx.read("/sys/class/vtconsole/vtcon0/bind") == "1");
  CHECK(!fx.exists("/sys/bus/platform/devices/efi-framebuffer.0/driver"));
  CHECK(!fx.exists("/sys/class/graphics/fb0"));
  REQUIRE(fx.kernel().log.size() == 2);
  CHECK(fx.kernel().log[0] ==
        std::pair<std::string, std::string>{"/sys/class/vtconsole/vtcon1/bind", "0"});
  CHECK(fx.kernel().log[1] ==
        std::pair<std::string, std::string>{"/sys/bus/platform/drivers/efi-framebuffer/unbind",
                                            "efi-framebuffer.0"});
  auto j = journal_of(fx);
  REQUIRE(j.consoles.count("0000:01:00.0"));
  const auto& c = j.consoles["0000:01:00.0"];
  REQUIRE(c.size() == 2);
  CHECK(c[0].kind == "vtconsole");
  CHECK(c[0].name == "frame buffer device");
  CHECK(c[0].node == "vtcon1");
  CHECK(c[0].driver.empty());
  REQUIRE(c[0].served.size() == 1);
  CHECK(c[0].served[0].node == "fb0");
  CHECK(c[0].served[0].name == "EFI VGA");
  CHECK(c[0].time == 1700000000);
  CHECK(c[1].kind == "framebuffer");
  CHECK(c[1].name == "efi-framebuffer.0");
  CHECK(c[1].driver == "efi-framebuffer");

  fx.kernel().log.clear();
  r = run(fx, "restore", "01:00.0", out);
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  REQUIRE(fx.kernel().log.size() == 2);
  CHECK(fx.kernel().log[0] ==
        std::pair<std::string, std::string>{"/sys/bus/platform/drivers/efi-framebuffer/bind",
                                            "efi-framebuffer.0"});
  CHECK(fx.kernel().log[1] ==
        std::pair<std::string, std::string>{"/sys/class/vtconsole/vtcon1/bind", "1"});
  CHECK(journal_of(fx).consoles.empty());
  CHECK(fx.snapshot() == before);

  r = run(fx, "restore", "01:00.0", out);
  REQUIRE(r);
  CHECK(out.find("nothing recorded for 0000:01:00.0") != std::string::npos);
}

TEST_CASE("release twice is idempotent: nothing written, nothing recorded twice") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "vesafb");
  std::string out;
  REQUIRE(run(fx, "release", "01:00.0", out));
  auto after_first = fx.snapshot();
  auto j1 = journal_of(fx);
  fx.kernel().log.clear();
  REQUIRE(run(fx, "release", "01:00.0", out));
  CHECK(fx.kernel().log.empty());
  CHECK(fx.snapshot() == after_first);
  CHECK(journal_to_text(journal_of(fx)) == journal_to_text(j1));
  CHECK(out.find("already released") != std::string::npos);
}

TEST_CASE("release --dry-run plans the writes and changes nothing") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "simpledrm");
  auto before = fx.snapshot();
  std::string out;
  REQUIRE(run(fx, "release", "01:00.0", out, true, true));
  auto j = json::parse(out);
  CHECK(j["dry_run"] == true);
  REQUIRE(j["steps"].size() == 2);
  CHECK(j["steps"][1]["path"] == "/sys/bus/platform/drivers/simple-framebuffer/unbind");
  CHECK(j["steps"][1]["result"] == "planned");
  CHECK(fx.kernel().log.empty());
  CHECK(fx.snapshot() == before);
  CHECK(!fx.exists("/run/pt/journal.json"));
}

TEST_CASE("no console: release and restore are no-ops that say so") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "none");
  auto before = fx.snapshot();
  std::string out;
  auto r = run(fx, "release", "01:00.0", out);
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  CHECK(out.find("no console on 0000:01:00.0: nothing to release") != std::string::npos);
  CHECK(fx.kernel().log.empty());
  CHECK(journal_of(fx).consoles.empty());
  REQUIRE(run(fx, "restore", "01:00.0", out));
  CHECK(out.find("nothing to restore") != std::string::npos);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("release fails with exit 1 and records nothing when the kernel keeps fbcon") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  fx.add_vtconsole(1, "(M) frame buffer device", true);
  fx.add_framebuffer(0, "nvidiadrmfb", "0000:01:00.0");
  auto before = fx.snapshot();
  std::string out;
  auto r = run(fx, "release", "01:00.0", out);
  REQUIRE(!r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(r.error().message.find("no other console driver is registered") != std::string::npos);
  CHECK(journal_of(fx).consoles.empty());
  CHECK(fx.snapshot() == before);
}

TEST_CASE("a failure after a change rolls the change back: exit 3, journal empty") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  fx.fail_write("/sys/bus/platform/drivers/efi-framebuffer/unbind", "", EBUSY);
  auto before = fx.snapshot();
  std::string out;
  auto r = run(fx, "release", "01:00.0", out);
  REQUIRE(!r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(r.error().message.find("undone") != std::string::npos);
  CHECK(fx.read("/sys/class/vtconsole/vtcon1/bind") == "1");
  CHECK(journal_of(fx).consoles.empty());
  CHECK(fx.snapshot() == before);
}

TEST_CASE("restore binds fbcon back through a modular holder: the dummy console that took over") {
  // The console topology of the testbed: VGA+ was removed, the dummy console
  // registered as a modular driver; vt_bind ignores a bind while it holds the consoles.
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  fx.add_vtconsole(0, "(M) frame buffer device", true).add_vtconsole(1, "(M) dummy device", false);
  fx.add_framebuffer(0, "nvidiadrmfb", "0000:01:00.0");
  std::string out;
  REQUIRE(run(fx, "release", "01:00.0", out));
  CHECK(fx.read("/sys/class/vtconsole/vtcon0/bind") == "0");
  CHECK(fx.read("/sys/class/vtconsole/vtcon1/bind") == "1");
  fx.kernel().log.clear();
  auto r = run(fx, "restore", "01:00.0", out);
  REQUIRE(r);
  CHECK(fx.read("/sys/class/vtconsole/vtcon0/bind") == "1");
  CHECK(fx.read("/sys/class/vtconsole/vtcon1/bind") == "0");
  REQUIRE(fx.kernel().log.size() == 2);
  CHECK(fx.kernel().log[0] ==
        std::pair<std::string, std::string>{"/sys/class/vtconsole/vtcon0/bind", "1"});
  CHECK(fx.kernel().log[1] ==
        std::pair<std::string, std::string>{"/sys/class/vtconsole/vtcon1/bind", "0"});
  CHECK(out.find("modular 'dummy device'") != std::string::npos);
  CHECK(journal_of(fx).consoles.empty());
}

TEST_CASE("restore says what exists instead when the recorded framebuffer was replaced") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  std::string out;
  REQUIRE(run(fx, "release", "01:00.0", out));
  // The GPU's DRM driver came back (after a detach and attach) and removed
  // the firmware framebuffer: fb1 from the re-probed driver instead.
  std::filesystem::remove_all(fx.dir() + "/sys/devices/platform/efi-framebuffer.0");
  std::filesystem::remove(fx.dir() + "/sys/bus/platform/devices/efi-framebuffer.0");
  fx.add_framebuffer(1, "nvidiadrmfb", "0000:01:00.0");
  fx.kernel().log.clear();
  auto r = run(fx, "restore", "01:00.0", out, true);
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  auto j = json::parse(out);
  REQUIRE(j["steps"].size() == 2);
  CHECK(j["steps"][0]["name"] == "efi-framebuffer.0");
  CHECK(j["steps"][0]["result"] == "gone");
  CHECK(j["steps"][1]["result"] == "done");
  std::string notes = j["notes"].dump();
  CHECK(notes.find("efi-framebuffer.0 no longer exists") != std::string::npos);
  CHECK(notes.find("fbcon served fb0 (EFI VGA) of 0000:01:00.0 at release; fb0 no longer exists") !=
        std::string::npos);
  CHECK(notes.find("framebuffers now: fb1 (nvidiadrmfb)") != std::string::npos);
  REQUIRE(fx.kernel().log.size() == 1);
  CHECK(fx.kernel().log[0] ==
        std::pair<std::string, std::string>{"/sys/class/vtconsole/vtcon1/bind", "1"});
  CHECK(journal_of(fx).consoles.empty());
}

TEST_CASE(
    "bad input: not a display device, no such device, unknown name, bad VT; nothing changes") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  auto before = fx.snapshot();
  std::string out;
  auto r = run(fx, "release", "01:00.1", out);
  REQUIRE(!r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().message.find("not a display controller (class 0403)") != std::string::npos);
  r = run(fx, "restore", "07:00.0", out);
  REQUIRE(!r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(r.error().message.find("no such PCI device") != std::string::npos);
  r = run(fx, "release", "01:00", out);
  REQUIRE(!r);
  CHECK(r.error().exit == Exit::usage);
  r = run(fx, "unbind", "frame buffer thing", out);
  REQUIRE(!r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().subject == "'frame buffer thing'");
  CHECK(r.error().message.find("'frame buffer device'") != std::string::npos);
  CHECK(r.error().message.find("efi-framebuffer.0") != std::string::npos);
  for (const char* bad : {"0", "64", "x", "2x", "-1"}) {
    r = run(fx, "vt", bad, out);
    REQUIRE(!r);
    CHECK(r.error().exit == Exit::usage);
  }
  CHECK(fx.kernel().log.empty());
  CHECK(fx.snapshot() == before);
}

TEST_CASE("vt under --root refuses a /dev/tty0 that is not a character device") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  std::string out;
  auto r = run(fx, "vt", "2", out);
  REQUIRE(!r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(r.error().subject == fx.dir() + "/dev/tty0");
  CHECK(r.error().message.find("never falls back to the real /dev/tty0") != std::string::npos);
  CHECK(fx.read("/sys/class/tty/tty0/active") == "tty1");
}

TEST_CASE("bind and unbind by name: vtconsole and firmware framebuffer, verified, no journal") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "vesafb");
  std::string out;
  REQUIRE(run(fx, "unbind", "frame buffer device", out));
  CHECK(fx.read("/sys/class/vtconsole/vtcon1/bind") == "0");
  REQUIRE(run(fx, "unbind", "vesa-framebuffer.0", out));
  CHECK(!fx.exists("/sys/bus/platform/devices/vesa-framebuffer.0/driver"));
  REQUIRE(run(fx, "unbind", "vesa-framebuffer.0", out));
  CHECK(out.find("has no driver bound") != std::string::npos);
  REQUIRE(run(fx, "bind", "vesa-framebuffer.0", out));
  CHECK(link_basename(fx.dir() + "/sys/bus/platform/devices/vesa-framebuffer.0/driver") ==
        "vesa-framebuffer");
  CHECK(fx.exists("/sys/class/graphics/fb0"));
  REQUIRE(run(fx, "bind", "(M) frame buffer device", out));
  CHECK(fx.read("/sys/class/vtconsole/vtcon1/bind") == "1");
  CHECK(journal_of(fx).consoles.empty());
  // An (S) driver ignores writes: bind reports the read-back.
  auto r = run(fx, "bind", "dummy device", out);
  REQUIRE(!r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(r.error().message.find("reads back \"0\"") != std::string::npos);
}
