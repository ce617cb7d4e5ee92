// The check verdict from connector and CRTC states alone.
#include "pt/drm_verdict.hpp"

#include <doctest/doctest.h>

using namespace pt;
using namespace pt::drm;

namespace {

VerdictInput base() {
  VerdictInput in;
  in.device = "0000:01:00.0";
  in.driver = "nvidia";
  in.card = true;
  in.node = true;
  in.kms = true;
  in.master_exists = false;
  return in;
}

ConnectorState kms_conn(std::string name, std::string status, uint32_t crtc,
                        std::optional<bool> lit, std::string dpms = "On") {
  return ConnectorState{std::move(name),
                        std::move(status),
                        crtc ? "enabled" : "disabled",
                        std::move(dpms),
                        crtc,
                        lit};
}

}  // namespace

TEST_CASE("no card: exit 1, and the reason names the driver") {
  auto in = base();
  in.card = false;
  in.driver = "vfio-pci";
  auto v = judge(in);
  CHECK(v.exit == Exit::failed);
  CHECK(v.state == "no-drm-device");
  CHECK(v.summary.find("vfio-pci") != std::string::npos);
  in.driver = "";
  CHECK(judge(in).summary.find("no driver bound") != std::string::npos);
  in.driver = "nvidia";
  CHECK(judge(in).summary.find("registered no DRM card") != std::string::npos);
}

TEST_CASE("a card without a node or without KMS is degraded") {
  auto in = base();
  in.node = false;
  CHECK(judge(in).exit == Exit::degraded);
  CHECK(judge(in).summary.find("/dev/dri") != std::string::npos);
  in = base();
  in.kms = false;
  in.kms_error = "EOPNOTSUPP";
  auto v = judge(in);
  CHECK(v.exit == Exit::degraded);
  CHECK(v.summary.find("without KMS") != std::string::npos);
}

TEST_CASE("connected and driven by an active CRTC: healthy") {
  auto in = base();
  in.connectors = {kms_conn("DP-1", "disconnected", 0, std::nullopt),
                   kms_conn("HDMI-A-1", "connected", 41, true)};
  auto v = judge(in);
  CHECK(v.exit == Exit::ok);
  CHECK(v.state == "healthy");
  CHECK(v.summary.find("HDMI-A-1") != std::string::npos);
  REQUIRE(v.connectors.size() == 2);
  CHECK_FALSE(v.connectors[0].lit);
  CHECK(v.connectors[0].reason == "disconnected");
  CHECK(v.connectors[1].lit);
}

TEST_CASE("bound but black: every reason is given connector by connector") {
  auto in = base();
  in.connectors = {kms_conn("HDMI-A-1", "connected", 0, std::nullopt),
                   kms_conn("DP-1", "connected", 42, false),
                   kms_conn("DP-2", "connected", 43, true, "Off"),
                   kms_conn("DP-3", "disconnected", 0, std::nullopt)};
  auto v = judge(in);
  CHECK(v.exit == Exit::degraded);
  CHECK(v.summary.find("nothing is lit") != std::string::npos);
  REQUIRE(v.connectors.size() == 4);
  CHECK(v.connectors[0].reason.find("no encoder or CRTC") != std::string::npos);
  CHECK(v.connectors[1].reason.find("CRTC 42") != std::string::npos);
  CHECK(v.connectors[2].reason.find("dpms is Off") != std::string::npos);
  CHECK(v.connectors[3].reason == "disconnected");
  for (const auto& c : v.connectors) CHECK_FALSE(c.lit);
}

TEST_CASE("nothing connected, or no connectors at all: degraded") {
  auto in = base();
  in.connectors = {kms_conn("HDMI-A-1", "disconnected", 0, std::nullopt)};
  CHECK(judge(in).exit == Exit::degraded);
  CHECK(judge(in).summary.find("no connector is connected") != std::string::npos);
  in.connectors.clear();
  CHECK(judge(in).exit == Exit::degraded);
  CHECK(judge(in).summary.find("no connectors") != std::string::npos);
}

TEST_CASE("fbcon on this card with no display manager is healthy; with one it is not") {
  auto in = base();
  in.connectors = {kms_conn("HDMI-A-1", "connected", 41, false)};
  in.fbcon_on_card = true;
  in.master_exists = false;
  auto v = judge(in);
  CHECK(v.exit == Exit::ok);
  CHECK(v.summary.find("fbcon") != std::string::npos);
  in.master_exists = true;
  CHECK(judge(in).exit == Exit::degraded);
  in.master_exists = std::nullopt;  // unknown: no credit
  CHECK(judge(in).exit == Exit::degraded);
  in.master_exists = false;
  in.fbcon_on_card = std::nullopt;
  CHECK(judge(in).exit == Exit::degraded);
  // fbcon cannot light a display that is not connected.
  in.fbcon_on_card = true;
  in.connectors = {kms_conn("HDMI-A-1", "disconnected", 0, std::nullopt)};
  CHECK(judge(in).exit == Exit::degraded);
}

TEST_CASE("sysfs only (no CRTC read): enabled and dpms On stand in for an active CRTC") {
  auto in = base();
  in.connectors = {
      ConnectorState{"Virtual-1", "connected", "enabled", "On", std::nullopt, std::nullopt}};
  auto v = judge(in);
  CHECK(v.exit == Exit::ok);
  CHECK(v.connectors[0].reason.find("sysfs") != std::string::npos);
  in.connectors[0].enabled = "disabled";
  CHECK(judge(in).exit == Exit::degraded);
  in.connectors[0].enabled = "enabled";
  in.connectors[0].dpms = "Off";
  CHECK(judge(in).exit == Exit::degraded);
  CHECK(judge(in).connectors[0].reason.find("dpms is Off") != std::string::npos);
}
