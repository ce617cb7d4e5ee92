// pt-console as a user runs it: the real binary on fixture trees through --root.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "fixture.hpp"
#include "pt/journal.hpp"
#include "run_tool.hpp"

namespace {
pt::test::Run pt_console(const std::string& args) {
  return pt::test::run_tool("pt-console", args);
}
}  // namespace

TEST_CASE("pt-console refuses bad input with documented exit codes and changes nothing") {
  pt::test::Fixture fx;
  pt::test::Fixture::boot_console(fx, "efifb");
  auto before = fx.snapshot();
  const std::string root = "--root " + fx.dir() + " ";
  auto r = pt_console(root + "release 01:00.1");
  CHECK(r.status == 2);
  CHECK(r.out.find("'01:00.1'") != std::string::npos);
  CHECK(r.out.find("not a display controller") != std::string::npos);
  r = pt_console(root + "release zz:00.0");
  CHECK(r.status == 2);
  r = pt_console(root + "restore 09:00.0");
  CHECK(r.status == 1);
  CHECK(r.out.find("no such PCI device") != std::string::npos);
  r = pt_console(root + "bind 'no such console'");
  CHECK(r.status == 2);
  CHECK(r.out.find("'no such console'") != std::string::npos);
  r = pt_console(root + "vt 99");
  CHECK(r.status == 2);
  CHECK(r.out.find("from 1 to 63") != std::string::npos);
  r = pt_console(root + "vt 2");
  CHECK(r.status == 1);
  CHECK(r.out.find("not a character device under --root") != std::string::npos);
  CHECK(pt_console(root).status == 2);
  CHECK(pt_console(root + "release").status == 2);
  CHECK(fx.snapshot() == before);
}

TEST_CASE(
    "pt-console verifies what it writes: a plain tree swallows the unbind, so release rolls back") {
  // Under --root the writes land in plain files: the vtconsole bind file
  // takes the value, the platform driver's unbind file does not unbind.
  pt::test::Fixture fx;
  pt::test::Fixture::boot_console(fx, "vesafb");
  const std::string root = "--root " + fx.dir() + " ";
  auto r = pt_console(root + "-v release 01:00.0");
  CHECK(r.status == 3);
  CHECK(r.out.find("write /sys/class/vtconsole/vtcon1/bind \"0\"") != std::string::npos);
  CHECK(r.out.find("unbind from vesa-framebuffer did not take") != std::string::npos);
  CHECK(r.out.find("the earlier steps were undone") != std::string::npos);
  CHECK(fx.read("/sys/class/vtconsole/vtcon1/bind") == "1");
  r = pt_console(root + "--json list");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["released"] == nlohmann::json::object());
  CHECK(j["firmware_framebuffers"][0]["driver"] == "vesa-framebuffer");
}

TEST_CASE("pt-console list and release --dry-run on a fixture tree") {
  pt::test::Fixture fx;
  pt::test::Fixture::boot_console(fx, "efifb");
  auto before = fx.snapshot();
  const std::string root = "--root " + fx.dir() + " ";
  auto r = pt_console(root + "list");
  REQUIRE(r.status == 0);
  CHECK(r.out.find(
            "efi-framebuffer.0       efi-framebuffer    fb0    0000:01:00.0  (from /proc/iomem)") !=
        std::string::npos);
  r = pt_console(root + "--dry-run release 01:00.0");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("dry run: release 0000:01:00.0, 2 step(s)") != std::string::npos);
  CHECK(
      r.out.find("write /sys/bus/platform/drivers/efi-framebuffer/unbind \"efi-framebuffer.0\"") !=
      std::string::npos);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("a tool runs under a lock its caller holds (PT_LOCK_FD) and waits without it") {
  pt::test::Fixture fx;
  pt::test::Fixture::boot_console(fx, "efifb");
  REQUIRE(pt::check_state_dir(fx.root(), true));
  // What a hook does: open /run/pt/lock without close-on-exec and flock it.
  int fd = ::open(fx.root().path(pt::kLockPath).c_str(), O_RDWR | O_CREAT, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  const std::string root = "--root " + fx.dir() + " --lock-timeout 0 ";
  auto r = pt_console(root + "restore 01:00.0");
  CHECK(r.status == 75);
  CHECK(r.out.find("another pt command holds the lock") != std::string::npos);
  ::setenv("PT_LOCK_FD", std::to_string(fd).c_str(), 1);
  r = pt_console(root + "restore 01:00.0");
  CHECK(r.status == 0);
  CHECK(r.out.find("nothing to restore") != std::string::npos);
  // The caller still holds the lock after the tool exited.
  ::unsetenv("PT_LOCK_FD");
  CHECK(pt_console(root + "restore 01:00.0").status == 75);
  ::setenv("PT_LOCK_FD", "7x", 1);
  r = pt_console(root + "restore 01:00.0");
  CHECK(r.status == 2);
  CHECK(r.out.find("PT_LOCK_FD=7x") != std::string::npos);
  ::unsetenv("PT_LOCK_FD");
  ::close(fd);
  CHECK(pt_console(root + "restore 01:00.0").status == 0);
}

TEST_CASE("pt-console --root '' is exit 2 naming --root, also over PT_ROOT") {
  pt::test::Fixture fx;
  pt::test::Fixture::boot_console(fx, "efifb");
  pt::test::check_empty_root_refused("pt-console", fx.dir(), "list");
}

TEST_CASE("pt-console --timeout and --lock-timeout: finite seconds up to a day, else exit 2") {
  pt::test::Fixture fx;
  pt::test::Fixture::boot_console(fx, "efifb");
  pt::test::check_durations("pt-console", "--root " + fx.dir() + " list");
}
