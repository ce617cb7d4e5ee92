#include "pt/reset.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "pt/target.hpp"
#include "pt/try.hpp"
#include "pt/holders.hpp"
#include "pt/metrics.hpp"
#include "pt/rebar.hpp"
#include "pt/sysfs.hpp"

namespace pt::reset {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

std::string hex16(uint32_t v, int width = 4) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", width, v);
  return buf;
}

std::vector<const Device*> bus_siblings(const std::vector<Device>& all, const Device& dev) {
  std::vector<const Device*> out;
  for (const auto& d : all)
    if (d.addr != dev.addr && d.addr.domain == dev.addr.domain && d.addr.bus == dev.addr.bus) out.push_back(&d);
  return out;
}

std::string bus_name(const Device& d) { return hex16(d.addr.bus, 2).substr(2); }

std::optional<std::string> hotplug_slot(const Root& root, const Device& dev) {
  char want[16];
  std::snprintf(want, sizeof want, "%04x:%02x:%02x", dev.addr.domain, dev.addr.bus, dev.addr.dev);
  for (const auto& slot : list_dir(root.path("/sys/bus/pci/slots")))
    if (read_attr(root.path("/sys/bus/pci/slots/" + slot + "/address")).value_or("") == want) return slot;
  return std::nullopt;
}

bool parked(const Device& d) { return d.driver.empty() || is_parking_driver(d.driver); }

// A console on the boot GPU: some vtconsole bound to fbcon while a host driver drives it.
bool console_on(const Root& root, const Device& dev) {
  if (!dev.boot_vga.value_or(false) || parked(dev)) return false;
  for (const auto& vc : list_dir(root.path("/sys/class/vtconsole"))) {
    const std::string base = root.path("/sys/class/vtconsole/" + vc);
    if (read_attr(base + "/bind").value_or("0") == "1" &&
        read_attr(base + "/name").value_or("").find("frame buffer") != std::string::npos)
      return true;
  }
  return false;
}

}  // namespace

// A function parked in D3hot on purpose: runtime PM (6.x) or vfio-pci's own
// idle D3 (5.10, disable_idle_d3=0), which the kernel undoes before a reset.
bool idled(const Root& root, const Device& d) {
  return d.driver == "vfio-pci" || read_attr(root.path(d.sysfs("power/runtime_status"))).value_or("") == "suspended";
}

const MethodStatus* DeviceMethods::find(const std::string& name) const {
  for (const auto& m : methods)
    if (m.name == name) return &m;
  return nullptr;
}

// The attribute came with 5.15 and is hidden on functions without a method,
// so its absence alone does not say which kernel this is.
bool kernel_has_reset_method(const Root& root, const std::vector<Device>& all) {
  if (std::any_of(all.begin(), all.end(), [](const Device& d) { return d.reset_methods.has_value(); })) return true;
  std::string release = read_attr(root.path("/proc/sys/kernel/osrelease")).value_or("");
  if (release.empty()) {
    struct utsname u {};
    if (root.is_real() && ::uname(&u) == 0) release = u.release;
  }
  int major = 0, minor = 0;
  if (std::sscanf(release.c_str(), "%d.%d", &major, &minor) != 2) return false;
  return major > 5 || (major == 5 && minor >= 15);
}

DeviceMethods detect(const Root& root, const Device& dev, const ConfigSpace& c, const std::vector<Device>& all,
                     bool kernel_knows) {
  DeviceMethods out{dev, {}};
  auto kernel = [&](const std::string& name) -> std::optional<bool> {
    if (dev.reset_methods)
      return std::find(dev.reset_methods->begin(), dev.reset_methods->end(), name) != dev.reset_methods->end();
    if (kernel_knows) return false;  // the attribute is hidden when a function has no method
    return std::nullopt;
  };
  auto add = [&](const std::string& name, bool available, std::string reason, std::optional<bool> k) {
    out.methods.push_back(MethodStatus{name, available, k, std::move(reason)});
  };
  const std::string ids = id_string(dev);

  // Quirks and ACPI methods are invisible from user space: take the kernel's word.
  auto kd = kernel("device_specific");
  add("device_specific", kd.value_or(false),
      kd.value_or(false) ? "the kernel has a reset quirk for " + ids
                         : "no reset quirk known for " + ids + (kd ? "" : " (this kernel does not say)"),
      kd);
  auto ka = kernel("acpi");
  auto fw = read_attr(root.path(dev.sysfs("firmware_node/path")));
  if (!path_exists(root.path(dev.sysfs("firmware_node"))))
    add("acpi", false, "no ACPI companion (no firmware_node)", ka);
  else
    add("acpi", ka.value_or(false),
        ka.value_or(false) ? "_RST under " + fw.value_or("its ACPI node")
                           : "ACPI companion " + fw.value_or("?") + " has no _RST the kernel uses",
        ka);

  if (auto why = c.caps_unreadable()) {
    for (const char* name : {"flr", "af_flr", "pm"})
      out.methods.push_back(MethodStatus{name, false, kernel(name), *why, false});
  } else {
    if (!c.is_pcie())
      add("flr", false, "not a PCI Express function", kernel("flr"));
    else
      add("flr", c.flr(), c.flr() ? "PCIe DevCap: FLReset+" : "PCIe DevCap: FLReset-",
          kernel("flr"));

    if (!c.has_af())
      add("af_flr", false, "no Advanced Features capability", kernel("af_flr"));
    else
      add("af_flr", c.af_flr(),
          c.af_flr() ? "AF capability: TP+ FLR+" : "AF capability lacks TP or FLR",
          kernel("af_flr"));

    auto nsr = c.no_soft_reset();
    auto state = c.power_state();
    if (!nsr)
      add("pm", false, "no PM capability", kernel("pm"));
    else if (*nsr)
      add("pm", false, "NoSoftRst+ (state is kept across D3hot)", kernel("pm"));
    else if (state && *state != 0 && !idled(root, dev))
      add("pm", false, "function is in D" + std::to_string(*state) + "; a PM reset starts from D0",
          kernel("pm"));
    else if (state && *state != 0)
      add("pm", true,
          "NoSoftRst- (D3hot->D0 resets the function); it idles in D" + std::to_string(*state) +
              " and is woken first",
          kernel("pm"));
    else
      add("pm", true, "NoSoftRst- (D3hot->D0 resets the function)", kernel("pm"));
  }

  auto siblings = bus_siblings(all, dev);
  if (dev.is_bridge()) {
    add("bus", false, "is a bridge: a bus reset would reset everything below it", kernel("bus"));
  } else if (!dev.parent) {
    add("bus", false, "device is on a root bus", kernel("bus"));
  } else if (!siblings.empty()) {
    std::string list;
    for (auto* s : siblings)
      list += (list.empty() ? "" : ", ") + s->addr.str() + " (" + (s->driver.empty() ? "no driver" : s->driver) + ")";
    add("bus", false, "shares bus " + bus_name(dev) + " with " + list, kernel("bus"));
  } else {
    add("bus", true, "secondary bus reset through " + dev.parent->str(), kernel("bus"));
  }

  auto slot = hotplug_slot(root, dev);
  bool multifunction = std::any_of(siblings.begin(), siblings.end(),
                                   [&](const Device* s) { return s->addr.same_slot(dev.addr); });
  if (!slot)
    add("slot", false, "no hotplug slot at " + dev.addr.str().substr(0, 10), std::nullopt);
  else if (multifunction)
    add("slot", false, "hotplug slot " + *slot + " holds other functions", std::nullopt);
  else
    add("slot", true, "hotplug slot " + *slot, std::nullopt);

  // Before 5.15 the reset file runs the kernel's first method only; a slot
  // reset is then reachable only when nothing comes before it.
  if (!kernel_knows && out.methods.back().available &&
      std::any_of(out.methods.begin(), out.methods.end() - 1, [](const MethodStatus& m) { return m.available; })) {
    out.methods.back().available = false;
    out.methods.back().reason += "; this kernel resets a slot only when no other method is available";
  }

  if (dev.is_bridge())
    add("rescan", false, "is a bridge", std::nullopt);
  else
    add("rescan", true, "remove and rescan, then re-apply driver_override", std::nullopt);
  return out;
}

namespace {

Status refuse_busy(const Root& root, const Device& d, bool force) {
  if (force) return {};
  // On vfio-pci a holder of /dev/vfio/N is a running VM: resetting under it
  // corrupts the guest's view of its device.
  auto holders = find_holders(root, d);
  if (!holders.empty())
    return fail(d.addr.str(), "is on " + (d.driver.empty() ? std::string("no driver") : d.driver) +
                                  " and held open: " + describe(holders) +
                                  ". Stop them (or the VM), or pass --force",
                EBUSY);
  if (console_on(root, d))
    return fail(d.addr.str(), "is the boot VGA device and a console is bound to it; unbind the console first "
                              "(echo 0 > /sys/class/vtconsole/vtconN/bind for the frame buffer console), or pass "
                              "--force",
                EBUSY);
  return {};
}

}  // namespace

Status check_method(const std::string& method, const std::string& option, bool auto_ok) {
  if (std::find(kMethods.begin(), kMethods.end(), method) != kMethods.end() || (auto_ok && method == "auto"))
    return {};
  std::string list;
  for (const auto& m : kMethods) list += (list.empty() ? "" : ", ") + m;
  if (auto_ok) list += " or auto";
  return usage_error(option + " '" + method + "'", "is not a reset method; use one of " + list);
}

Result<std::vector<Job>> plan(const Context& ctx, const std::vector<DeviceSpec>& specs, const Options& options) {
  if (options.method) PT_TRY(check_method(*options.method, "--method"));
  auto all = PT_TRY(scan_near(ctx.root, specs));
  auto named = PT_TRY(target::resolve(all, specs, target::endpoints()));
  bool kernel_knows = kernel_has_reset_method(ctx.root, all);
  std::set<PciAddress> named_set;
  for (const auto& d : named) named_set.insert(d.addr);

  std::vector<Job> jobs;
  std::set<PciAddress> covered;
  for (const auto& d : named) {
    if (covered.count(d.addr)) continue;
    auto cfg = PT_TRY(load_config(ctx.root, d.addr));
    auto dm = detect(ctx.root, d, cfg, all, kernel_knows);
    PT_TRY(refuse_busy(ctx.root, d, options.force));

    std::string method;
    if (options.method) {
      method = *options.method;
    } else {
      // Where the kernel leaves a method out (a no-PM-reset or no-FLR quirk),
      // its word wins for the automatic choice.
      for (const auto& m : dm.methods)
        if (m.available && m.name != "rescan" && m.kernel.value_or(true)) {
          method = m.name;
          break;
        }
      if (method.empty())
        return fail(d.addr.str(), "has no reset method (see 'pt-reset methods " + d.addr.str() +
                                      "'); --method rescan re-enumerates it instead",
                    0);
    }
    const MethodStatus* st = dm.find(method);
    Job job;
    job.method = method;
    job.devices = {d};

    if (method == "bus" && !st->available && d.parent && !d.is_bridge()) {
      // A bus reset reaches every function on the bus: allowed as one unit
      // when each is named (or a companion of a named one) and parked.
      std::string blockers;
      for (auto* s : bus_siblings(all, d)) {
        bool implied = std::any_of(named.begin(), named.end(), [&](const Device& n) { return n.addr.same_slot(s->addr); });
        if (s->is_bridge())
          blockers += "\n  " + s->addr.str() + ": a bridge; its whole hierarchy would be reset";
        else if (!named_set.count(s->addr) && !implied)
          blockers += "\n  " + s->addr.str() + ": not named; name it too";
        else if (!parked(*s))
          blockers += "\n  " + s->addr.str() + " (" + s->driver + "): on a host driver; move it to vfio-pci first";
        job.devices.push_back(*s);
      }
      if (!parked(d)) blockers += "\n  " + d.addr.str() + " (" + d.driver + "): on a host driver; move it to vfio-pci first";
      if (!blockers.empty())
        return fail(d.addr.str(), "a bus reset would also reset other functions on bus " + bus_name(d) + ":" + blockers);
      job.whole_bus = true;
      auto br = read_device(ctx.root, *d.parent);
      if (!br) return std::unexpected(br.error());
      job.bridge = *br;
      job.via_kernel = path_exists(ctx.root.path(br->sysfs("reset_subordinate")));
    } else if (!st->available) {
      return fail(d.addr.str(), method + " reset is not available: " + st->reason + " (see 'pt-reset methods " +
                                    d.addr.str() + "')",
                  0);
    } else if (method == "rescan") {
      // Removing a disk or NIC from under its driver is not a reset anyone wants by accident.
      if (!parked(d) && !d.is_display() && !d.is_audio() && !options.force)
        return fail(d.addr.str(), "a rescan removes the device from " + d.driver +
                                      ", which is not a display or audio driver; pass --force if you mean it",
                    EBUSY);
      job.via_kernel = false;
    } else {
      job.kernel_method = method == "slot" ? "bus" : method;
      if (method == "bus" && d.parent) {
        auto br = read_device(ctx.root, *d.parent);
        if (br) job.bridge = *br;
      }
      // With reset_method the kernel can be asked for any method it supports,
      // listed now or not (an admin may have narrowed the list); it answers
      // EINVAL for one it does not support.
      bool kernel_lists = d.reset_methods.has_value();
      // Without reset_method (5.10) the reset file runs the kernel's first
      // method, which is ours when we chose the first available one.
      const MethodStatus* first = nullptr;
      for (const auto& m : dm.methods)
        if (m.available) {
          first = &m;
          break;
        }
      bool kernel_default = !kernel_knows && first && first->name == method;
      job.via_kernel = kernel_lists || kernel_default;
      if (!job.via_kernel) {
        if (method != "flr" && method != "pm" && method != "bus")
          return fail(d.addr.str(), "this kernel cannot be asked for a " + method + " reset, and pt cannot do it itself",
                      0);
        if (!parked(d))
          return fail(d.addr.str(), "this kernel cannot be asked for a " + method +
                                        " reset, and pt does one itself only on a function that no host driver "
                                        "uses; move it to vfio-pci first (pt-bind detach)",
                      EBUSY);
        if (method == "bus") job.whole_bus = true;
      }
    }
    for (const auto& x : job.devices) covered.insert(x.addr);
    jobs.push_back(std::move(job));
  }
  return jobs;
}

std::vector<std::string> describe(const Job& job, const Root& root) {
  std::vector<std::string> w;
  const Device& d = job.devices.front();
  for (const auto& x : job.devices)
    if (auto c = read_attr(root.path(x.sysfs("power/control"))); c && *c != "on")
      w.push_back("write " + x.sysfs("power/control") + " \"on\" (\"" + *c + "\" again at the end)");
  if (job.method == "rescan") {
    w.push_back("write " + d.sysfs("remove") + " \"1\"");
    w.push_back("write " + (d.parent ? "/sys/bus/pci/devices/" + d.parent->str() + "/rescan" : "/sys/bus/pci/rescan") +
                " \"1\"");
    if (!d.driver_override.empty()) w.push_back("write " + d.sysfs("driver_override") + " \"" + d.driver_override + "\"");
    w.push_back("unbind whatever driver the rescan bound, if it is not " + (d.driver.empty() ? "none" : d.driver));
    if (!d.driver.empty()) w.push_back("write /sys/bus/pci/drivers_probe \"" + d.addr.str() + "\"");
    return w;
  }
  if (job.whole_bus && job.via_kernel) {
    w.push_back("write " + job.bridge->sysfs("reset_subordinate") + " \"1\"");
    return w;
  }
  if (job.whole_bus) {
    w.push_back("config " + job.bridge->addr.str() + " bridge control: set Secondary Bus Reset, 2 ms, clear, 100 ms");
    w.push_back("restore the saved config header of " + std::to_string(job.devices.size()) + " function(s)");
    return w;
  }
  if (job.via_kernel) {
    bool has_file = path_exists(root.path(d.sysfs("reset_method")));
    if (has_file) w.push_back("write " + d.sysfs("reset_method") + " \"" + job.kernel_method + "\"");
    w.push_back("write " + d.sysfs("reset") + " \"1\"");
    if (has_file) w.push_back("write " + d.sysfs("reset_method") + " (restore the previous value)");
    return w;
  }
  if (job.method == "flr") w.push_back("config " + d.addr.str() + " PCIe DevCtl: Initiate FLR, 100 ms");
  if (job.method == "pm") w.push_back("config " + d.addr.str() + " PMCSR: D3hot, 10 ms, D0, 10 ms");
  w.push_back("restore the saved config header");
  return w;
}

namespace {

struct Saved {
  Device dev;
  ConfigSpace config;
  std::optional<bool> link_before;  // the parent port's link, where it reports one
};

std::optional<bool> parent_link(const Root& root, const Device& d) {
  if (!d.parent) return std::nullopt;
  auto port = load_config(root, *d.parent);
  return port ? port->link_active() : std::nullopt;
}

Status write32(SysfsWriter& w, const std::string& dev, uint16_t off, uint32_t v) {
  if (auto r = w.write_config(dev, off, uint16_t(v & 0xffff)); !r) return r;
  return w.write_config(dev, uint16_t(off + 2), uint16_t(v >> 16));
}

// What the kernel's pci_restore_state puts back that a raw reset clears.
Status restore_header(SysfsWriter& w, const Saved& s) {
  const std::string dev = s.dev.addr.str();
  const auto& c = s.config;
  for (uint16_t off = reg::kBar0; off <= 0x24; off += 4)
    if (auto r = write32(w, dev, off, c.u32(off)); !r) return r;
  if (auto r = write32(w, dev, 0x30, c.u32(0x30)); !r) return r;
  if (auto r = w.write_config(dev, 0x0c, c.u16(0x0c)); !r) return r;
  if (auto r = w.write_config(dev, 0x3c, c.u16(0x3c)); !r) return r;
  if (auto exp = c.find(reg::kCapExp)) {
    for (uint16_t off : {reg::kExpDevCtl, reg::kExpLnkCtl, reg::kExpDevCtl2})
      if (auto r = w.write_config(dev, uint16_t(*exp + off), c.u16(*exp + off)); !r) return r;
  }
  return w.write_config(dev, reg::kCommand, c.command());
}

// Polls the vendor ID with a growing interval: all-ones while the function
// is gone, 0x0001 while it answers with Configuration Request Retry Status.
Status wait_ready(Context& ctx, const Device& d) {
  bool ok = wait_until(
      [&] {
        auto c = load_config(ctx.root, d.addr, 64);
        return c && c->present() && c->vendor() != 0x0001;
      },
      ctx.timeout, ctx.on_wait, d.addr.str() + " to answer config reads after the reset",
      d.addr.str());
  if (!ok)
    return fail(d.addr.str(), "did not answer config reads within the timeout after the reset", ETIMEDOUT,
                Exit::not_rolled_back);
  return {};
}

Status verify(Context& ctx, const Saved& s, bool bars) {
  const Device& d = s.dev;
  auto now = PT_TRY(load_config(ctx.root, d.addr));
  auto mismatch = [&](const std::string& reg_name, uint32_t got, uint32_t want, int width) {
    return fail(d.addr.str(), "after the reset " + reg_name + " reads " + hex16(got, width) + ", expected " +
                                  hex16(want, width),
                EIO, Exit::not_rolled_back);
  };
  if (now.vendor() != s.config.vendor() || now.device() != s.config.device())
    return mismatch("the vendor:device ID", uint32_t(now.vendor()) << 16 | now.device(),
                    uint32_t(s.config.vendor()) << 16 | s.config.device(), 8);
  if (bars) {
    for (uint16_t off = reg::kBar0; off <= 0x24; off += 4)
      if (now.u32(off) != s.config.u32(off))
        return mismatch("BAR" + std::to_string((off - reg::kBar0) / 4), now.u32(off), s.config.u32(off), 8);
    if ((now.command() & 0x0547) != (s.config.command() & 0x0547))
      return mismatch("the command register", now.command(), s.config.command(), 4);
  }
  // D3hot under runtime PM or vfio-pci's idle D3 is a healthy idle function.
  auto current = read_device(ctx.root, d.addr);
  if (auto st = now.power_state(); st && *st != 0 && !(current && idled(ctx.root, *current)))
    return fail(d.addr.str(), "after the reset the function is in D" + std::to_string(*st) + ", not D0", EIO,
                Exit::not_rolled_back);
  // Only a link that was up before is expected up after: emulated and some
  // real ports report DLLLA capability without ever setting it.
  if (s.link_before.value_or(false) && !parent_link(ctx.root, d).value_or(true))
    return fail(d.addr.str(), "after the reset the link of " + d.parent->str() + " is down", EIO,
                Exit::not_rolled_back);
  return {};
}

// Sizes recorded before the reset that it changed are put back: through
// resourceN_resize while no driver holds the function (the kernel then
// places the BAR again), otherwise by programming the capability's control
// register as the kernel's pci_restore_rebar_state does, followed by the
// saved header. Each is read back.
Result<std::vector<RebarRestore>> restore_rebar(Context& ctx, const Saved& s) {
  std::vector<RebarRestore> out;
  const auto before = rebar::decode(s.config);
  if (before.empty()) return out;
  const Device& d = s.dev;
  auto now = PT_TRY(rebar::read(ctx.root, d.addr));
  bool header = false;
  for (const auto& b : before) {
    const auto* n = rebar::find(now, b.index);
    if (!n || n->current == b.current) continue;
    RebarRestore r{d.addr.str(), b.index, b.current, n->current, ""};
    auto current = read_device(ctx.root, d.addr);
    const std::string file = rebar::resize_path(d.addr, b.index);
    if (current && current->driver.empty() && path_exists(ctx.root, file)) {
      r.via = "resize";
      PT_TRY(ctx.writer->write(file, std::to_string(b.current), WriteKind::blocking));
    } else {
      r.via = "config";
      auto cfg = PT_TRY(load_config(ctx.root, d.addr, 4096));
      PT_TRY(ctx.writer->write_config(d.addr.str(), n->control,
                                      uint16_t((cfg.u16(n->control) & ~0x3f00) | b.current << 8)));
      header = true;
    }
    out.push_back(r);
  }
  if (header) PT_TRY(restore_header(*ctx.writer, s));
  if (out.empty()) return out;
  now = PT_TRY(rebar::read(ctx.root, d.addr));
  for (const auto& r : out) {
    const auto* n = rebar::find(now, r.bar);
    if (!n || n->current != r.before)
      return fail(d.addr.str(),
                  "BAR " + std::to_string(r.bar) + " came back " + rebar::size_name(r.after_reset) +
                      " after the reset and putting back " + rebar::size_name(r.before) +
                      " did not hold; unbind the function (pt-bind detach) and write " +
                      std::to_string(r.before) + " to " + rebar::resize_path(d.addr, r.bar),
                  EIO, Exit::not_rolled_back);
  }
  return out;
}

Status kernel_reset(Context& ctx, const Job& job) {
  const Device& d = job.devices.front();
  const std::string method_file = d.sysfs("reset_method");
  auto previous = read_attr(ctx.root.path(method_file));
  if (previous) {
    if (auto r = ctx.writer->write(method_file, job.kernel_method, WriteKind::attribute); !r) return r;
  }
  auto r = ctx.writer->write(d.sysfs("reset"), "1", WriteKind::blocking);
  // The previous selection comes back whatever happened; a reset still in
  // the kernel would block this write too, so not after a timeout.
  if (previous && (r || r.error().exit != Exit::timeout)) {
    auto back = ctx.writer->write(method_file, previous->empty() ? "default" : *previous, WriteKind::attribute);
    // The kernel re-validates the list: a method it offered at boot (bus,
    // before the audio function appeared) is refused now. Its default list
    // is then the nearest thing to what was there.
    if (!back && back.error().err == EINVAL) back = ctx.writer->write(method_file, "default", WriteKind::attribute);
    if (r && !back) {
      Error e = back.error();
      e.exit = Exit::not_rolled_back;
      e.message += "; the reset itself succeeded, but reset_method could not be put back to \"" + *previous + "\"";
      return std::unexpected(e);
    }
  }
  return r;
}

Status pt_reset(Context& ctx, const Job& job, const std::vector<Saved>& saved) {
  const Device& d = job.devices.front();
  const std::string bdf = d.addr.str();
  if (job.whole_bus) {
    if (job.via_kernel) return ctx.writer->write(job.bridge->sysfs("reset_subordinate"), "1", WriteKind::blocking);
    auto br = PT_TRY(load_config(ctx.root, job.bridge->addr, 64));
    uint16_t ctl = br.u16(reg::kBridgeControl);
    const std::string b = job.bridge->addr.str();
    if (auto r = ctx.writer->write_config(b, reg::kBridgeControl, ctl | reg::kBridgeCtlBusReset); !r) return r;
    std::this_thread::sleep_for(2ms);  // Trst: hold for at least 1 ms
    if (auto r = ctx.writer->write_config(b, reg::kBridgeControl, ctl & ~reg::kBridgeCtlBusReset); !r) {
      Error e = r.error();
      e.exit = Exit::not_rolled_back;
      e.message += "; the bus below " + b + " may still be held in reset";
      return std::unexpected(e);
    }
    std::this_thread::sleep_for(100ms);  // the spec's minimum before config requests
    return {};
  }
  const ConfigSpace& c = saved.front().config;
  // FLR and PM write into a capability: without one that was read, the
  // offset would come from missing bytes.
  if (job.method == "flr" || job.method == "pm")
    if (auto why = c.caps_unreadable())
      return fail(bdf, "cannot perform a " + job.method + " reset itself: " + *why, EIO);
  if (job.method == "flr") {
    auto exp = c.find(reg::kCapExp);
    if (!exp) return fail(bdf, "has no PCIe capability for an FLR", 0);
    uint16_t off = uint16_t(*exp + reg::kExpDevCtl);
    if (auto r = ctx.writer->write_config(bdf, off, c.u16(off) | reg::kExpDevCtlFlr); !r) return r;
    std::this_thread::sleep_for(100ms);
    return {};
  }
  if (job.method == "pm") {
    auto pm = c.find(reg::kCapPm);
    if (!pm) return fail(bdf, "has no PM capability", 0);
    uint16_t off = uint16_t(*pm + reg::kPmCtrl);
    uint16_t csr = c.u16(off) & ~uint16_t(3);
    if (auto r = ctx.writer->write_config(bdf, off, csr | 3); !r) return r;
    std::this_thread::sleep_for(10ms);  // D3hot -> D0 transition time
    if (auto r = ctx.writer->write_config(bdf, off, csr); !r) {
      Error e = r.error();
      e.exit = Exit::not_rolled_back;
      e.message += "; " + bdf + " may be left in D3hot";
      return std::unexpected(e);
    }
    std::this_thread::sleep_for(10ms);
    return {};
  }
  return fail(bdf, "pt cannot perform a " + job.method + " reset itself", 0);
}

// The PCI core binds a rescanned device at once (pci_bus_add_device calls
// device_attach, whatever drivers_autoprobe says), so the function may land
// on its host driver first; pt then puts back the override and the driver.
Status rescan(Context& ctx, const Job& job) {
  const Device& d = job.devices.front();
  Status result = ctx.writer->write(d.sysfs("remove"), "1", WriteKind::blocking);
  if (result) {
    const std::string scan = d.parent ? "/sys/bus/pci/devices/" + d.parent->str() + "/rescan" : "/sys/bus/pci/rescan";
    result = ctx.writer->write(scan, "1", WriteKind::blocking);
  }
  if (result &&
      !wait_until([&] { return path_exists(ctx.root.path(d.sysfs("vendor"))); }, ctx.timeout,
                  ctx.on_wait, d.addr.str() + " to come back after the rescan", d.addr.str()))
    result = fail(d.addr.str(), "did not come back after the rescan", ENODEV, Exit::not_rolled_back);
  if (result && !d.driver_override.empty())
    result = ctx.writer->write(d.sysfs("driver_override"), d.driver_override, WriteKind::attribute);
  auto bound = [&] { return link_basename(ctx.root.path(d.sysfs("driver"))).value_or(""); };
  if (result && bound() != d.driver) {
    if (!bound().empty())
      result = ctx.writer->write("/sys/bus/pci/drivers/" + bound() + "/unbind", d.addr.str(), WriteKind::blocking);
    if (result && !d.driver.empty())
      result = ctx.writer->write("/sys/bus/pci/drivers_probe", d.addr.str(), WriteKind::blocking);
  }
  if (result && !wait_until([&] { return bound() == d.driver; }, ctx.timeout, ctx.on_wait,
                            binding_wait(d.addr.str(), d.driver), d.addr.str()))
    result = fail(d.addr.str(), "came back from the rescan on " + (bound().empty() ? std::string("no driver") : bound()) +
                                    ", not " + (d.driver.empty() ? std::string("unbound") : d.driver),
                  ENODEV, Exit::not_rolled_back);
  if (!result && result.error().exit == Exit::failed) result.error().exit = Exit::not_rolled_back;
  return result;
}

// Keeps every function of a job in D0 for the duration: vfio-pci lets idle
// functions runtime-suspend to D3hot, where config space shows D3 and a PM
// reset cannot start. power/control goes back to its value at the end.
class Awake {
 public:
  Awake(Context& ctx, const std::vector<Device>& devices) : ctx_(ctx) {
    for (const auto& d : devices) {
      const std::string control = d.sysfs("power/control");
      auto was = read_attr(ctx.root.path(control));
      if (!was || *was == "on") continue;
      if (ctx.writer->write(control, "on", WriteKind::blocking)) restore_.emplace_back(control, *was);
    }
  }
  ~Awake() {
    for (const auto& [control, was] : restore_) (void)ctx_.writer->write(control, was, WriteKind::attribute);
  }

 private:
  Context& ctx_;
  std::vector<std::pair<std::string, std::string>> restore_;
};

Result<Outcome> perform_one(Context& ctx, const Job& job) {
  Awake awake(ctx, job.devices);
  Outcome out;
  out.method = job.method;
  out.via = job.via_kernel ? "kernel" : "pt";
  for (const auto& d : job.devices) out.devices.push_back(d.addr.str());
  auto start = Clock::now();

  auto t = Clock::now();
  std::vector<Saved> saved;
  for (const auto& d : job.devices) {
    auto c = PT_TRY(load_config(ctx.root, d.addr, 4096));
    saved.push_back(Saved{d, c, parent_link(ctx.root, d)});
  }
  out.phases.prepare = ms_since(t);

  t = Clock::now();
  Status r;
  if (job.method == "rescan")
    r = rescan(ctx, job);
  else if (job.via_kernel && !job.whole_bus)
    r = kernel_reset(ctx, job);
  else
    r = pt_reset(ctx, job, saved);
  out.phases.reset = ms_since(t);
  if (!r) return std::unexpected(r.error());

  t = Clock::now();
  for (const auto& s : saved) {
    PT_TRY(wait_ready(ctx, s.dev));
    // A link retrains after a bus reset; give it time before verify judges it.
    if (s.link_before.value_or(false))
      wait_until([&] { return parent_link(ctx.root, s.dev).value_or(true); }, ctx.timeout,
                 ctx.on_wait, s.dev.addr.str() + "'s link to train", s.dev.addr.str());
  }
  out.phases.wait_ready = ms_since(t);

  t = Clock::now();
  bool ours = !job.via_kernel && job.method != "rescan";
  if (ours)
    for (const auto& s : saved)
      if (auto w = restore_header(*ctx.writer, s); !w) {
        Error e = w.error();
        e.exit = Exit::not_rolled_back;
        e.message += " while restoring the config header after the reset";
        return std::unexpected(e);
      }
  for (auto& s : saved) {
    auto r = restore_rebar(ctx, s);
    if (!r) {
      Error e = r.error();
      if (e.exit != Exit::timeout) e.exit = Exit::not_rolled_back;
      return std::unexpected(e);
    }
    out.rebar.insert(out.rebar.end(), r->begin(), r->end());
    // A resize places the BAR again: where the kernel put it is the truth now.
    if (std::any_of(r->begin(), r->end(), [](const RebarRestore& x) { return x.via == "resize"; }))
      s.config = PT_TRY(load_config(ctx.root, s.dev.addr, 4096));
  }
  out.phases.restore = ms_since(t);

  t = Clock::now();
  for (const auto& s : saved)
    PT_TRY(verify(ctx, s, job.method != "rescan"));
  out.phases.verify = ms_since(t);
  out.total_ms = ms_since(start);
  return out;
}

}  // namespace

Result<std::vector<Outcome>> perform(Context& ctx, const std::vector<Job>& jobs) {
  std::vector<std::optional<Result<Outcome>>> results(jobs.size());
  if (jobs.size() == 1) {
    results[0] = perform_one(ctx, jobs[0]);
  } else {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < jobs.size(); ++i)
      threads.emplace_back([&, i] { results[i] = perform_one(ctx, jobs[i]); });
    for (auto& th : threads) th.join();
  }
  // For pt metrics (metrics.hpp); best effort, as the counts are not the reset.
  std::vector<std::pair<std::string, std::string>> counted;
  for (size_t i = 0; i < jobs.size(); ++i)
    counted.emplace_back(jobs[i].method, *results[i] ? "ok" : "failed");
  if (!ctx.dry_run) (void)metrics::record_resets(ctx.root, counted);
  std::vector<Outcome> out;
  std::optional<Error> first;
  std::string done;
  for (auto& r : results) {
    if (!*r) {
      if (!first) first = r->error();
      continue;
    }
    for (const auto& d : (*r)->devices) done += (done.empty() ? "" : ", ") + d;
    out.push_back(**r);
  }
  if (first) {
    if (!done.empty()) {
      first->message += "; these were reset and verified: " + done;
      first->exit = Exit::not_rolled_back;
    }
    return std::unexpected(*first);
  }
  return out;
}

}  // namespace pt::reset
