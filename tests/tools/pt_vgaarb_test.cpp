// pt-vgaarb as a user runs it: the real binary on fixture trees through
// --root, where /dev/vga_arbiter is a regular file, never the kernel's.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "fixture.hpp"
#include "run_tool.hpp"

namespace {
pt::test::Run pt_vgaarb(const std::string& args) {
  return pt::test::run_tool("pt-vgaarb", args);
}

void tree(pt::test::Fixture& fx) {
  pt::test::Fixture::gpu_with_audio(fx);
  fx.write_file("/dev/vga_arbiter", "");
}
}  // namespace

TEST_CASE("pt-vgaarb list without an arbiter: boot_vga, driver, command bits, and why") {
  pt::test::Fixture fx;
  tree(fx);
  auto before = fx.snapshot();
  auto r = pt_vgaarb("--root " + fx.dir() + " list");
  CHECK(r.status == 0);
  CHECK(r.out.find("note: arbiter unavailable: " + fx.dir() +
                   "/dev/vga_arbiter: is not a character device") != std::string::npos);
  CHECK(r.out.find("0000:01:00.0  0300   nvidia        yes   io+mem  -") != std::string::npos);
  r = pt_vgaarb("--root " + fx.dir() + " list --json");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["boot_vga"] == true);
  CHECK(j[0]["driver"] == "nvidia");
  CHECK(j[0]["command_mem"] == true);
  CHECK(j[0]["arbiter"].is_null());
  CHECK(j[0]["note"].get<std::string>().find("not a character device") != std::string::npos);
  r = pt_vgaarb("--root " + fx.dir() + " show 01:00.0");
  CHECK(r.status == 0);
  CHECK(r.out.find("  arbiter:      arbiter unavailable:") != std::string::npos);
  CHECK(r.out.find("  kernel log:   unavailable: " + fx.dir() + "/dev/kmsg") != std::string::npos);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("pt-vgaarb mutating commands fail with exit 1 naming the arbiter path") {
  pt::test::Fixture fx;
  tree(fx);
  auto before = fx.snapshot();
  for (const char* c : {"decodes 01:00.0 io+mem", "restore 01:00.0", "lock 01:00.0 -- true"}) {
    auto r = pt_vgaarb("--root " + fx.dir() + " " + std::string(c));
    CHECK_MESSAGE(r.status == 1, c);
    CHECK_MESSAGE(r.out.find(fx.dir() + "/dev/vga_arbiter") != std::string::npos, r.out);
  }
  CHECK(fx.read("/dev/vga_arbiter").empty());
  CHECK(fx.snapshot() == before);
}

TEST_CASE("pt-vgaarb refuses bad input with the documented exit codes, changing nothing") {
  pt::test::Fixture fx;
  tree(fx);
  auto before = fx.snapshot();
  auto r = pt_vgaarb("--root " + fx.dir() + " decodes 01:00.0 'io mem'");
  CHECK(r.status == 2);
  CHECK(r.out.find("'io mem': is not a decodes value; give one of none, io, mem or io+mem") !=
        std::string::npos);
  r = pt_vgaarb("--root " + fx.dir() + " decodes 01:00.0 all");
  CHECK(r.status == 2);
  CHECK(r.out.find("'all'") != std::string::npos);
  r = pt_vgaarb("--root " + fx.dir() + " decodes 01:00.1 none");
  CHECK(r.status == 1);
  CHECK(r.out.find("is not a VGA device (class 0403)") != std::string::npos);
  r = pt_vgaarb("--root " + fx.dir() + " restore 05:00.0");
  CHECK(r.status == 1);
  CHECK(r.out.find("no such PCI device") != std::string::npos);
  r = pt_vgaarb("--root " + fx.dir() + " show zz:00.0");
  CHECK(r.status == 2);
  CHECK(pt_vgaarb("--root " + fx.dir() + " lock 01:00.0").status == 2);
  CHECK(pt_vgaarb("--root " + fx.dir() + " lock 01:00.0 none -- true").status == 2);
  CHECK(pt_vgaarb("--root " + fx.dir() + " list -- true").status == 2);
  CHECK(pt_vgaarb("--root " + fx.dir()).status == 2);
  CHECK(pt_vgaarb("--root " + fx.dir() + " frobnicate").status == 2);
  CHECK(fx.snapshot() == before);
  CHECK_FALSE(fx.exists("/run/pt"));
}

TEST_CASE("pt-vgaarb --help and --version") {
  auto r = pt_vgaarb("--help");
  CHECK(r.status == 0);
  for (const char* c : {"list", "show", "decodes", "restore", "lock", "--root", "--dry-run"})
    CHECK_MESSAGE(r.out.find(c) != std::string::npos, c);
  r = pt_vgaarb("--version");
  CHECK(r.status == 0);
  CHECK(r.out.find(PT_VERSION) != std::string::npos);
}

TEST_CASE("pt-vgaarb --root '' is exit 2 naming --root, also over PT_ROOT") {
  pt::test::Fixture fx;
  tree(fx);
  pt::test::check_empty_root_refused("pt-vgaarb", fx.dir(), "list");
}

TEST_CASE("pt-vgaarb --timeout and --lock-timeout: finite seconds up to a day, else exit 2") {
  pt::test::Fixture fx;
  tree(fx);
  pt::test::check_durations("pt-vgaarb", "--root " + fx.dir() + " list");
}
