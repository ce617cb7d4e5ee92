// DRM/KMS state of a GPU, read-only: the topology from /sys/class/drm, the
// KMS objects through a small backend (libdrm on the running system, sysfs
// and debugfs files under --root), and the fbcon mapping.
//
// Nothing here takes DRM master or sets a mode; see pt-drm(8) for what
// opening a primary node does in the kernel and how the backend undoes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pt/address.hpp"
#include "pt/context.hpp"
#include "pt/drm_verdict.hpp"
#include "pt/error.hpp"
#include "pt/pci.hpp"
#include "pt/root.hpp"

namespace pt::drm {

// A connector as sysfs shows it (/sys/class/drm/cardN-NAME/{status,enabled,dpms,modes}).
struct SysfsConnector {
  std::string name;     // "Virtual-1", "HDMI-A-1"
  std::string path;     // "/sys/class/drm/card0-Virtual-1" (absolute, unprefixed)
  std::string status;   // connected, disconnected, unknown; "" when unreadable
  std::string enabled;  // enabled, disabled
  std::string dpms;     // On, Standby, Suspend, Off
  int modes = 0;        // lines of the modes file
};

struct Card {
  std::string name;  // "card0"
  int minor = -1;
  std::string node;  // "/dev/dri/card0"
  bool node_exists = false;
  std::string render;   // "/dev/dri/renderD128", or "" when the driver has none
  std::string by_path;  // "/dev/dri/by-path/pci-0000:01:00.0-card" (udev's link), or ""
  std::optional<PciAddress> pci;
  std::string pci_driver;  // the PCI driver bound to that device
  std::vector<SysfsConnector> connectors;
};

// Every cardN under ROOT/sys/class/drm whose link resolves, in minor order.
std::vector<Card> scan_cards(const Root& root);
// The cards whose PCI device is ADDR (normally one).
std::vector<Card> cards_of(const std::vector<Card>& cards, const PciAddress& addr);
// The first card (lowest minor) of ADDR with only its name, minor, node and
// PCI device: no render node, by-path link, driver or connectors. Cheap
// enough for pt-drm wait to run on every event; reading a connector's
// `modes` takes the kernel's mode_config lock, which a driver holds while it
// probes, so wait reads none.
std::optional<Card> find_card(const Root& root, const PciAddress& addr);

// ---------------------------------------------------------------- KMS
struct Mode {
  std::string name;  // "1280x800"
  uint32_t width = 0, height = 0;
  uint32_t refresh = 0;  // Hz
};

struct KmsConnector {
  uint32_t id = 0;
  std::string name;         // type name and index, as sysfs names it: "Virtual-1"
  std::string status;       // connected, disconnected, unknown
  uint32_t encoder_id = 0;  // current encoder, 0 for none
  uint32_t crtc_id = 0;     // the current encoder's CRTC, 0 for none
  int modes = 0;
};

struct KmsCrtc {
  uint32_t id = 0;
  bool enabled = false;        // a mode is set (legacy mode_valid)
  std::optional<bool> active;  // the atomic ACTIVE property, when the driver is atomic
  std::optional<Mode> mode;
  uint32_t fb_id = 0;
  bool lit() const { return enabled && active.value_or(true); }
};

struct KmsPlane {
  uint32_t id = 0;
  uint32_t crtc_id = 0;
  uint32_t fb_id = 0;
};

// Who holds DRM master on a card, when it can be told.
struct Master {
  std::optional<bool> exists;  // nullopt: could not tell
  std::string holder;          // "sleep (pid 123)" from debugfs, when known
  std::string how;             // how pt found out
};

struct Kms {
  std::string driver;   // DRM driver name ("virtio_gpu"); "" when unknown
  std::string version;  // "0.1.0"
  std::string date;     // "0"
  std::string desc;
  std::optional<bool> kms;  // nullopt: could not tell
  bool from_sysfs = false;  // CRTC state not read (no libdrm under --root)
  std::vector<KmsConnector> connectors;
  std::vector<KmsCrtc> crtcs;
  std::vector<KmsPlane> planes;
  Master master;
  const KmsCrtc* crtc(uint32_t id) const;
};

// The library calls, behind an interface: libdrm hard-codes /dev/dri and
// /sys, so under --root a backend reads only files below the root, and the
// unit tests use an in-memory fake.
class Backend {
 public:
  virtual ~Backend() = default;
  // KMS state of CARD. Never takes DRM master for longer than one ioctl and
  // never sets a mode.
  virtual Result<Kms> read(const Card& card) = 0;
  // Whether CARD's KMS resources can be read (false: a card without KMS):
  // what wait needs, with as few ioctls as possible.
  virtual Result<bool> kms_readable(const Card& card) {
    auto k = read(card);
    if (!k) return std::unexpected(k.error());
    return k->kms.value_or(false);
  }
  // The PCI device of each primary node the library enumerates
  // (drmGetDevices2), by node path; empty under --root.
  virtual std::vector<std::pair<std::string, PciAddress>> devices() = 0;
  // The framebuffer index fbcon maps console CONSOLE (1-based) to, or
  // nullopt when it cannot tell.
  virtual std::optional<int> console_fb(int console) = 0;
};

// libdrm on the running system; only with the real root.
std::unique_ptr<Backend> make_libdrm_backend(const Root& root);
// Files under ROOT only: connectors from sysfs, master from debugfs.
std::unique_ptr<Backend> make_root_backend(const Root& root);
// The one a Root calls for.
std::unique_ptr<Backend> make_backend(const Root& root);

// INNER with every call made in a child process that the caller abandons
// once TIMEOUT (counted from here, shared by all calls; a call that starts
// later still gets a quarter of a second) has passed: a wedged GPU can block
// open(2) or an ioctl inside its driver for ever, and a blocked system call
// cannot be taken back. The result comes back over a pipe as JSON. A call
// that runs out of time returns Exit::timeout naming the card node, the
// child's pid and the kernel function it waits in (/proc/PID/wchan, read
// under ROOT); the child is sent SIGKILL, which takes effect once the kernel
// lets go of it. console_fb and devices, which cannot fail, answer nothing.
std::unique_ptr<Backend> make_bounded_backend(std::unique_ptr<Backend> inner, const Root& root,
                                              std::chrono::milliseconds timeout);

// Master from debugfs (ROOT/sys/kernel/debug/dri/MINOR/clients), nullopt
// when the file is absent or unreadable.
std::optional<Master> master_from_debugfs(const Root& root, int minor);

// ---------------------------------------------------------------- fbcon
struct Fbcon {
  bool bound = false;             // a "frame buffer device" vtconsole is bound
  std::optional<int> fg_console;  // the foreground VT (tty0/active)
  std::optional<int> fb;          // the framebuffer fbcon shows it on
  std::optional<int> card_fb;     // this card's framebuffer (fbN whose device is the card's)
  std::optional<bool> on_card;    // nullopt: could not tell
  std::string how;
};

Fbcon fbcon_state(const Root& root, Backend& backend, const Card& card);

// ---------------------------------------------------------------- the commands' engine
// The card of ADDR (the lowest minor), or nullopt when it has none.
std::optional<Card> card_of(const Root& root, const PciAddress& addr);
// CARD's connector NAME, or nullptr.
const SysfsConnector* connector_of(const Card& card, const std::string& name);
// NAME must be "" (every connector) or one of CARD's; the error lists them.
Status check_connector(const Card& card, const std::string& name);

// What pt-drm check judges DEV by, and what it read on the way.
struct Health {
  VerdictInput input;
  std::optional<Card> card;
  std::optional<Kms> kms;      // when the card's node exists and KMS could be read
  std::optional<Fbcon> fbcon;  // likewise
  std::optional<Error> stuck;  // the KMS read did not return within --timeout
};
Health examine(const Root& root, Backend& backend, const Device& dev);

// One connector pt-drm probe asked to detect again.
struct Probed {
  SysfsConnector before;
  std::string status;  // after; "" when unreadable or gone
  int modes = 0;       // after
  bool changed = false;
};
// Writes "detect" to each of TARGETS' status (connectors of ADDR's card),
// under the pt lock, and reads each back.
Result<std::vector<Probed>> probe(Context& ctx, const PciAddress& addr,
                                  const std::vector<SysfsConnector>& targets);

}  // namespace pt::drm
