// pt-drm's commands on fixture trees with an in-memory KMS backend.
#include "pt/drm_cmd.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "fixture.hpp"

using namespace pt;
using nlohmann::json;
using pt::test::FakeConnector;
using pt::test::FakeDrmCard;
using pt::test::Fixture;

namespace {

// KMS as libdrm would report it, per card name; reads are counted.
class FakeBackend final : public drm::Backend {
 public:
  std::map<std::string, drm::Kms> kms;
  std::optional<int> fb;
  int reads = 0;
  Result<drm::Kms> read(const drm::Card& c) override {
    ++reads;
    auto it = kms.find(c.name);
    if (it == kms.end()) return fail(c.node, "cannot open the DRM card", ENOENT);
    return it->second;
  }
  std::vector<std::pair<std::string, PciAddress>> devices() override { return {}; }
  std::optional<int> console_fb(int) override { return fb; }
};

drm::Kms lit_kms(bool active) {
  drm::Kms k;
  k.driver = "nvidia-drm";
  k.version = "0.0.0";
  k.date = "20160202";
  k.kms = true;
  k.connectors = {drm::KmsConnector{90, "HDMI-A-1", "connected", 91, 92, 5}};
  k.crtcs = {
      drm::KmsCrtc{92, active, active, drm::Mode{"1920x1080", 1920, 1080, 60}, active ? 100u : 0u},
      drm::KmsCrtc{93, false, false, std::nullopt, 0}};
  k.planes = {drm::KmsPlane{80, active ? 92u : 0u, active ? 100u : 0u}};
  k.master = drm::Master{false, "", "test"};
  return k;
}

struct Env {
  Fixture fx;
  Context ctx;
  FakeBackend backend;
  Env() {
    Fixture::gpu_with_display(fx);
    ctx.root = fx.root();
    ctx.writer = &fx.kernel();
    ctx.timeout = std::chrono::milliseconds(2000);
    ctx.lock_timeout = std::chrono::milliseconds(1000);
    backend.kms["card0"] = lit_kms(true);
  }
  Result<Exit> run(const std::string& cmd, const std::string& dev, bool json_out = false,
                   const std::string& connector = "") {
    drm::Options o;
    o.command = cmd;
    o.device = dev;
    o.connector = connector;
    o.common.json = json_out;
    out.str("");
    return drm::run_in(o, ctx, backend, out);
  }
  std::ostringstream out;
};

}  // namespace

TEST_CASE("check: lit is 0, bound but black is 6, vfio-pci is 1") {
  Env e;
  auto r = e.run("check", "01:00.0", true);
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  auto j = json::parse(e.out.str());
  CHECK(j["verdict"] == "healthy");
  CHECK(j["exit"] == 0);
  CHECK(j["crtc_state_read"] == true);
  CHECK(j["connectors"][0]["lit"] == true);

  e.backend.kms["card0"] = lit_kms(false);
  r = e.run("check", "01:00.0");
  REQUIRE(r);
  CHECK(*r == Exit::degraded);
  CHECK(e.out.str().find("degraded") == 0);
  CHECK(e.out.str().find("HDMI-A-1") != std::string::npos);
  CHECK(e.out.str().find("no encoder") == std::string::npos);
  CHECK(e.out.str().find("CRTC 92") != std::string::npos);

  REQUIRE(e.fx.kernel().write("/sys/bus/pci/devices/0000:01:00.0/driver_override", "vfio-pci",
                              WriteKind::attribute));
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0",
                              WriteKind::blocking));
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers_probe", "0000:01:00.0", WriteKind::blocking));
  REQUIRE(e.fx.driver_of("0000:01:00.0") == "vfio-pci");
  r = e.run("check", "01:00.0", true);
  REQUIRE(r);
  CHECK(*r == Exit::failed);
  j = json::parse(e.out.str());
  CHECK(j["verdict"] == "no-drm-device");
  CHECK(j["card"].is_null());
  CHECK(j["summary"].get<std::string>().find("vfio-pci") != std::string::npos);
}

TEST_CASE("check: fbcon on the card with no master is healthy even without an active CRTC") {
  Env e;
  e.backend.kms["card0"] = lit_kms(false);
  e.fx.add_fbcon(true);
  e.backend.fb = 0;  // tty1 on fb0, card0's framebuffer
  auto r = e.run("check", "01:00.0", true);
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  auto j = json::parse(e.out.str());
  CHECK(j["fbcon"]["on_card"] == true);
  CHECK(j["summary"].get<std::string>().find("fbcon") != std::string::npos);
  e.backend.kms["card0"].master = drm::Master{true, "Xorg (pid 1)", "test"};
  r = e.run("check", "01:00.0");
  REQUIRE(r);
  CHECK(*r == Exit::degraded);
}

TEST_CASE("show: connectors with encoder, CRTC and mode; CRTCs; planes; master; fbcon") {
  Env e;
  auto r = e.run("show", "0000:01:00.0", true);
  REQUIRE(r);
  auto j = json::parse(e.out.str());
  CHECK(j["card"] == "card0");
  CHECK(j["driver"] == "nvidia-drm");
  CHECK(j["by_path"] == "/dev/dri/by-path/pci-0000:01:00.0-card");
  REQUIRE(j["connectors"].size() == 1);
  CHECK(j["connectors"][0]["encoder"] == 91);
  CHECK(j["connectors"][0]["crtc"] == 92);
  CHECK(j["connectors"][0]["crtc_mode"] == "1920x1080@60");
  CHECK(j["connectors"][0]["dpms"] == "On");
  CHECK(j["connectors"][0]["modes"] == 5);
  CHECK(j["crtcs"].size() == 2);
  CHECK(j["crtcs"][1]["mode"].is_null());
  CHECK(j["planes"][0]["crtc"] == 92);
  CHECK(j["master"]["exists"] == false);
  CHECK(j["fbcon"]["on_card"] == false);
  r = e.run("show", "01:00.0");
  REQUIRE(r);
  CHECK(e.out.str().find("1920x1080@60") != std::string::npos);
}

TEST_CASE("show and probe refuse an unknown connector, a non-display device and a missing device") {
  Env e;
  auto before = e.fx.snapshot();
  auto r = e.run("show", "01:00.0", false, "DP-9");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(r.error().describe().find("'DP-9'") != std::string::npos);
  CHECK(r.error().describe().find("HDMI-A-1") != std::string::npos);
  r = e.run("probe", "01:00.0", false, "DP-9");
  REQUIRE_FALSE(r);
  CHECK(r.error().describe().find("'DP-9'") != std::string::npos);
  r = e.run("check", "01:00.1");
  REQUIRE_FALSE(r);
  CHECK(r.error().describe().find("not a display device") != std::string::npos);
  r = e.run("wait", "01:00.1");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  r = e.run("check", "zz:00.0");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  r = e.run("show", "05:00.0");
  REQUIRE_FALSE(r);
  CHECK(r.error().describe().find("no such PCI device") != std::string::npos);
  CHECK(e.fx.kernel().log.empty());
  CHECK(e.fx.snapshot() == before);
}

TEST_CASE("probe writes detect to each connector and reports the change") {
  Env e;
  e.fx.on_detect("card0-HDMI-A-1", "disconnected", 0);
  auto r = e.run("probe", "01:00.0", true);
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  REQUIRE(e.fx.kernel().log.size() == 1);
  CHECK(e.fx.kernel().log[0].first == "/sys/class/drm/card0-HDMI-A-1/status");
  CHECK(e.fx.kernel().log[0].second == "detect");
  auto j = json::parse(e.out.str());
  CHECK(j[0]["before"]["status"] == "connected");
  CHECK(j[0]["after"]["status"] == "disconnected");
  CHECK(j[0]["after"]["modes"] == 0);
  CHECK(j[0]["changed"] == true);
  CHECK(e.fx.read("/sys/class/drm/card0-HDMI-A-1/status") == "disconnected");
}

TEST_CASE("probe --dry-run names the writes and changes nothing") {
  Env e;
  auto before = e.fx.snapshot();
  e.ctx.dry_run = true;
  auto r = e.run("probe", "01:00.0");
  REQUIRE(r);
  CHECK(e.out.str().find("card0-HDMI-A-1/status \"detect\"") != std::string::npos);
  CHECK(e.fx.kernel().log.empty());
  CHECK(e.fx.snapshot() == before);
}

TEST_CASE("wait returns at once for a ready card") {
  Env e;
  auto r = e.run("wait", "01:00.0");
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  CHECK(e.out.str().find("card0 is ready") != std::string::npos);
}

TEST_CASE("wait times out with exit 5 and says what it saw, without polling") {
  Env e;
  e.ctx.timeout = std::chrono::milliseconds(300);
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0",
                              WriteKind::blocking));
  auto t0 = std::chrono::steady_clock::now();
  auto r = e.run("wait", "01:00.0");
  auto ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::timeout);
  CHECK(r.error().describe().find("no driver is bound") != std::string::npos);
  CHECK(ms >= 290);
  CHECK(ms < 1000);
  // Without a card there is nothing to open: KMS is never read.
  CHECK(e.backend.reads == 0);

  SUBCASE("a card without KMS") {
    REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/bind", "0000:01:00.0",
                                WriteKind::blocking));
    e.backend.kms["card0"].kms = false;
    r = e.run("wait", "01:00.0");
    REQUIRE_FALSE(r);
    CHECK(r.error().describe().find("KMS resources could not be read") != std::string::npos);
    CHECK(e.backend.reads == 2);
  }
}

TEST_CASE("wait wakes on the bind that creates the card (inotify under --root)") {
  Env e;
  e.ctx.timeout = std::chrono::milliseconds(5000);
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0",
                              WriteKind::blocking));
  std::chrono::steady_clock::time_point bound;
  std::thread binder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    bound = std::chrono::steady_clock::now();
    (void)e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/bind", "0000:01:00.0",
                              WriteKind::blocking);
  });
  auto r = e.run("wait", "01:00.0");
  auto done = std::chrono::steady_clock::now();
  binder.join();
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  auto lag = std::chrono::duration<double, std::milli>(done - bound).count();
  CHECK(lag < 500);
  // Woken by events, not by a timer: a handful of looks, not hundreds.
  CHECK(e.backend.reads <= 10);
}

TEST_CASE("list --json under a fixture: every card with nodes, PCI device and connectors") {
  Env e;
  drm::Options o;
  o.command = "list";
  o.common.json = true;
  std::ostringstream out;
  auto r = drm::run_in(o, e.ctx, e.backend, out);
  REQUIRE(r);
  auto j = json::parse(out.str());
  REQUIRE(j.size() == 1);
  CHECK(j[0]["card"] == "card0");
  CHECK(j[0]["pci"] == "0000:01:00.0");
  CHECK(j[0]["pci_driver"] == "nvidia");
  CHECK(j[0]["render"] == "/dev/dri/renderD128");
  CHECK(j[0]["driver"] == "nvidia-drm");
  CHECK(j[0]["kms"] == true);
  CHECK(j[0]["connectors"][0]["name"] == "HDMI-A-1");
}
