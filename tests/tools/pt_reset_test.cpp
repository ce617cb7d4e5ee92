// pt-reset as a user runs it: the real binary on fixture trees through --root.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "fixture.hpp"
#include "run_tool.hpp"

namespace {
pt::test::Run pt_reset(const std::string& args) { return pt::test::run_tool("pt-reset", args); }
}  // namespace

TEST_CASE("pt-reset refuses bad input with exit 2 and a message naming it") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  auto before = fx.snapshot();
  auto r = pt_reset("--root " + fx.dir() + " zz:00.0");
  CHECK(r.status == 2);
  CHECK(r.out.find("'zz:00.0'") != std::string::npos);
  r = pt_reset("--root " + fx.dir() + " --method warm 01:00.0");
  CHECK(r.status == 2);
  CHECK(r.out.find("'warm'") != std::string::npos);
  CHECK(pt_reset("--root " + fx.dir()).status == 2);
  CHECK(pt_reset("--root " + fx.dir() + " methods").status == 2);
  r = pt_reset("--root " + fx.dir() + " 05:00.0");
  CHECK(r.status == 1);
  CHECK(r.out.find("no such PCI device") != std::string::npos);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("pt-reset methods --json on a fixture tree") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  auto r = pt_reset("--root " + fx.dir() + " --json methods 01:00");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 2);
  CHECK(j[0]["device"] == "0000:01:00.0");
  CHECK(j[0]["methods"].size() == 8);
  CHECK(j[0]["methods"][5]["name"] == "bus");
  CHECK(j[0]["methods"][5]["available"] == false);
}

TEST_CASE("pt-reset --dry-run prints the steps and changes nothing") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  auto before = fx.snapshot();
  auto r = pt_reset("--root " + fx.dir() + " --dry-run 01:00.0");
  CHECK(r.status == 0);
  CHECK(r.out.find("reset_method \"flr\"") != std::string::npos);
  CHECK(fx.snapshot() == before);
  CHECK_FALSE(fx.exists("/run/pt"));
}

TEST_CASE("pt-reset --version") {
  auto r = pt_reset("--version");
  CHECK(r.status == 0);
  CHECK(r.out.find(PT_VERSION) != std::string::npos);
}

TEST_CASE("pt-reset --root '' is exit 2 naming --root, also over PT_ROOT") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  pt::test::check_empty_root_refused("pt-reset", fx.dir(), "methods 01:00.0");
}

TEST_CASE("pt-reset --timeout and --lock-timeout: finite seconds up to a day, else exit 2") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  pt::test::check_durations("pt-reset", "--root " + fx.dir() + " methods 01:00.0");
}

TEST_CASE("pt-reset: an unknown word is a usage error naming it, not a device lookup") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  auto before = fx.snapshot();
  for (const std::string args : {"frobnicate", "method 01:00.0", "01:00.0 frobnicate"}) {
    CAPTURE(args);
    auto r = pt_reset("--root " + fx.dir() + " " + args);
    CHECK(r.status == 2);
    const std::string word = args.find("method") == 0 ? "method" : "frobnicate";
    CHECK(r.out.starts_with("pt-reset: '" + word + "': is neither a command nor a device;"));
    CHECK(r.out.find("no such PCI device") == std::string::npos);
  }
  // --method is checked before any device, with the valid values.
  auto r = pt_reset("--root " + fx.dir() + " --method warm 07:00.0");
  CHECK(r.status == 2);
  CHECK(r.out.find("--method 'warm': is not a reset method; use one of device_specific, acpi, flr, "
                   "af_flr, pm, bus, slot, rescan") != std::string::npos);
  r = pt_reset("--root " + fx.dir() + " --method warm methods 01:00.0");
  CHECK(r.status == 2);
  CHECK(r.out.find("--method 'warm'") != std::string::npos);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("every tool: option errors carry the tool's name and point at --help; --help has the forms") {
  for (const std::string tool : {"pt-bind", "pt-reset", "pt-vgaarb", "pt-console", "pt-drm"}) {
    CAPTURE(tool);
    auto r = pt::test::run_tool(tool, "--no-such-option list");
    CHECK(r.status == 2);
    CHECK(r.out.starts_with(tool + ": "));
    CHECK(r.out.find("--no-such-option") != std::string::npos);
    CHECK(r.out.find(tool + ": run '" + tool + " --help'") != std::string::npos);
    CHECK(r.out.find("Run with --help") == std::string::npos);
    auto h = pt::test::run_tool(tool, "--help");
    CHECK(h.status == 0);
    for (const char* s : {"0000:01:00.0", "01:00.0", "01:00 (the slot", "Examples:\n  " ,
                          "Exit status (pt(7)): 0 ok, 1 failed and nothing changed, 2 usage",
                          "75 busy"})
      CHECK(h.out.find(s) != std::string::npos);
    CHECK(h.out.find("Examples:\n  " + tool + " ") != std::string::npos);
  }
}

TEST_CASE("pt-reset methods on a function whose config space reads all ones names that, exit 0") {
  pt::test::Fixture fx;
  fx.add_bridge("0000:00:01.0");
  fx.add_device(pt::test::FakeDevice{.bdf = "0000:01:00.0",
                                     .parent = "0000:00:01.0",
                                     .group = 1,
                                     .caps = {.raw = std::string(4096, '\xff')}});
  auto r = pt_reset("--root " + fx.dir() + " --json methods 01:00.0");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  for (int i : {2, 3, 4}) {
    CHECK(j[0]["methods"][i]["available"] == false);
    CHECK(j[0]["methods"][i]["reason"] ==
          "config space reads all ones: the device is powered off or gone");
  }
  CHECK(j[0]["methods"][2]["name"] == "flr");
  CHECK(j[0]["methods"][4]["name"] == "pm");
}

TEST_CASE(
    "pt-reset --method flr on a function read only to 64 bytes refuses with the reason and writes "
    "nothing") {
  pt::test::Fixture fx;
  fx.add_driver("vfio-pci", "vfio_pci");
  fx.add_bridge("0000:00:01.0");
  fx.add_device(
      pt::test::FakeDevice{.bdf = "0000:01:00.0",
                           .parent = "0000:00:01.0",
                           .driver = "vfio-pci",
                           .group = 1,
                           .caps = {.raw = pt::test::radeon_fiji_config().substr(0, 64)}});
  auto before = fx.snapshot();
  auto r = pt_reset("--root " + fx.dir() + " --method flr 01:00.0");
  CHECK(r.status == 1);
  CHECK(r.out.find(
            "flr reset is not available: capabilities unreadable: config space is 64 bytes (run as "
            "root)") != std::string::npos);
  CHECK(fx.snapshot() == before);
}
