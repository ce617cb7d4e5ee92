// pt-drm check's verdict, from connector and CRTC states alone: no files, no
// libdrm, so every combination can be tested.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pt/error.hpp"

namespace pt::drm {

struct ConnectorState {
  std::string name;
  std::string status;               // connected, disconnected, unknown
  std::string enabled;              // sysfs: enabled, disabled ("" unknown)
  std::string dpms;                 // sysfs: On, Off, ... ("" unknown)
  std::optional<uint32_t> crtc_id;  // from KMS; nullopt when KMS was not read
  std::optional<bool> crtc_lit;     // the CRTC has a mode and is active
};

struct VerdictInput {
  std::string device;       // "0000:01:00.0"
  std::string driver;       // PCI driver, "" when none
  bool card = false;        // a DRM card exists for the device
  bool node = false;        // and its /dev/dri node
  std::optional<bool> kms;  // KMS resources could be read
  std::string kms_error;    // why not, when they could not
  std::vector<ConnectorState> connectors;
  std::optional<bool> fbcon_on_card;
  std::optional<bool> master_exists;  // a display manager (or any DRM master) holds the card
};

struct ConnectorVerdict {
  std::string name;
  bool lit = false;
  std::string reason;  // "connected, CRTC 33 active (1280x800)" / "disconnected"
};

struct Verdict {
  Exit exit = Exit::failed;  // ok, degraded or failed
  std::string state;         // healthy, degraded, no-drm-device
  std::string summary;       // one line
  std::vector<ConnectorVerdict> connectors;
};

Verdict judge(const VerdictInput& in);

}  // namespace pt::drm
