#include "pt/drm_verdict.hpp"

namespace pt::drm {

namespace {

ConnectorVerdict judge_connector(const ConnectorState& c) {
  ConnectorVerdict v{c.name, false, ""};
  if (c.status != "connected") {
    v.reason = c.status.empty() ? "status unreadable" : c.status;
    return v;
  }
  if (c.crtc_id) {
    // KMS was read: the connector's encoder must lead to a CRTC scanning out.
    if (*c.crtc_id == 0) {
      v.reason = "connected, but no encoder or CRTC drives it";
      return v;
    }
    if (!c.crtc_lit.value_or(false)) {
      v.reason = "connected to CRTC " + std::to_string(*c.crtc_id) +
                 ", which has no mode or is not active";
      return v;
    }
    if (c.dpms == "Off" || c.dpms == "Standby" || c.dpms == "Suspend") {
      v.reason =
          "connected to active CRTC " + std::to_string(*c.crtc_id) + ", but dpms is " + c.dpms;
      return v;
    }
    v.lit = true;
    v.reason = "connected, CRTC " + std::to_string(*c.crtc_id) + " active";
    return v;
  }
  // Only sysfs: "enabled" means the connector has an encoder (and so a CRTC).
  if (c.enabled != "enabled") {
    v.reason = "connected, but " +
               (c.enabled.empty() ? std::string("not known to be enabled") : c.enabled) +
               " (no CRTC drives it)";
    return v;
  }
  if (c.dpms != "On") {
    v.reason =
        "connected and enabled, but dpms is " + (c.dpms.empty() ? std::string("unknown") : c.dpms);
    return v;
  }
  v.lit = true;
  v.reason = "connected, enabled, dpms On (sysfs; CRTC not read)";
  return v;
}

}  // namespace

Verdict judge(const VerdictInput& in) {
  Verdict v;
  if (!in.card) {
    v.exit = Exit::failed;
    v.state = "no-drm-device";
    if (in.driver.empty())
      v.summary = in.device + " has no driver bound, so no DRM device";
    else if (in.driver == "vfio-pci" || in.driver == "pci-stub")
      v.summary = in.device + " is bound to " + in.driver +
                  ", which has no DRM device (it is parked for a VM)";
    else
      v.summary =
          in.device + " is bound to " + in.driver + ", but the driver registered no DRM card";
    return v;
  }
  if (!in.node) {
    v.exit = Exit::degraded;
    v.state = "degraded";
    v.summary = in.device + " has a DRM card in sysfs but no /dev/dri node";
    return v;
  }
  if (in.kms && !*in.kms) {
    v.exit = Exit::degraded;
    v.state = "degraded";
    v.summary = in.device + " has a DRM card without KMS" +
                (in.kms_error.empty() ? "" : ": " + in.kms_error) +
                "; nothing can be displayed through it";
    return v;
  }
  bool connected = false, lit = false;
  for (const auto& c : in.connectors) {
    auto cv = judge_connector(c);
    connected = connected || c.status == "connected";
    lit = lit || cv.lit;
    v.connectors.push_back(std::move(cv));
  }
  if (connected && lit) {
    v.exit = Exit::ok;
    v.state = "healthy";
    std::string names;
    for (const auto& c : v.connectors)
      if (c.lit) names += (names.empty() ? "" : ", ") + c.name;
    v.summary = in.device + " is lit: " + names;
    return v;
  }
  if (connected && in.fbcon_on_card.value_or(false) && in.master_exists && !*in.master_exists) {
    v.exit = Exit::ok;
    v.state = "healthy";
    v.summary = in.device + " shows fbcon (no display manager holds the card)";
    return v;
  }
  v.exit = Exit::degraded;
  v.state = "degraded";
  if (in.connectors.empty())
    v.summary = in.device + " has a DRM card but no connectors";
  else if (!connected)
    v.summary = in.device + " has a DRM card but no connector is connected";
  else
    v.summary = in.device + " has a DRM card and a connected display, but nothing is lit";
  return v;
}

}  // namespace pt::drm
