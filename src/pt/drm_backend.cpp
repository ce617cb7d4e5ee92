// The libdrm backend: the running system only (libdrm hard-codes /dev/dri
// and /sys), chosen by make_backend when no --root is given.
#include <fcntl.h>
#include <linux/fb.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "pt/drm.hpp"
#include "pt/sysfs.hpp"

namespace pt::drm {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string connector_name(const drmModeConnector& c) {
  const char* type = drmModeGetConnectorTypeName(c.connector_type);
  return std::string(type ? type : "Unknown") + "-" + std::to_string(c.connector_type_id);
}

std::string connection_name(drmModeConnection c) {
  switch (c) {
    case DRM_MODE_CONNECTED:
      return "connected";
    case DRM_MODE_DISCONNECTED:
      return "disconnected";
    default:
      return "unknown";
  }
}

// The atomic ACTIVE property of a CRTC, visible once the client set the
// atomic capability (per open file, nothing global).
std::optional<bool> crtc_active(int fd, uint32_t crtc_id) {
  drmModeObjectProperties* props = drmModeObjectGetProperties(fd, crtc_id, DRM_MODE_OBJECT_CRTC);
  if (!props) return std::nullopt;
  std::optional<bool> out;
  for (uint32_t i = 0; i < props->count_props && !out; ++i) {
    drmModePropertyRes* p = drmModeGetProperty(fd, props->props[i]);
    if (!p) continue;
    if (std::strcmp(p->name, "ACTIVE") == 0) out = props->prop_values[i] != 0;
    drmModeFreeProperty(p);
  }
  drmModeFreeObjectProperties(props);
  return out;
}

// O_RDONLY: the KMS getters need no write access; nothing here is a write.
Result<std::unique_ptr<Fd>> open_card(const Card& card) {
  int raw = ::open(card.node.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (raw < 0) {
    int e = errno;
    std::string msg = "cannot open the DRM card";
    if (e == EACCES || e == EPERM)
      msg += "; pt-drm needs root (or the video group) to read KMS state";
    return fail(card.node, msg, e);
  }
  return std::make_unique<Fd>(raw);
}

// The kernel makes the first opener of a primary node without a master its
// master (drm_master_open). Give it back at once, so that a display manager
// or the fbdev emulation is never locked out by pt-drm. True when the open
// had made us master.
bool drop_master(int fd) {
  if (drmIsMaster(fd) == 0) return false;
  drmDropMaster(fd);
  return true;
}

class LibdrmBackend final : public Backend {
 public:
  Result<bool> kms_readable(const Card& card) override {
    auto fd = open_card(card);
    if (!fd) return std::unexpected(fd.error());
    drop_master((*fd)->get());
    drmModeRes* res = drmModeGetResources((*fd)->get());
    if (!res) return false;
    drmModeFreeResources(res);
    return true;
  }

  Result<Kms> read(const Card& card) override {
    Kms k;
    // Who is master, read before we open anything: our own open would make
    // us master of a card nobody holds.
    Root real;
    auto before = master_from_debugfs(real, card.minor);
    auto opened = open_card(card);
    if (!opened) return std::unexpected(opened.error());
    Fd& fd = **opened;
    bool became_master = drop_master(fd.get());
    if (before) {
      k.master = *before;
    } else if (became_master) {
      k.master = Master{false, "",
                        "pt-drm's open made it master (none existed); it dropped master at once"};
    } else {
      k.master =
          Master{true, "", "pt-drm's open did not make it master, so another client holds master"};
    }
    if (became_master) k.master.how += "; pt-drm held master briefly and dropped it";

    if (drmVersionPtr v = drmGetVersion(fd.get())) {
      k.driver.assign(v->name, size_t(v->name_len));
      k.version = std::to_string(v->version_major) + "." + std::to_string(v->version_minor) + "." +
                  std::to_string(v->version_patchlevel);
      k.date.assign(v->date, size_t(v->date_len));
      k.desc.assign(v->desc, size_t(v->desc_len));
      drmFreeVersion(v);
    }
    drmSetClientCap(fd.get(), DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1);
    bool atomic = drmSetClientCap(fd.get(), DRM_CLIENT_CAP_ATOMIC, 1) == 0;
    drmModeRes* res = drmModeGetResources(fd.get());
    if (!res) {
      k.kms = false;
      return k;
    }
    k.kms = true;
    for (int i = 0; i < res->count_crtcs; ++i) {
      drmModeCrtc* c = drmModeGetCrtc(fd.get(), res->crtcs[i]);
      if (!c) continue;
      KmsCrtc kc;
      kc.id = c->crtc_id;
      kc.enabled = c->mode_valid != 0;
      kc.fb_id = c->buffer_id;
      if (c->mode_valid)
        kc.mode =
            Mode{std::string(c->mode.name), c->mode.hdisplay, c->mode.vdisplay, c->mode.vrefresh};
      if (atomic) kc.active = crtc_active(fd.get(), c->crtc_id);
      k.crtcs.push_back(kc);
      drmModeFreeCrtc(c);
    }
    for (int i = 0; i < res->count_connectors; ++i) {
      // GetConnectorCurrent never forces a probe: it reports what the kernel knows.
      drmModeConnector* c = drmModeGetConnectorCurrent(fd.get(), res->connectors[i]);
      if (!c) continue;
      KmsConnector kc{
          c->connector_id, connector_name(*c), connection_name(c->connection), c->encoder_id, 0,
          c->count_modes};
      if (c->encoder_id) {
        if (drmModeEncoder* e = drmModeGetEncoder(fd.get(), c->encoder_id)) {
          kc.crtc_id = e->crtc_id;
          drmModeFreeEncoder(e);
        }
      }
      k.connectors.push_back(kc);
      drmModeFreeConnector(c);
    }
    drmModeFreeResources(res);
    if (drmModePlaneRes* pr = drmModeGetPlaneResources(fd.get())) {
      for (uint32_t i = 0; i < pr->count_planes; ++i) {
        if (drmModePlane* p = drmModeGetPlane(fd.get(), pr->planes[i])) {
          k.planes.push_back(KmsPlane{p->plane_id, p->crtc_id, p->fb_id});
          drmModeFreePlane(p);
        }
      }
      drmModeFreePlaneResources(pr);
    }
    return k;
  }

  std::vector<std::pair<std::string, PciAddress>> devices() override {
    std::vector<std::pair<std::string, PciAddress>> out;
    int n = drmGetDevices2(0, nullptr, 0);
    if (n <= 0) return out;
    std::vector<drmDevicePtr> devs(size_t(n), nullptr);
    n = drmGetDevices2(0, devs.data(), n);
    for (int i = 0; i < n; ++i) {
      drmDevicePtr d = devs[size_t(i)];
      if (d->bustype != DRM_BUS_PCI || !(d->available_nodes & (1 << DRM_NODE_PRIMARY))) continue;
      PciAddress a{d->businfo.pci->domain, d->businfo.pci->bus, d->businfo.pci->dev,
                   d->businfo.pci->func};
      out.emplace_back(d->nodes[DRM_NODE_PRIMARY], a);
    }
    if (n > 0) drmFreeDevices(devs.data(), n);
    return out;
  }

  std::optional<int> console_fb(int console) override {
    // Any framebuffer device answers for the whole console map; reading it
    // changes nothing.
    for (int i = 0; i < 32; ++i) {
      const std::string node = "/dev/fb" + std::to_string(i);
      int fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
      if (fd < 0) continue;
      fb_con2fbmap map{};
      map.console = uint32_t(console);
      int r = ::ioctl(fd, FBIOGET_CON2FBMAP, &map);
      ::close(fd);
      if (r == 0) return int(map.framebuffer);
    }
    return std::nullopt;
  }
};

}  // namespace

std::unique_ptr<Backend> make_libdrm_backend() {
  return std::make_unique<LibdrmBackend>();
}

}  // namespace pt::drm
