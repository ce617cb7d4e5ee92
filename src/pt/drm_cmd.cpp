#include "pt/drm_cmd.hpp"

#include <libudev.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string_view>

#include "pt/drm_verdict.hpp"
#include "pt/lock.hpp"
#include "pt/pci.hpp"
#include "pt/system.hpp"

namespace pt::drm {

using nlohmann::json;

namespace {

json nullable(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}
template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s + " ";
}

std::string or_dash(const std::string& s) {
  return s.empty() ? "-" : s;
}

std::string mode_text(const std::optional<Mode>& m) {
  if (!m) return "-";
  return m->name + (m->refresh ? "@" + std::to_string(m->refresh) : "");
}

// DEV as the commands take it: one display function.
Result<Device> resolve_display(const Context& ctx, const std::string& text) {
  auto spec = parse_device_spec(text);
  if (!spec) return std::unexpected(spec.error());
  PciAddress addr{spec->domain, spec->bus, spec->dev, spec->func.value_or(0)};
  auto dev = read_device(ctx.root, addr);
  if (!dev) return std::unexpected(dev.error());
  if (!dev->is_display()) {
    char cls[16];
    std::snprintf(cls, sizeof cls, "0x%06x", dev->class_code);
    return fail(addr.str(),
                std::string("is not a display device (class ") + cls +
                    (dev->is_audio() ? ", audio" : "") +
                    "); pt-drm reads the display function of a GPU, usually function .0");
  }
  return dev;
}

// The card of DEV, or nullopt when it has none.
std::optional<Card> card_of(const Root& root, const PciAddress& addr) {
  auto cards = cards_of(scan_cards(root), addr);
  if (cards.empty()) return std::nullopt;
  return cards.front();
}

const SysfsConnector* sysfs_connector(const Card& c, const std::string& name) {
  for (const auto& k : c.connectors)
    if (k.name == name) return &k;
  return nullptr;
}

std::string connector_names(const Card& c) {
  std::string s;
  for (const auto& k : c.connectors) s += (s.empty() ? "" : ", ") + k.name;
  return s.empty() ? "none" : s;
}

Status check_connector(const Card& c, const std::string& name) {
  if (name.empty() || sysfs_connector(c, name)) return {};
  return fail("connector '" + name + "'",
              "no such connector on " + c.name + "; its connectors are: " + connector_names(c));
}

json master_json(const Master& m) {
  return {{"exists", opt(m.exists)}, {"holder", nullable(m.holder)}, {"how", m.how}};
}

json fbcon_json(const Fbcon& f) {
  return {{"bound", f.bound},          {"foreground_console", opt(f.fg_console)},
          {"console_fb", opt(f.fb)},   {"card_fb", opt(f.card_fb)},
          {"on_card", opt(f.on_card)}, {"how", f.how}};
}

std::string master_text(const Master& m) {
  std::string s = !m.exists   ? "unknown"
                  : *m.exists ? "held" + (m.holder.empty() ? "" : " by " + m.holder)
                              : "none";
  return s + " (" + m.how + ")";
}

std::string fbcon_text(const Fbcon& f) {
  std::string s = !f.on_card ? "unknown" : *f.on_card ? "on this card" : "not on this card";
  return s + (f.how.empty() ? "" : " (" + f.how + ")");
}

// ------------------------------------------------------------------ list
Result<Exit> cmd_list(const Options& o, Context& ctx, Backend& backend, std::ostream& out) {
  auto cards = scan_cards(ctx.root);
  // libdrm's own enumeration names the PCI device of each primary node; it
  // must agree with sysfs, and fills in a device sysfs could not place.
  for (const auto& [node, addr] : backend.devices())
    for (auto& c : cards)
      if (c.node == node && !c.pci) c.pci = addr;
  json arr = json::array();
  std::string text = pad("CARD", 6) + pad("RENDER", 20) + pad("PCI", 13) + pad("PCI DRIVER", 12) +
                     pad("DRM DRIVER", 22) + pad("KMS", 4) + "CONNECTORS\n";
  for (const auto& c : cards) {
    auto k = backend.read(c);
    if (!k && k.error().exit == Exit::timeout) return std::unexpected(k.error());
    json conns = json::array();
    std::string ctext;
    for (const auto& s : c.connectors) {
      conns.push_back({{"name", s.name},
                       {"status", nullable(s.status)},
                       {"enabled", nullable(s.enabled)},
                       {"dpms", nullable(s.dpms)},
                       {"modes", s.modes}});
      ctext += (ctext.empty() ? "" : " ") + s.name + ":" + or_dash(s.status);
    }
    json j = {{"card", c.name},
              {"node", c.node},
              {"node_exists", c.node_exists},
              {"render", nullable(c.render)},
              {"by_path", nullable(c.by_path)},
              {"pci", c.pci ? json(c.pci->str()) : json(nullptr)},
              {"pci_driver", nullable(c.pci_driver)},
              {"connectors", conns}};
    if (k) {
      j["driver"] = nullable(k->driver);
      j["version"] = nullable(k->version);
      j["date"] = nullable(k->date);
      j["kms"] = opt(k->kms);
      j["error"] = nullptr;
    } else {
      j["driver"] = j["version"] = j["date"] = j["kms"] = nullptr;
      j["error"] = k.error().describe();
    }
    arr.push_back(j);
    std::string drv = k ? or_dash(k->driver) + (k->version.empty() ? "" : " " + k->version) : "?";
    std::string kms = k && k->kms ? (*k->kms ? "yes" : "no") : "?";
    text += pad(c.name, 6) + pad(c.render.empty() ? "-" : c.render, 20) +
            pad(c.pci ? c.pci->str() : "-", 13) + pad(or_dash(c.pci_driver), 12) + pad(drv, 22) +
            pad(kms, 4) + (ctext.empty() ? "-" : ctext) + "\n";
    if (!c.by_path.empty()) text += "      by-path " + c.by_path + "\n";
    if (!k) text += "      " + k.error().describe() + "\n";
  }
  if (o.common.json)
    out << arr.dump(2) << "\n";
  else if (cards.empty())
    out << "no DRM devices under " << ctx.root.path("/sys/class/drm") << "\n";
  else
    out << text;
  return Exit::ok;
}

// ------------------------------------------------------------------ show
Result<Exit> cmd_show(const Options& o, Context& ctx, Backend& backend, std::ostream& out) {
  auto dev = resolve_display(ctx, o.device);
  if (!dev) return std::unexpected(dev.error());
  auto card = card_of(ctx.root, dev->addr);
  if (!card)
    return fail(dev->addr.str(),
                "has no DRM device (driver: " + (dev->driver.empty() ? "none" : dev->driver) +
                    "); pt-drm check says why");
  if (auto s = check_connector(*card, o.connector); !s) return std::unexpected(s.error());
  auto k = backend.read(*card);
  if (!k) return std::unexpected(k.error());
  auto fb = fbcon_state(ctx.root, backend, *card);

  json conns = json::array();
  std::string ctext = "  " + pad("CONNECTOR", 14) + pad("ID", 4) + pad("STATUS", 13) +
                      pad("ENABLED", 9) + pad("DPMS", 8) + pad("MODES", 6) + pad("ENCODER", 8) +
                      pad("CRTC", 5) + "MODE\n";
  for (const auto& s : card->connectors) {
    if (!o.connector.empty() && s.name != o.connector) continue;
    const KmsConnector* kc = nullptr;
    for (const auto& x : k->connectors)
      if (x.name == s.name) kc = &x;
    const KmsCrtc* crtc = kc && kc->crtc_id && !k->from_sysfs ? k->crtc(kc->crtc_id) : nullptr;
    json j = {{"name", s.name},
              {"status", nullable(s.status)},
              {"enabled", nullable(s.enabled)},
              {"dpms", nullable(s.dpms)},
              {"modes", s.modes}};
    bool known = kc && !k->from_sysfs;
    j["id"] = known ? json(kc->id) : json(nullptr);
    j["encoder"] = known ? json(kc->encoder_id) : json(nullptr);
    j["crtc"] = known ? json(kc->crtc_id) : json(nullptr);
    j["crtc_mode"] = crtc && crtc->mode ? json(mode_text(crtc->mode)) : json(nullptr);
    conns.push_back(j);
    ctext += "  " + pad(s.name, 14) + pad(known ? std::to_string(kc->id) : "-", 4) +
             pad(or_dash(s.status), 13) + pad(or_dash(s.enabled), 9) + pad(or_dash(s.dpms), 8) +
             pad(std::to_string(s.modes), 6) +
             pad(known && kc->encoder_id ? std::to_string(kc->encoder_id) : "-", 8) +
             pad(known && kc->crtc_id ? std::to_string(kc->crtc_id) : "-", 5) +
             (crtc ? mode_text(crtc->mode) : "-") + "\n";
  }
  json crtcs = json::array();
  std::string rtext =
      "  " + pad("CRTC", 5) + pad("STATE", 8) + pad("ACTIVE", 7) + pad("FB", 5) + "MODE\n";
  for (const auto& c : k->crtcs) {
    crtcs.push_back({{"id", c.id},
                     {"enabled", c.enabled},
                     {"active", opt(c.active)},
                     {"mode", c.mode ? json(mode_text(c.mode)) : json(nullptr)},
                     {"fb", c.fb_id}});
    rtext += "  " + pad(std::to_string(c.id), 5) + pad(c.enabled ? "set" : "none", 8) +
             pad(c.active ? (*c.active ? "yes" : "no") : "-", 7) + pad(std::to_string(c.fb_id), 5) +
             mode_text(c.mode) + "\n";
  }
  json planes = json::array();
  std::string ptext;
  for (const auto& p : k->planes) {
    planes.push_back({{"id", p.id}, {"crtc", p.crtc_id}, {"fb", p.fb_id}});
    ptext +=
        " " + std::to_string(p.id) + (p.crtc_id ? "->crtc " + std::to_string(p.crtc_id) : ":idle");
  }
  if (o.common.json) {
    json j = {{"device", dev->addr.str()},
              {"pci_driver", nullable(dev->driver)},
              {"card", card->name},
              {"node", card->node},
              {"render", nullable(card->render)},
              {"by_path", nullable(card->by_path)},
              {"driver", nullable(k->driver)},
              {"version", nullable(k->version)},
              {"date", nullable(k->date)},
              {"kms", opt(k->kms)},
              {"crtc_state_read", !k->from_sysfs},
              {"connectors", conns},
              {"crtcs", crtcs},
              {"planes", planes},
              {"master", master_json(k->master)},
              {"fbcon", fbcon_json(fb)}};
    out << j.dump(2) << "\n";
    return Exit::ok;
  }
  std::string text = dev->addr.str() + "  " + card->name + "  " + or_dash(k->driver) +
                     (k->version.empty() ? "" : " " + k->version + " (" + k->date + ")") +
                     "  PCI driver " + or_dash(dev->driver) + "\n";
  text += "  nodes:   " + card->node + (card->render.empty() ? "" : " " + card->render) +
          (card->by_path.empty() ? "" : " " + card->by_path) + "\n";
  text +=
      "  kms:     " +
      std::string(!k->kms   ? "unknown"
                  : *k->kms ? "yes"
                            : "no") +
      (k->from_sysfs ? " (from sysfs; CRTCs, encoders and planes are not read under --root)" : "") +
      "\n";
  text += "  master:  " + master_text(k->master) + "\n";
  text += "  fbcon:   " + fbcon_text(fb) + "\n";
  text += ctext;
  if (!k->from_sysfs) {
    text += rtext;
    text += "  planes: " + (ptext.empty() ? std::string(" none") : ptext) + "\n";
  }
  out << text;
  return Exit::ok;
}

// ------------------------------------------------------------------ check
VerdictInput verdict_input(const Context& ctx, Backend& backend, const Device& dev,
                           const std::optional<Card>& card, std::optional<Kms>* kms_out,
                           std::optional<Fbcon>* fb_out, std::optional<Error>* stuck) {
  VerdictInput in;
  in.device = dev.addr.str();
  in.driver = dev.driver;
  in.card = card.has_value();
  if (!card) return in;
  in.node = card->node_exists;
  if (!in.node) return in;
  auto k = backend.read(*card);
  if (!k) {
    if (k.error().exit == Exit::timeout) *stuck = k.error();
    in.kms = false;
    in.kms_error = k.error().describe();
    return in;
  }
  in.kms = k->kms;
  in.master_exists = k->master.exists;
  for (const auto& s : card->connectors) {
    ConnectorState cs{s.name, s.status, s.enabled, s.dpms, std::nullopt, std::nullopt};
    if (!k->from_sysfs) {
      cs.crtc_id = 0;
      for (const auto& kc : k->connectors)
        if (kc.name == s.name) {
          cs.crtc_id = kc.crtc_id;
          if (const KmsCrtc* c = k->crtc(kc.crtc_id)) cs.crtc_lit = c->lit();
        }
    }
    in.connectors.push_back(cs);
  }
  auto fb = fbcon_state(ctx.root, backend, *card);
  in.fbcon_on_card = fb.on_card;
  *kms_out = std::move(*k);
  *fb_out = fb;
  return in;
}

Result<Exit> cmd_check(const Options& o, Context& ctx, Backend& backend, std::ostream& out) {
  auto dev = resolve_display(ctx, o.device);
  if (!dev) return std::unexpected(dev.error());
  auto card = card_of(ctx.root, dev->addr);
  std::optional<Kms> k;
  std::optional<Fbcon> fb;
  std::optional<Error> stuck;
  auto in = verdict_input(ctx, backend, *dev, card, &k, &fb, &stuck);
  // A read that never returned is no verdict on the display: exit 5, not 6.
  if (stuck) return std::unexpected(*stuck);
  auto v = judge(in);
  if (o.common.json) {
    json conns = json::array();
    for (const auto& c : v.connectors)
      conns.push_back({{"name", c.name}, {"lit", c.lit}, {"reason", c.reason}});
    json j = {{"device", in.device},
              {"verdict", v.state},
              {"exit", int(v.exit)},
              {"summary", v.summary},
              {"pci_driver", nullable(in.driver)},
              {"card", card ? json(card->name) : json(nullptr)},
              {"kms", opt(in.kms)},
              {"crtc_state_read", k ? json(!k->from_sysfs) : json(nullptr)},
              {"connectors", conns},
              {"master", k ? master_json(k->master) : json(nullptr)},
              {"fbcon", fb ? fbcon_json(*fb) : json(nullptr)}};
    out << j.dump(2) << "\n";
  } else {
    out << v.state << ": " << v.summary << "\n";
    for (const auto& c : v.connectors)
      out << "  " << pad(c.name, 14) << (c.lit ? "lit  " : "dark ") << c.reason << "\n";
    if (fb && (v.exit != Exit::ok || o.common.verbose))
      out << "  fbcon: " << fbcon_text(*fb) << "\n";
    if (k && (v.exit != Exit::ok || o.common.verbose))
      out << "  master: " << master_text(k->master) << "\n";
  }
  return v.exit;
}

// ------------------------------------------------------------------ probe
Result<Exit> cmd_probe(const Options& o, Context& ctx, Backend&, std::ostream& out) {
  auto dev = resolve_display(ctx, o.device);
  if (!dev) return std::unexpected(dev.error());
  auto card = card_of(ctx.root, dev->addr);
  if (!card)
    return fail(dev->addr.str(), "has no DRM device to probe (driver: " +
                                     (dev->driver.empty() ? "none" : dev->driver) + ")");
  if (auto s = check_connector(*card, o.connector); !s) return std::unexpected(s.error());
  std::vector<SysfsConnector> targets;
  for (const auto& c : card->connectors)
    if (o.connector.empty() || c.name == o.connector) targets.push_back(c);
  if (targets.empty()) return fail(card->name, "has no connectors to probe");
  if (ctx.dry_run) {
    json arr = json::array();
    std::string text =
        "dry run: " + std::to_string(targets.size()) + " write(s); nothing is changed\n";
    for (const auto& c : targets) {
      arr.push_back({{"connector", c.name}, {"write", c.path + "/status"}, {"value", "detect"}});
      text += "  write " + c.path + "/status \"detect\"\n";
    }
    if (o.common.json)
      out << arr.dump(2) << "\n";
    else
      out << text;
    return Exit::ok;
  }
  auto lock = Lock::acquire(ctx.root, ctx.lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  json arr = json::array();
  std::string text;
  for (const auto& c : targets) {
    // detect clears a forced on/off and asks the driver to detect again;
    // the kernel sends a hotplug event when the status changes.
    if (auto w = ctx.writer->write(c.path + "/status", "detect", WriteKind::blocking); !w)
      return std::unexpected(w.error());
    auto after_card = card_of(ctx.root, dev->addr);
    const SysfsConnector* now = after_card ? sysfs_connector(*after_card, c.name) : nullptr;
    std::string status = now ? now->status : "";
    int modes = now ? now->modes : 0;
    bool changed = !now || status != c.status || modes != c.modes;
    arr.push_back({{"connector", c.name},
                   {"before", {{"status", nullable(c.status)}, {"modes", c.modes}}},
                   {"after", {{"status", nullable(status)}, {"modes", modes}}},
                   {"changed", changed}});
    text += pad(c.name, 14) + or_dash(c.status) + " -> " + or_dash(status) + ", " +
            std::to_string(c.modes) + " -> " + std::to_string(modes) + " modes" +
            (changed ? "  (changed)" : "  (unchanged)") + "\n";
  }
  if (o.common.json)
    out << arr.dump(2) << "\n";
  else
    out << text;
  return Exit::ok;
}

// ------------------------------------------------------------------ wait
double ms_since(std::chrono::steady_clock::time_point from,
                std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// What wait saw last, for the timeout message.
struct Seen {
  std::string driver;
  bool card = false, node = false;
  std::optional<bool> kms;
  std::string error;
  std::string card_name;
};

std::string describe_seen(const std::string& bdf, const Seen& s) {
  if (s.driver.empty()) return "no driver is bound to " + bdf + ", so it has no DRM card";
  if (!s.card)
    return "driver " + s.driver + " is bound" +
           (s.driver == "vfio-pci" || s.driver == "pci-stub"
                ? " (a parking driver, which never creates one)"
                : "") +
           ", but no DRM card node appeared";
  if (!s.node)
    return s.card_name + " exists in sysfs, but /dev/dri/" + s.card_name + " did not appear";
  return s.card_name + " exists (driver " + s.driver +
         "), but its KMS resources could not be read" + (s.error.empty() ? "" : ": " + s.error);
}

// Wakes on kernel uevents (netlink, no udevd needed) and on inotify events
// under /dev/dri; under --root on inotify events below the root only.
class Watcher {
 public:
  Watcher(const Root& root, const PciAddress& addr) : root_(root), addr_(addr) {
    ino_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (root.is_real()) {
      udev_ = udev_new();
      if (udev_) mon_ = udev_monitor_new_from_netlink(udev_, "kernel");
      if (mon_ && udev_monitor_enable_receiving(mon_) < 0) {
        udev_monitor_unref(mon_);
        mon_ = nullptr;
      }
    }
    arm();
  }
  ~Watcher() {
    if (mon_) udev_monitor_unref(mon_);
    if (udev_) udev_unref(udev_);
    if (ino_ >= 0) ::close(ino_);
  }
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  bool has_source() const { return ino_ >= 0 || mon_; }
  bool netlink() const { return mon_ != nullptr; }

  // Adding a watch twice is harmless (same inode, same descriptor), so the
  // directories that appear later are picked up on each wake.
  void arm() {
    if (ino_ < 0) return;
    const uint32_t mask =
        IN_CREATE | IN_DELETE | IN_ATTRIB | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE_SELF;
    dev_wd_ = ::inotify_add_watch(ino_, root_.path("/dev").c_str(), mask);
    ::inotify_add_watch(ino_, root_.path("/dev/dri").c_str(), mask);
    if (!root_.is_real()) {
      // Fixture trees are ordinary directories, where inotify sees links and
      // directories come and go; the kernel's sysfs sends no such events.
      const std::string dev = root_.path("/sys/bus/pci/devices/" + addr_.str());
      ::inotify_add_watch(ino_, root_.path("/sys/class/drm").c_str(), mask);
      ::inotify_add_watch(ino_, dev.c_str(), mask);
      ::inotify_add_watch(ino_, (dev + "/drm").c_str(), mask);
    }
  }

  // Blocks until an event or until TIMEOUT_MS passes; drains what arrived.
  // True when something arrived that can change what a look sees: a DRM
  // uevent, a uevent of DEV or anything below it (its driver, its card, its
  // framebuffer), or a change in /dev/dri (or /dev/dri itself). An attach
  // sends dozens of other uevents (the audio function's sound and input
  // devices, ...); looking at each would put a sysfs scan between the card's
  // node appearing and the look that finds it.
  // ANY: every event counts (the last look found the node but could not
  // open it yet, and any event is as good a moment to try again as another).
  bool wait(int timeout_ms, bool any) {
    pollfd fds[2];
    nfds_t n = 0;
    if (ino_ >= 0) fds[n++] = pollfd{ino_, POLLIN, 0};
    if (mon_) fds[n++] = pollfd{udev_monitor_get_fd(mon_), POLLIN, 0};
    int r = ::poll(fds, n, timeout_ms);
    if (r <= 0) return false;
    bool relevant = any;
    if (ino_ >= 0) {
      alignas(inotify_event) char buf[4096];
      for (ssize_t got; (got = ::read(ino_, buf, sizeof buf)) > 0;) {
        for (ssize_t off = 0; off < got;) {
          const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
          const std::string_view name(ev->len ? ev->name : "");
          if (ev->wd != dev_wd_ || name == "dri" || (ev->mask & (IN_IGNORED | IN_Q_OVERFLOW)))
            relevant = true;
          off += ssize_t(sizeof(inotify_event) + ev->len);
        }
      }
    }
    if (mon_) {
      const std::string bdf = addr_.str();
      while (udev_device* d = udev_monitor_receive_device(mon_)) {
        const char* sub = udev_device_get_subsystem(d);
        const char* path = udev_device_get_devpath(d);
        if ((sub && std::string_view(sub) == "drm") ||
            (path && std::string_view(path).find(bdf) != std::string_view::npos))
          relevant = true;
        udev_device_unref(d);
      }
    }
    arm();
    return relevant;
  }

 private:
  Root root_;
  PciAddress addr_;
  int ino_ = -1;
  int dev_wd_ = -1;
  udev* udev_ = nullptr;
  udev_monitor* mon_ = nullptr;
};

Result<Exit> cmd_wait(const Options& o, Context& ctx, Backend& backend, std::ostream& out) {
  auto dev = resolve_display(ctx, o.device);
  if (!dev) return std::unexpected(dev.error());
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + ctx.timeout;
  // The watch is set up before the first look, so nothing that happens in
  // between is missed.
  Watcher watcher(ctx.root, dev->addr);
  if (!watcher.has_source())
    return fail(o.device, "cannot watch for the DRM card (no inotify, no netlink)", errno);
  Seen seen;
  int looks = 0;
  for (;;) {
    ++looks;
    const auto t_look = std::chrono::steady_clock::now();
    seen = Seen{};
    seen.driver = link_basename(ctx.root.path(dev->sysfs("driver"))).value_or("");
    if (auto card = find_card(ctx.root, dev->addr)) {
      seen.card = true;
      seen.card_name = card->name;
      seen.node = card->node_exists;
      if (seen.node) {
        auto t_read = std::chrono::steady_clock::now();
        auto k = backend.kms_readable(*card);
        if (o.trace) {
          char buf[160];
          std::snprintf(buf, sizeof buf,
                        "look %d at %.1f ms (monotonic %.3f ms): %s, KMS read %s in %.1f ms", looks,
                        ms_since(start, t_look), ms_since({}, t_look), card->name.c_str(),
                        k ? (*k ? "ok" : "without KMS") : "failed",
                        ms_since(t_read, std::chrono::steady_clock::now()));
          o.trace(buf);
        }
        if (k) {
          seen.kms = *k;
          if (*k) {
            double ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count();
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.1f", ms);
            if (o.common.json)
              out << json{{"device", dev->addr.str()},
                          {"card", card->name},
                          {"ready", true},
                          {"waited_ms", ms}}
                         .dump(2)
                  << "\n";
            else
              out << dev->addr.str() << ": " << card->name << " is ready (KMS readable) after "
                  << buf << " ms\n";
            return Exit::ok;
          }
        } else {
          seen.error = k.error().describe();
        }
      }
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    if (o.trace && !seen.node) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "look %d at %.1f ms: driver %s, %s", looks,
                    ms_since(start, t_look), seen.driver.empty() ? "none" : seen.driver.c_str(),
                    seen.card ? "card without node" : "no card");
      o.trace(buf);
    }
    // Sleep through events that cannot change what a look sees; the look
    // at the deadline still reports the latest state.
    for (bool relevant = false; !relevant;) {
      now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
      // The node exists before the kernel publishes the minor
      // (drm_minor_register), and an open in between fails; then the next
      // event of any kind is the moment to try again.
      relevant = watcher.wait(int(std::max<int64_t>(1, left)), seen.node && !seen.error.empty());
    }
  }
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", double(ctx.timeout.count()) / 1000.0);
  return fail(dev->addr.str(),
              std::string("no ready DRM card within ") + secs +
                  " s: " + describe_seen(dev->addr.str(), seen),
              0, Exit::timeout);
}

}  // namespace

Result<Exit> run_in(const Options& o, Context& ctx, Backend& backend, std::ostream& out) {
  if (o.command == "list") return cmd_list(o, ctx, backend, out);
  if (o.command == "show") return cmd_show(o, ctx, backend, out);
  if (o.command == "probe") return cmd_probe(o, ctx, backend, out);
  if (o.command == "wait") return cmd_wait(o, ctx, backend, out);
  if (o.command == "check") return cmd_check(o, ctx, backend, out);
  return usage_error("pt-drm", "unknown command '" + o.command + "'");
}

Result<Exit> run(const Options& o, std::ostream& out, const ObservedWriter::Observer& on_write) {
  auto sys = open_system(o.common, on_write);
  if (!sys) return std::unexpected(sys.error());
  auto backend =
      make_bounded_backend(make_backend((*sys)->ctx.root), (*sys)->ctx.root, (*sys)->ctx.timeout);
  return run_in(o, (*sys)->ctx, *backend, out);
}

}  // namespace pt::drm
