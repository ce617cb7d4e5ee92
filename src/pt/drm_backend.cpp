// The libdrm backend: the running system only (libdrm hard-codes /dev/dri
// and /sys), chosen by make_backend when no --root is given. And the bound
// on any backend's calls (make_bounded_backend).
#include <fcntl.h>
#include <linux/fb.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "pt/drm.hpp"
#include "pt/spawn.hpp"
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
Result<std::unique_ptr<Fd>> open_card(const Root& root, const Card& card) {
  int raw = ::open(root.path(card.node).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
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

// libdrm finds devices under the real /dev and /sys itself, so this backend
// serves the real root only (make_backend); its own opens still go through
// ROOT, like every other path of the kit.
class LibdrmBackend final : public Backend {
 public:
  explicit LibdrmBackend(Root root) : root_(std::move(root)) {}
  Result<bool> kms_readable(const Card& card) override {
    auto fd = open_card(root_, card);
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
    auto opened = open_card(root_, card);
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
      const std::string node = root_.path("/dev/fb" + std::to_string(i));
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

 private:
  Root root_;
};

// ---------------------------------------------------------------- bound
using nlohmann::json;

json opt_json(const std::optional<bool>& b) {
  return b ? json(*b) : json(nullptr);
}
std::optional<bool> opt_bool(const json& j) {
  return j.is_null() ? std::nullopt : std::optional<bool>(j.get<bool>());
}

json kms_json(const Kms& k) {
  json conns = json::array(), crtcs = json::array(), planes = json::array();
  for (const auto& c : k.connectors)
    conns.push_back({c.id, c.name, c.status, c.encoder_id, c.crtc_id, c.modes});
  for (const auto& c : k.crtcs)
    crtcs.push_back({c.id, c.enabled, opt_json(c.active),
                     c.mode ? json{c.mode->name, c.mode->width, c.mode->height, c.mode->refresh}
                            : json(nullptr),
                     c.fb_id});
  for (const auto& p : k.planes) planes.push_back({p.id, p.crtc_id, p.fb_id});
  return {{"driver", k.driver},
          {"version", k.version},
          {"date", k.date},
          {"desc", k.desc},
          {"kms", opt_json(k.kms)},
          {"from_sysfs", k.from_sysfs},
          {"connectors", conns},
          {"crtcs", crtcs},
          {"planes", planes},
          {"master", {opt_json(k.master.exists), k.master.holder, k.master.how}}};
}

Kms kms_from_json(const json& j) {
  Kms k;
  k.driver = j.at("driver");
  k.version = j.at("version");
  k.date = j.at("date");
  k.desc = j.at("desc");
  k.kms = opt_bool(j.at("kms"));
  k.from_sysfs = j.at("from_sysfs");
  for (const auto& c : j.at("connectors"))
    k.connectors.push_back({c[0], c[1], c[2], c[3], c[4], c[5]});
  for (const auto& c : j.at("crtcs")) {
    KmsCrtc kc{c[0], c[1], opt_bool(c[2]), std::nullopt, c[4]};
    if (!c[3].is_null()) kc.mode = Mode{c[3][0], c[3][1], c[3][2], c[3][3]};
    k.crtcs.push_back(kc);
  }
  for (const auto& p : j.at("planes")) k.planes.push_back({p[0], p[1], p[2]});
  const auto& m = j.at("master");
  k.master = Master{opt_bool(m[0]), m[1], m[2]};
  return k;
}

json error_json(const Error& e) {
  return {{"error", {e.err, e.subject, e.message, int(e.exit)}}};
}

template <class T>
Result<T> from_reply(const json& j, const std::function<T(const json&)>& value) {
  if (j.contains("error")) {
    const auto& e = j["error"];
    return std::unexpected(Error{e[0], e[1], e[2], Exit(e[3].get<int>())});
  }
  return value(j.at("ok"));
}

class BoundedBackend final : public Backend {
 public:
  BoundedBackend(std::unique_ptr<Backend> inner, const Root& root,
                 std::chrono::milliseconds timeout)
      : inner_(std::move(inner)),
        root_(root),
        timeout_(timeout),
        deadline_(std::chrono::steady_clock::now() + timeout) {}

  Result<Kms> read(const Card& card) override {
    auto r = run(card.node, "reading its KMS state", [&] {
      auto k = inner_->read(card);
      return k ? json{{"ok", kms_json(*k)}} : error_json(k.error());
    });
    if (!r) return std::unexpected(r.error());
    return from_reply<Kms>(*r, kms_from_json);
  }

  Result<bool> kms_readable(const Card& card) override {
    auto r = run(card.node, "reading its KMS resources", [&] {
      auto k = inner_->kms_readable(card);
      return k ? json{{"ok", *k}} : error_json(k.error());
    });
    if (!r) return std::unexpected(r.error());
    return from_reply<bool>(*r, [](const json& j) { return j.get<bool>(); });
  }

  std::vector<std::pair<std::string, PciAddress>> devices() override {
    auto r = run("/dev/dri", "enumerating the DRM devices", [&] {
      json arr = json::array();
      for (const auto& [node, a] : inner_->devices()) arr.push_back({node, a.str()});
      return json{{"ok", arr}};
    });
    std::vector<std::pair<std::string, PciAddress>> out;
    if (!r) return out;
    for (const auto& d : (*r)["ok"])
      if (auto a = parse_sysfs_name(d[1].get<std::string>())) out.emplace_back(d[0], *a);
    return out;
  }

  std::optional<int> console_fb(int console) override {
    auto r = run("/dev/fb*", "reading the console map", [&] {
      auto fb = inner_->console_fb(console);
      return json{{"ok", fb ? json(*fb) : json(nullptr)}};
    });
    if (!r || (*r)["ok"].is_null()) return std::nullopt;
    return (*r)["ok"].get<int>();
  }

 private:
  // FN's JSON from a child process, or Exit::timeout once the budget is
  // spent. The child only has the pipe open: one that is stuck must not
  // keep the pt lock (PT_LOCK_FD of pt-bind recover) or a caller's pipe.
  // FN does more than async-signal-safe calls (libdrm, JSON), which is
  // sound because pt-drm runs no other thread when it forks.
  Result<json> run(const std::string& subject, const std::string& what,
                   const std::function<json()>& fn) {
    using namespace std::chrono;
    const auto start = steady_clock::now();
    const auto until = std::max(deadline_, start + milliseconds(250));
    spawn::Options opt;
    opt.capture = true;
    opt.timeout = ceil<milliseconds>(until - start);
    // Not kill: reaping a child in uninterruptible sleep would block here.
    opt.on_timeout = spawn::OnTimeout::abandon;
    auto oc = spawn::call(
        root_,
        [&](int out_fd) {
          ::signal(SIGPIPE, SIG_DFL);
          std::string data;
          try {
            data = fn().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          } catch (const std::exception& ex) {
            data = error_json(Error{0, subject, std::string("the reader failed: ") + ex.what(),
                                    Exit::failed})
                       .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          }
          for (size_t off = 0; off < data.size();) {
            ssize_t n = ::write(out_fd, data.data() + off, data.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return 1;
            off += size_t(n);
          }
          return 0;
        },
        opt);
    if (!oc) return fail(subject, what + " failed: " + oc.error().describe());
    if (!oc->finished) {
      const std::pair<std::string, std::string> where{oc->wchan, oc->wchan_source};
      // Gone once the kernel lets go; until then it shows where it waits.
      ::kill(oc->pid, SIGKILL);
      ::waitpid(oc->pid, nullptr, WNOHANG);
      auto secs = [](auto d) {
        // Tenths: the call started a moment after the command's clock did.
        return spawn::seconds_text(
            milliseconds(100 * ((duration_cast<milliseconds>(d).count() + 50) / 100)));
      };
      return fail(subject,
                  what + " did not return within --timeout (" + secs(timeout_) +
                      " s for all of the command's reads; this one waited " + secs(until - start) +
                      " s); the reader process, pid " + std::to_string(oc->pid) +
                      ", waits in the kernel in " + where.first + " (" + where.second +
                      "). The GPU or its driver may be wedged; pt-drm gave up on the reader, which "
                      "exits once the kernel lets it go",
                  0, Exit::timeout);
    }
    if (oc->out.empty())
      return fail(subject,
                  what + " failed: the reader process " +
                      (oc->code > 128 ? "was killed by signal " + std::to_string(oc->code - 128)
                                      : "exited with status " + std::to_string(oc->code)) +
                      " before it answered");
    auto j = json::parse(oc->out, nullptr, false);
    if (j.is_discarded()) return fail(subject, what + " failed: the reader's answer is not JSON");
    return j;
  }

  std::unique_ptr<Backend> inner_;
  Root root_;
  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace

std::unique_ptr<Backend> make_libdrm_backend(const Root& root) {
  return std::make_unique<LibdrmBackend>(root);
}

std::unique_ptr<Backend> make_bounded_backend(std::unique_ptr<Backend> inner, const Root& root,
                                              std::chrono::milliseconds timeout) {
  return std::make_unique<BoundedBackend>(std::move(inner), root, timeout);
}

}  // namespace pt::drm
