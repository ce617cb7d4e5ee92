#include "pt/drm_wait.hpp"

#include <libudev.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string_view>

#include "pt/sysfs.hpp"

namespace pt::drm {

namespace {

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
           (is_parking_driver(s.driver) ? " (a parking driver, which never creates one)" : "") +
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

}  // namespace

Result<Ready> wait_ready(Context& ctx, Backend& backend, const Device& dev,
                         const std::string& input,
                         const std::function<void(const std::string&)>& trace) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + ctx.timeout;
  // The watch is set up before the first look, so nothing that happens in
  // between is missed.
  Watcher watcher(ctx.root, dev.addr);
  if (!watcher.has_source())
    return fail(input, "cannot watch for the DRM card (no inotify, no netlink)", errno);
  Seen seen;
  int looks = 0;
  std::optional<WaitReport> report;  // from the first look that finds no ready card
  for (;;) {
    ++looks;
    const auto t_look = std::chrono::steady_clock::now();
    seen = Seen{};
    seen.driver = link_basename(ctx.root, dev.sysfs("driver")).value_or("");
    if (auto card = find_card(ctx.root, dev.addr)) {
      seen.card = true;
      seen.card_name = card->name;
      seen.node = card->node_exists;
      if (seen.node) {
        auto t_read = std::chrono::steady_clock::now();
        auto k = backend.kms_readable(*card);
        if (trace) {
          char buf[160];
          std::snprintf(buf, sizeof buf,
                        "look %d at %.1f ms (monotonic %.3f ms): %s, KMS read %s in %.1f ms", looks,
                        ms_since(start, t_look), ms_since({}, t_look), card->name.c_str(),
                        k ? (*k ? "ok" : "without KMS") : "failed",
                        ms_since(t_read, std::chrono::steady_clock::now()));
          trace(buf);
        }
        if (k) {
          seen.kms = *k;
          if (*k) {
            if (report) report->end(true);
            return Ready{card->name, ms_since(start, std::chrono::steady_clock::now())};
          }
        } else {
          seen.error = k.error().describe();
        }
      }
    }
    if (!report)
      report.emplace(ctx.on_wait, dev.addr.str() + "'s DRM card to become readable", dev.addr.str(),
                     ctx.timeout);
    report->tick();
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    if (trace && !seen.node) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "look %d at %.1f ms: driver %s, %s", looks,
                    ms_since(start, t_look), seen.driver.empty() ? "none" : seen.driver.c_str(),
                    seen.card ? "card without node" : "no card");
      trace(buf);
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
      // With someone to tell, wake at least every kWaitTick to tell them.
      if (ctx.on_wait) left = std::min<int64_t>(left, kWaitTick.count());
      relevant = watcher.wait(int(std::max<int64_t>(1, left)), seen.node && !seen.error.empty());
      report->tick();
    }
  }
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", double(ctx.timeout.count()) / 1000.0);
  return fail(dev.addr.str(),
              std::string("no ready DRM card within ") + secs +
                  " s: " + describe_seen(dev.addr.str(), seen),
              0, Exit::timeout);
}

}  // namespace pt::drm
