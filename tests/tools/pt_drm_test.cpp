// pt-drm as a user runs it: the real binary on fixture trees through --root.
#include <doctest/doctest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "fixture.hpp"
#include "run_tool.hpp"

using pt::test::FakeConnector;
using pt::test::FakeDrmCard;
using pt::test::Fixture;

namespace {
pt::test::Run pt_drm(const std::string& args) {
  return pt::test::run_tool("pt-drm", args);
}

void lit_gpu(Fixture& fx, const std::string& enabled = "enabled", const std::string& dpms = "On") {
  Fixture::gpu_with_audio(fx);
  fx.add_drm_card(FakeDrmCard{
      .bdf = "0000:01:00.0",
      .render = 128,
      .connectors = {FakeConnector{.name = "HDMI-A-1", .enabled = enabled, .dpms = dpms},
                     FakeConnector{.name = "DP-1",
                                   .status = "disconnected",
                                   .enabled = "disabled",
                                   .dpms = "Off",
                                   .modes = 0}},
      .fb = 0});
}
}  // namespace

TEST_CASE("pt-drm list --json under --root") {
  Fixture fx;
  lit_gpu(fx);
  auto r = pt_drm("--root " + fx.dir() + " --json list");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["card"] == "card0");
  CHECK(j[0]["node"] == "/dev/dri/card0");
  CHECK(j[0]["render"] == "/dev/dri/renderD128");
  CHECK(j[0]["by_path"] == "/dev/dri/by-path/pci-0000:01:00.0-card");
  CHECK(j[0]["pci"] == "0000:01:00.0");
  CHECK(j[0]["pci_driver"] == "nvidia");
  CHECK(j[0]["driver"] == "nvidia-drm");
  CHECK(j[0]["kms"] == true);
  CHECK(j[0]["connectors"].size() == 2);
  r = pt_drm("--root " + fx.dir() + " list");
  CHECK(r.status == 0);
  CHECK(r.out.find("HDMI-A-1:connected") != std::string::npos);
}

TEST_CASE("pt-drm list on a tree without DRM devices") {
  Fixture fx;
  Fixture::gpu_on_root_bus(fx);
  auto r = pt_drm("--root " + fx.dir() + " list");
  CHECK(r.status == 0);
  CHECK(r.out.find("no DRM devices") != std::string::npos);
  r = pt_drm("--root " + fx.dir() + " --json list");
  CHECK(nlohmann::json::parse(r.out).empty());
}

TEST_CASE("pt-drm show under --root says the CRTCs were not read") {
  Fixture fx;
  lit_gpu(fx);
  auto r = pt_drm("--root " + fx.dir() + " show 01:00.0");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("card0") != std::string::npos);
  CHECK(r.out.find("not read under --root") != std::string::npos);
  CHECK(r.out.find("HDMI-A-1") != std::string::npos);
  r = pt_drm("--root " + fx.dir() + " --json show 01:00.0 DP-1");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["crtc_state_read"] == false);
  REQUIRE(j["connectors"].size() == 1);
  CHECK(j["connectors"][0]["name"] == "DP-1");
  CHECK(j["connectors"][0]["crtc"].is_null());
  CHECK(j["master"]["exists"] == false);
}

TEST_CASE("pt-drm check exit codes: 0 lit, 6 bound but black, 1 no DRM device") {
  SUBCASE("lit") {
    Fixture fx;
    lit_gpu(fx);
    auto r = pt_drm("--root " + fx.dir() + " check 01:00.0");
    CHECK(r.status == 0);
    CHECK(r.out.find("healthy") == 0);
  }
  SUBCASE("connected but no CRTC drives it") {
    Fixture fx;
    lit_gpu(fx, "disabled", "Off");
    auto r = pt_drm("--root " + fx.dir() + " check 01:00.0");
    CHECK(r.status == 6);
    CHECK(r.out.find("degraded") == 0);
    CHECK(r.out.find("HDMI-A-1") != std::string::npos);
    CHECK(r.out.find("DP-1") != std::string::npos);
    r = pt_drm("--root " + fx.dir() + " --json check 01:00.0");
    CHECK(r.status == 6);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["verdict"] == "degraded");
    CHECK(j["exit"] == 6);
    CHECK(j["connectors"].size() == 2);
  }
  SUBCASE("on vfio-pci") {
    Fixture fx;
    lit_gpu(fx);
    fx.add_driver("vfio-pci", "vfio_pci");
    REQUIRE(fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0",
                              pt::WriteKind::blocking));
    REQUIRE(fx.kernel().write("/sys/bus/pci/drivers/vfio-pci/bind", "0000:01:00.0",
                              pt::WriteKind::blocking));
    auto r = pt_drm("--root " + fx.dir() + " check 01:00.0");
    CHECK(r.status == 1);
    CHECK(r.out.find("no-drm-device") == 0);
    CHECK(r.out.find("vfio-pci") != std::string::npos);
  }
}

TEST_CASE("pt-drm refuses bad input with a message naming it, and changes nothing") {
  Fixture fx;
  lit_gpu(fx);
  auto before = fx.snapshot();
  auto r = pt_drm("--root " + fx.dir() + " check zz:00.0");
  CHECK(r.status == 2);
  CHECK(r.out.find("'zz:00.0'") != std::string::npos);
  r = pt_drm("--root " + fx.dir() + " check 01:00.1");
  CHECK(r.status == 1);
  CHECK(r.out.find("not a display device") != std::string::npos);
  r = pt_drm("--root " + fx.dir() + " probe 01:00.0 --connector DP-9");
  CHECK(r.status == 1);
  CHECK(r.out.find("'DP-9'") != std::string::npos);
  r = pt_drm("--root " + fx.dir() + " show 01:00.0 DP-9");
  CHECK(r.status == 1);
  r = pt_drm("--root " + fx.dir() + " show 05:00.0");
  CHECK(r.status == 1);
  CHECK(r.out.find("no such PCI device") != std::string::npos);
  CHECK(pt_drm("--root " + fx.dir()).status == 2);
  CHECK(pt_drm("--root " + fx.dir() + " show").status == 2);
  CHECK(pt_drm("--root " + fx.dir() + " frobnicate 01:00.0").status == 2);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("pt-drm probe --dry-run under --root changes nothing") {
  Fixture fx;
  lit_gpu(fx);
  auto before = fx.snapshot();
  auto r = pt_drm("--root " + fx.dir() + " --dry-run probe 01:00.0");
  CHECK(r.status == 0);
  CHECK(r.out.find("/sys/class/drm/card0-HDMI-A-1/status \"detect\"") != std::string::npos);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("pt-drm wait under --root: ready at once, exit 5 on a parked device") {
  Fixture fx;
  lit_gpu(fx);
  auto r = pt_drm("--root " + fx.dir() + " wait 01:00.0");
  CHECK(r.status == 0);
  CHECK(r.out.find("ready") != std::string::npos);
  fx.add_driver("vfio-pci", "vfio_pci");
  REQUIRE(fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0",
                            pt::WriteKind::blocking));
  REQUIRE(fx.kernel().write("/sys/bus/pci/drivers/vfio-pci/bind", "0000:01:00.0",
                            pt::WriteKind::blocking));
  auto t0 = std::chrono::steady_clock::now();
  r = pt_drm("--root " + fx.dir() + " wait --timeout 0.5 01:00.0");
  auto ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  CHECK(r.status == 5);
  CHECK(r.out.find("vfio-pci") != std::string::npos);
  CHECK(r.out.find("no DRM card node appeared") != std::string::npos);
  CHECK(ms >= 450);
  CHECK(ms < 2000);
}

TEST_CASE("pt-drm --help lists the commands") {
  auto r = pt_drm("--help");
  CHECK(r.status == 0);
  for (const char* c : {"list", "show", "probe", "wait", "check"})
    CHECK(r.out.find(c) != std::string::npos);
}

TEST_CASE("pt-drm --root '' is exit 2 naming --root, also over PT_ROOT") {
  pt::test::Fixture fx;
  lit_gpu(fx);
  pt::test::check_empty_root_refused("pt-drm", fx.dir(), "list");
}

TEST_CASE("pt-drm --timeout and --lock-timeout: finite seconds up to a day, else exit 2") {
  pt::test::Fixture fx;
  lit_gpu(fx);
  // --lock-timeout belongs to probe, the one command that writes.
  pt::test::check_durations("pt-drm", "--root " + fx.dir() + " --dry-run probe 01:00.0");
}

TEST_CASE("pt-drm's read-only commands refuse the options of a write, with exit 2") {
  pt::test::Fixture fx;
  lit_gpu(fx);
  const auto before = fx.snapshot();
  for (const std::string cmd : {"list", "show 01:00.0", "check 01:00.0", "wait 01:00.0"})
    for (const std::string opt : {"--dry-run", "--lock-timeout 3"}) {
      CAPTURE(cmd);
      CAPTURE(opt);
      auto r = pt_drm("--root " + fx.dir() + " " + opt + " " + cmd);
      CHECK(r.status == 2);
      const std::string name = opt.substr(0, opt.find(' '));
      CHECK(r.out.starts_with("pt-drm: " + name + " applies to probe only; "));
      CHECK(r.out.find("pt-drm --help") != std::string::npos);
    }
  CHECK(fx.snapshot() == before);
  auto r = pt_drm("--root " + fx.dir() + " --lock-timeout 3 --dry-run probe 01:00.0");
  CHECK(r.status == 0);
  CHECK(r.out.find("card0-HDMI-A-1/status \"detect\"") != std::string::npos);
}

TEST_CASE("pt-drm check whose verdict cannot be written says so on stderr") {
  // Every nonzero exit prints a line: a verdict lost to >/dev/full is not
  // a silent exit 1.
  Fixture fx;
  lit_gpu(fx);
  fx.add_driver("vfio-pci", "vfio_pci");
  REQUIRE(fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0",
                            pt::WriteKind::blocking));
  // Only stderr reaches the pipe; stdout goes to /dev/full.
  auto r = pt_drm("--root " + fx.dir() + " check 01:00.0 2>&1 1>/dev/full; exit $?");
  CHECK(r.status == 1);
  CHECK(r.out == "pt-drm: cannot write standard output; the command's report is lost\n");
  r = pt_drm("--root " + fx.dir() + " check 01:00.0 2>&1 1>/dev/null; exit $?");
  CHECK(r.status == 1);
  CHECK(r.out.empty());  // the verdict went to stdout, as documented
}

TEST_CASE("pt-drm wait on a terminal: a progress line on stderr while it waits, none elsewhere") {
  Fixture fx;
  lit_gpu(fx);
  // Ready at the first look: no wait to show.
  auto r = pt::test::run_tool_in_pty("pt-drm", "--root " + fx.dir() + " wait 01:00.0");
  CHECK(r.status == 0);
  CHECK(r.out.find("waiting for") == std::string::npos);

  fx.add_driver("vfio-pci", "vfio_pci");
  REQUIRE(fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0",
                            pt::WriteKind::blocking));
  REQUIRE(fx.kernel().write("/sys/bus/pci/drivers/vfio-pci/bind", "0000:01:00.0",
                            pt::WriteKind::blocking));
  const std::string args = "--root " + fx.dir() + " wait --timeout 1 01:00.0";
  r = pt::test::run_tool_in_pty("pt-drm", args);
  CAPTURE(r.out);
  CHECK(r.status == 5);
  const std::string line = "\rpt-drm: waiting for 0000:01:00.0's DRM card to become readable ... ";
  const auto first = r.out.find(line);
  REQUIRE(first != std::string::npos);
  // Nothing before 300 ms, then the line rewritten in place as the time grows.
  const auto secs = [&](size_t at) { return std::stod(r.out.substr(at + line.size())); };
  CHECK(secs(first) >= 0.3);
  const auto last = r.out.rfind(line);
  REQUIRE(last != first);
  CHECK(secs(last) > secs(first));
  CHECK(r.out.find(" s of 1 s", first) != std::string::npos);
  // Given up: the line stays, ended, and the error has a line of its own.
  CHECK(r.out.find("\r\npt-drm: 0000:01:00.0: no ready DRM card within 1 s", last) !=
        std::string::npos);

  // Not a terminal, --json, -v: no progress text at all.
  r = pt_drm(args);
  CHECK(r.status == 5);
  CHECK(r.out.find("waiting for") == std::string::npos);
  CHECK(r.out.find('\r') == std::string::npos);
  for (const std::string flag : {"--json", "-v"}) {
    CAPTURE(flag);
    r = pt::test::run_tool_in_pty("pt-drm", flag + " " + args);
    CHECK(r.status == 5);
    CHECK(r.out.find("waiting for") == std::string::npos);
  }
}
