#include "pt/bind.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <set>

#include "pt/holders.hpp"
#include "pt/lock.hpp"
#include "pt/power.hpp"
#include "pt/rebar.hpp"
#include "pt/render.hpp"
#include "pt/spawn.hpp"
#include "pt/sysfs.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"
#include "pt/vgaarb.hpp"

namespace pt::bind {

namespace {

int64_t now_seconds(const Context& ctx) { return ctx.now ? ctx.now() : int64_t(std::time(nullptr)); }

const Device* find(const std::vector<Device>& all, const PciAddress& a) {
  for (const auto& d : all)
    if (d.addr == a) return &d;
  return nullptr;
}

bool has_iommu(const Root& root) { return !list_dir(root.path("/sys/kernel/iommu_groups")).empty(); }

// Attach order: display functions first (HDMI audio and USB-C companions
// depend on the GPU), then by address. Detach runs in the reverse order.
int default_attach_order(const Device& d) { return d.is_display() ? 0 : 1 + d.addr.func; }

std::string driver_or_none(const std::string& d) { return d.empty() ? "no driver" : d; }

// Members of the IOMMU groups of NAMED that come along: the other functions
// of a named GPU's slot (its HDMI audio, USB-C) and members no host driver
// uses. A function bound to a host driver that the user did not name is a
// blocker (--force-group takes it too): on a chipset slot such as 00:1f the
// SMBus shares its group with the SATA controller of the root disk. A bridge
// (any 06xx class) never moves; one without a secondary bus that a host
// driver holds (an LPC bridge on lpc_ich) leaves the group unusable for vfio.
struct GroupExpansion {
  std::vector<Device> extra;
  std::vector<std::string> blockers;
  std::vector<std::string> held_bridges;
};

bool gpu_slot(const std::vector<Device>& all, const PciAddress& a) {
  return std::any_of(all.begin(), all.end(),
                     [&](const Device& d) { return d.addr.same_slot(a) && d.is_display(); });
}

GroupExpansion expand_groups(const Root& root, const std::vector<Device>& all, const std::vector<Device>& named,
                             const std::string& to, bool force_group) {
  GroupExpansion out;
  std::set<PciAddress> seen;
  for (const auto& d : named) seen.insert(d.addr);
  for (const auto& d : named) {
    if (!d.iommu_group) continue;
    for (const auto& m : group_members(root, *d.iommu_group)) {
      if (seen.count(m)) continue;
      const Device* md = find(all, m);
      if (!md) continue;
      seen.insert(m);
      bool host_driver = !md->driver.empty() && md->driver != to && !is_parking_driver(md->driver);
      if (md->is_bridge()) {
        if (host_driver && !md->has_secondary_bus())
          out.held_bridges.push_back(m.str() + " (" + md->driver + ", class " +
                                     render::class_hex(md->class_id()) + ")");
        continue;
      }
      bool companion =
          gpu_slot(all, m) && std::any_of(named.begin(), named.end(),
                                          [&](const Device& n) { return n.addr.same_slot(m); });
      if (!companion && host_driver && !force_group) {
        out.blockers.push_back(m.str() + " (" + md->driver + ")");
        continue;
      }
      out.extra.push_back(*md);
    }
  }
  return out;
}

bool unbinds(const Move& m) {
  return !m.already && std::any_of(m.writes.begin(), m.writes.end(),
                                   [](const Write& w) { return w.path.ends_with("/unbind"); });
}

// The kernel does not refuse an unbind under a mounted filesystem, a swap
// area or an up link: it tears the disk or interface down, so the refusal
// has to come from here.
Status check_kernel_users(const Root& root, const std::vector<Move>& moves) {
  std::string msg, subject;
  bool mounts = false, swaps = false, stacked = false;
  std::vector<std::string> links;
  for (const auto& m : moves) {
    if (!unbinds(m)) continue;
    auto users = find_kernel_users(root, m.before);
    if (users.empty()) continue;
    const std::string bdf = m.before.addr.str();
    if (subject.empty()) subject = bdf;
    std::string items;
    for (const auto& u : users) {
      items += (items.empty() ? "" : ", ") + describe(u);
      mounts |= u.kind == KernelUser::Kind::mount;
      swaps |= u.kind == KernelUser::Kind::swap;
      stacked |= u.kind == KernelUser::Kind::stacked;
      if (u.kind == KernelUser::Kind::net) links.push_back(u.device);
    }
    msg += (msg.empty() ? "" : "; ") + (bdf == subject ? "" : bdf + " ") + items;
  }
  if (msg.empty()) return {};
  std::string what =
      std::string(mounts ? "unmount it, " : "") + (swaps ? "swapoff it, " : "") +
      (stacked ? "stop what is stacked on it (vgchange -an, mdadm --stop, cryptsetup close), "
               : "");
  if (!links.empty()) {
    what += "take the interface down (";
    for (size_t i = 0; i < links.size(); ++i)
      what += (i ? "; " : "") + std::string("ip link set ") + links[i] + " down";
    what += "), ";
  }
  return fail(subject, msg + "; " + what + "or pass --force to unbind anyway", EBUSY);
}

Status check_holders(const Root& root, const std::vector<Move>& moves, bool force) {
  if (force) return {};
  if (auto r = check_kernel_users(root, moves); !r) return r;
  std::string msg, subject;
  for (const auto& m : moves) {
    if (!unbinds(m)) continue;
    auto holders = find_holders(root, m.before);
    if (holders.empty()) continue;
    if (!msg.empty()) msg += "; ";
    if (subject.empty()) subject = m.before.addr.str();
    msg += m.before.addr.str() + ": " + describe(holders);
  }
  if (msg.empty()) return {};
  return fail(subject, "refusing to unbind a device that processes hold open, because the unbind would block "
                         "inside the driver: " + msg + ". Stop them, or pass --force to unbind anyway",
              EBUSY);
}

struct Scope {
  std::vector<Device> all;    // every device, for group and slot look-ups
  std::vector<Device> named;  // what the specs name
};

Result<Scope> scan_and_resolve(const Context& ctx, const std::vector<DeviceSpec>& specs) {
  auto all = PT_TRY(scan_devices(ctx.root, ScanOptions{.names = false}));
  auto named = PT_TRY(target::resolve(all, specs, target::endpoints()));
  return Scope{std::move(all), std::move(named)};
}

// Whether an existing journal entry still describes how DEV left its host
// driver: DEV sits where pt put it, or somewhere on the way there.
bool entry_current(const JournalEntry& e, const Device& d) {
  return d.driver == e.to || d.driver.empty() || d.driver_override == e.to;
}

// The resizes of SIZES (BAR -> size) go where the function has no driver:
// after its unbind, before the probe or bind that gives it the next one.
void add_resizes(std::vector<Write>& w, const Device& d, const std::map<int, int>& sizes) {
  auto at = w.end();
  if (!w.empty() && (w.back().path == "/sys/bus/pci/drivers_probe" || w.back().path.ends_with("/bind")))
    at = w.end() - 1;
  std::vector<Write> resizes;
  for (const auto& [bar, size] : sizes)
    resizes.push_back({rebar::resize_path(d.addr, bar), std::to_string(size), WriteKind::blocking});
  w.insert(at, resizes.begin(), resizes.end());
}

// Each BAR of SIZES has its size, read back from the capability.
Status verify_rebar(const Context& ctx, const Device& d, const std::map<int, int>& sizes) {
  if (sizes.empty()) return {};
  auto bars = PT_TRY(rebar::read(ctx.root, d.addr));
  for (const auto& [bar, size] : sizes) {
    const auto* b = rebar::find(bars, bar);
    if (!b || b->current != size)
      return fail(rebar::resize_path(d.addr, bar),
                  "BAR " + std::to_string(bar) + " should be " + rebar::size_name(size) + " after the resize, but is " +
                      (b ? rebar::size_name(b->current) : std::string("gone from the capability")) +
                      " (see dmesg: the bridge window may be too small)",
                  EIO);
  }
  return {};
}

Status verify(const Context& ctx, const Move& m) {
  const std::string link = ctx.root.path(m.before.sysfs("driver"));
  const std::string expect = m.probe ? m.to_driver : "";
  auto bound = [&] { return link_basename(link).value_or(""); };
  bool ok;
  if (m.probe && m.to_driver.empty())
    ok = true;  // the kernel chose; any outcome is the kernel's answer
  else
    ok = wait_until([&] { return bound() == expect; }, ctx.timeout, ctx.on_wait,
                    binding_wait(m.before.addr.str(), expect), m.before.addr.str());
  if (!ok) {
    std::string got = bound();
    return fail(m.before.sysfs("driver"),
                "expected " + driver_or_none(expect) + " after the writes, found " + driver_or_none(got) +
                    (m.probe && got.empty() ? " (the driver refused the device; see dmesg)" : ""),
                ENODEV);
  }
  if (expect == "vfio-pci" && m.before.iommu_group) {
    const std::string node = "/dev/vfio/" + std::to_string(*m.before.iommu_group);
    if (!wait_until([&] { return path_exists(ctx.root.path(node)); }, ctx.timeout, ctx.on_wait,
                    node + " to appear", node))
      return fail(node, "vfio-pci is bound but the group node did not appear; is devtmpfs mounted on /dev?",
                  ENOENT);
  }
  return {};
}

Status perform(Context& ctx, const Move& m, bool& touched) {
  for (const auto& w : m.writes) {
    if (auto r = ctx.writer->write(w.path, w.value, w.kind); !r) return r;
    touched = true;
  }
  PT_TRY(verify_rebar(ctx, m.before, m.rebar));
  PT_TRY(verify(ctx, m));
  // After the bind: vfio-pci allows runtime PM when it binds and forbids it
  // when it lets go, so a setting written earlier would not survive.
  for (const auto& w : m.power) {
    touched = true;
    PT_TRY(power::write_checked(ctx, w.path, w.value, w.kind));
  }
  return {};
}

// pt.conf's power policy for the function M takes off its host driver: the
// writes, and the values they replace into M's journal record for attach.
// A function pt did not detach has no record to restore from: the policy is
// left out, with a note.
Status plan_power(const Context& ctx, const Conf* conf, const Journal& journal, Move& m,
                  std::vector<std::string>& notes) {
  if (!conf) return {};
  auto policy = PT_TRY(power::policy_for(*conf, m.before));
  if (!policy) return {};
  const std::string bdf = m.before.addr.str();
  const auto settings = power::settings(*policy);
  const JournalEntry* recorded = nullptr;
  if (m.record) {
    recorded = &*m.record;
  } else if (auto it = journal.devices.find(bdf); it != journal.devices.end()) {
    recorded = &it->second;
    for (const auto& s : settings)
      if (!recorded->power.count(s.attr)) recorded = nullptr;
  }
  if (!recorded) {
    notes.push_back(bdf + ": pt.conf's " + power::describe(*policy) +
                    " is not applied: pt did not take it off a host driver with that policy, so "
                    "attach would have nothing to restore; attach it, then detach it again");
    return {};
  }
  for (const auto& s : settings) {
    const auto now = PT_TRY(power::current(ctx.root, m.before, s.attr));
    if (m.record) m.record->power[s.attr] = now;
    const auto kind = power::write_kind(s.attr);
    m.power.push_back({m.before.sysfs(s.attr), s.value, kind});
    m.power_undo.push_back({m.before.sysfs(s.attr), now, kind});
  }
  m.already = false;
  return {};
}

// Attach writes back what the journal says the policy replaced, after the
// host driver bound (vfio-pci's release forbids runtime PM on the way out).
void plan_power_restore(const Context& ctx, const JournalEntry& e, Move& m) {
  for (const auto& [attr, old] : e.power) {
    const std::string path = m.before.sysfs(attr);
    const auto kind = power::write_kind(attr);
    m.power.push_back({path, old, kind});
    if (auto now = read_attr(ctx.root, path)) m.power_undo.push_back({path, *now, kind});
  }
}

std::string power_note(const std::string& op, const Move& m) {
  std::string set;
  for (const auto& w : m.power)
    set += (set.empty() ? "" : ", ") + w.path.substr(m.before.sysfs().size() + 1) + " = " + w.value;
  return m.before.addr.str() + ": " + set +
         (op == "detach" ? " (pt.conf power policy, read back)" : " (restored, read back)");
}

// Takes DEV back to BEFORE's driver and override, from whatever sysfs says now.
// REBAR: the Resizable BAR sizes BEFORE had, put back while it is unbound.
Status restore(Context& ctx, const Device& before, const std::map<int, int>& rebar = {}) {
  auto now = PT_TRY(read_device(ctx.root, before.addr));
  Move back;
  back.before = now;
  back.to_driver = before.driver;
  back.to_override = before.driver_override;
  back.probe = !before.driver.empty();
  back.writes = writes_for(now, back.to_driver, back.to_override, back.probe);
  back.rebar = rebar;
  add_resizes(back.writes, now, rebar);
  bool touched = false;
  auto r = perform(ctx, back, touched);
  if (r || before.driver.empty() || r.error().exit == Exit::timeout) return r;
  // drivers_probe can fail where a direct bind works (a probe path that
  // errors, another driver matching first); that is what an admin tries next.
  auto again = read_device(ctx.root, before.addr);
  if (!again || again->driver == before.driver) return again ? Status{} : r;
  if (!again->driver.empty()) return r;
  back.before = *again;
  back.writes = {{"/sys/bus/pci/drivers/" + before.driver + "/bind", before.addr.str(), WriteKind::blocking}};
  if (again->driver_override != before.driver_override)
    back.writes.insert(back.writes.begin(), {before.sysfs("driver_override"),
                                             before.driver_override.empty() ? "\n" : before.driver_override,
                                             WriteKind::attribute});
  if (auto b = perform(ctx, back, touched); b) return b;
  return r;
}

// A changed function back to its driver, then its runtime PM settings back
// (the driver's bind and release change them).
Status restore_move(Context& ctx, const Move& m) {
  PT_TRY(restore(ctx, m.before, m.rebar_before));
  for (const auto& w : m.power_undo) PT_TRY(power::write_checked(ctx, w.path, w.value, w.kind));
  return {};
}

Plan finish_plan(Plan plan) {
  std::set<std::string> seen;
  for (const auto& [drv, mod] : plan.driver_modules)
    if (seen.insert(drv).second) plan.drivers.push_back(drv);
  return plan;
}

}  // namespace

Status check_driver_name(const std::string& name, const std::string& option) {
  std::string why;
  if (name.empty())
    why = "is empty";
  else if (name == "." || name == "..")
    why = "is a directory name, not a driver";
  else if (name.size() > 64)
    why = "is longer than 64 bytes";
  else if (std::any_of(name.begin(), name.end(),
                       [](unsigned char c) { return c <= ' ' || c == 0x7f || c == '/'; }))
    why = "holds a slash, a blank or a control character";
  if (why.empty()) return {};
  return usage_error(
      option + " " + render::quote(name),
      why + "; name a PCI driver as 'ls /sys/bus/pci/drivers' lists it, such as vfio-pci");
}

std::vector<Write> writes_for(const Device& before, const std::string& to_driver, const std::string& to_override,
                              bool probe) {
  std::vector<Write> w;
  const std::string bdf = before.addr.str();
  if (before.driver_override != to_override)
    w.push_back({before.sysfs("driver_override"), to_override.empty() ? "\n" : to_override, WriteKind::attribute});
  bool moving = probe ? (to_driver.empty() ? !before.driver_override.empty() || is_parking_driver(before.driver)
                                           : before.driver != to_driver)
                      : !before.driver.empty();
  if (!moving) return w;
  if (!before.driver.empty())
    w.push_back({"/sys/bus/pci/drivers/" + before.driver + "/unbind", bdf, WriteKind::blocking});
  if (probe) w.push_back({"/sys/bus/pci/drivers_probe", bdf, WriteKind::blocking});
  return w;
}

namespace {

// The resizes of REQUESTS that D's Resizable BAR capability covers, added to
// its move: written while it is unbound, the original sizes journaled.
Status plan_resizes(const Context& ctx, const Device& d, const std::vector<rebar::Request>& requests,
                    Move& m, std::set<int>& applied) {
  if (requests.empty()) return {};
  auto bars = rebar::read(ctx.root, d.addr);
  // Unreadable: the BAR counts as not covered here, and when no function
  // covers it the named one's check says why.
  if (!bars) return {};
  std::map<int, int> sizes, before;
  for (const auto& r : requests) {
    const auto* b = rebar::find(*bars, r.bar);
    if (!b) continue;
    PT_TRY(rebar::check(ctx.root, d.addr, *bars, r));
    applied.insert(r.bar);
    if (b->current == r.size) continue;
    sizes[r.bar] = r.size;
    before[r.bar] = b->current;
  }
  if (sizes.empty()) return {};
  if (m.already || !m.record)
    return usage_error(d.addr.str(), "is already detached; resize its BARs only as pt-bind detach moves it: "
                                     "run pt-bind attach first");
  m.rebar = sizes;
  m.rebar_before = before;
  m.record->rebar = before;
  add_resizes(m.writes, d, sizes);
  return {};
}

}  // namespace

Result<Plan> plan_detach(const Context& ctx, const std::vector<DeviceSpec>& specs, const DetachOptions& options,
                         const Journal& journal) {
  PT_TRY(check_driver_name(options.to, "--to"));
  auto scope = PT_TRY(scan_and_resolve(ctx, specs));
  const auto& all = scope.all;
  const std::vector<Device>* named = &scope.named;
  if (!ctx.modules->knows(options.to))
    return fail(options.to, "no PCI driver and no kernel module of that name; check the name with 'ls "
                            "/sys/bus/pci/drivers' or 'modinfo " + options.to + "'",
                ENOENT);

  if (options.to == "vfio-pci") {
    if (!has_iommu(ctx.root))
      return fail("/sys/kernel/iommu_groups",
                  "no IOMMU groups: vfio-pci needs an IOMMU. Enable VT-d or AMD-Vi in the firmware and add "
                  "intel_iommu=on (Intel) or amd_iommu=on (AMD) to the kernel command line, then reboot",
                  ENODEV);
    for (const auto& d : *named)
      if (!d.iommu_group)
        return fail(d.addr.str(), "has no IOMMU group, so vfio-pci cannot take it", ENODEV);
  }

  auto expansion = expand_groups(ctx.root, all, *named, options.to, options.force_group);
  auto listed = [](const std::vector<std::string>& items) {
    std::string list;
    for (const auto& b : items) list += (list.empty() ? "" : ", ") + b;
    return list;
  };
  if (options.to == "vfio-pci" && !expansion.held_bridges.empty())
    return fail(
        named->front().addr.str(),
        "its IOMMU group also holds " + listed(expansion.held_bridges) +
            ", a bridge that pt never unbinds" +
            (expansion.blockers.empty()
                 ? ""
                 : ", and " + listed(expansion.blockers) +
                       ", which you did not name and which is bound to a host driver") +
            "; vfio-pci cannot use a group whose members are bound to host drivers. Pass through a "
            "device that has an IOMMU group of its own",
        EBUSY);
  if (!expansion.blockers.empty())
    return fail(named->front().addr.str(),
                "its IOMMU group also holds " + listed(expansion.blockers) +
                    ", which you did not name and which is bound to a host driver; vfio needs the "
                    "whole group. "
                    "Name it too, or pass --force-group to move it as well",
                EBUSY);
  std::vector<Device> functions = *named;
  functions.insert(functions.end(), expansion.extra.begin(), expansion.extra.end());
  std::sort(functions.begin(), functions.end(), [](const Device& a, const Device& b) {
    return std::make_pair(default_attach_order(a), a.addr) > std::make_pair(default_attach_order(b), b.addr);
  });

  std::vector<rebar::Request> resizes;
  for (const auto& text : options.rebar) resizes.push_back(PT_TRY(rebar::parse_request(text, "--rebar")));

  Plan plan;
  plan.op = "detach";
  if (!driver_registered(ctx.root, options.to)) plan.driver_modules.emplace_back(options.to, "");
  std::set<int> applied;
  for (const auto& d : functions) {
    Move m;
    m.before = d;
    m.to_driver = options.to;
    m.to_override = options.to;
    m.writes = writes_for(d, m.to_driver, m.to_override, true);
    if (d.driver == options.to) {
      m.note = "already on " + options.to + (m.writes.empty() ? "" : "; setting driver_override so it stays");
      m.already = m.writes.empty();
    }
    auto it = journal.devices.find(d.addr.str());
    if (it == journal.devices.end() || !entry_current(it->second, d)) {
      if (d.driver != options.to) {
        JournalEntry e;
        e.driver = d.driver;
        e.module = module_of_driver(ctx.root, d.driver);
        e.driver_override = d.driver_override;
        e.to = options.to;
        e.attach_order = default_attach_order(d);
        e.time = now_seconds(ctx);
        m.record = e;
      }
    }
    PT_TRY(plan_power(ctx, options.conf, journal, m, plan.notes));
    PT_TRY(plan_resizes(ctx, d, resizes, m, applied));
    plan.moves.push_back(std::move(m));
  }
  for (const auto& r : resizes)
    if (!applied.count(r.bar)) {
      // No function moved here has the BAR: the first named says why.
      const Device& d = named->front();
      PT_TRY(rebar::check(ctx.root, d.addr, PT_TRY(rebar::read(ctx.root, d.addr)), r));
    }
  PT_TRY(check_holders(ctx.root, plan.moves, options.force));
  return finish_plan(std::move(plan));
}

Result<Plan> plan_attach(const Context& ctx, const std::vector<DeviceSpec>& specs, const AttachOptions& options,
                         const Journal& journal) {
  auto scope = PT_TRY(scan_and_resolve(ctx, specs));
  const auto& all = scope.all;
  const std::vector<Device>* named = &scope.named;

  // Companions detached with the named functions come back with them.
  std::vector<Device> functions = *named;
  std::set<PciAddress> seen;
  for (const auto& d : functions) seen.insert(d.addr);
  for (const auto& d : *named) {
    if (!d.iommu_group) continue;
    for (const auto& m : group_members(ctx.root, *d.iommu_group)) {
      const Device* md = find(all, m);
      if (!md || seen.count(m) || md->is_bridge()) continue;
      // Only what pt detached comes along; a member parked on vfio-pci by
      // someone else (vfio-pci.ids, another tool) stays where it is.
      if (journal.devices.count(m.str())) {
        seen.insert(m);
        functions.push_back(*md);
      }
    }
  }

  auto order_of = [&](const Device& d) {
    auto it = journal.devices.find(d.addr.str());
    return it != journal.devices.end() ? it->second.attach_order : default_attach_order(d);
  };
  std::sort(functions.begin(), functions.end(), [&](const Device& a, const Device& b) {
    return std::make_pair(order_of(a), a.addr) < std::make_pair(order_of(b), b.addr);
  });

  Plan plan;
  plan.op = "attach";
  for (const auto& d : functions) {
    Move m;
    m.before = d;
    auto it = journal.devices.find(d.addr.str());
    if (it != journal.devices.end()) {
      const auto& e = it->second;
      m.to_driver = e.driver;
      m.to_override = e.driver_override;
      m.probe = !e.driver.empty() || e.boot;
      m.drop_record = true;
      m.writes = writes_for(d, m.to_driver, m.to_override, m.probe);
      plan_power_restore(ctx, e, m);
      if (!e.rebar.empty() && !m.writes.empty()) {
        // Back to the sizes it had, while no driver holds it. (Already on
        // its host driver: someone attached it by hand; its BARs stay.)
        m.rebar = e.rebar;
        add_resizes(m.writes, d, e.rebar);
      }
      if (!e.driver.empty() && !driver_registered(ctx.root, e.driver)) {
        if (!ctx.modules->knows(e.module.empty() ? e.driver : e.module))
          return fail(e.driver, "the journal says " + d.addr.str() +
                                    " was on this driver, but no driver or module of that name exists now",
                      ENOENT);
        plan.driver_modules.emplace_back(e.driver, e.module);
      }
    } else {
      m.to_driver = "";
      m.to_override = "";
      m.probe = true;
      m.writes = writes_for(d, "", "", true);
    }
    if (m.writes.empty() && m.power.empty()) {
      m.already = true;
      m.note = "already on " + driver_or_none(d.driver);
    }
    plan.moves.push_back(std::move(m));
  }
  PT_TRY(check_holders(ctx.root, plan.moves, options.force));
  return finish_plan(std::move(plan));
}

Result<Plan> plan_set(const Context& ctx, const std::vector<DeviceSpec>& specs, const std::string& driver,
                      bool force, const Journal& journal) {
  auto scope = PT_TRY(scan_and_resolve(ctx, specs));
  const std::vector<Device>* named = &scope.named;
  PT_TRY(check_driver_name(driver, "DRIVER"));
  if (!ctx.modules->knows(driver))
    return fail(driver, "no PCI driver and no kernel module of that name; check the name with 'ls "
                        "/sys/bus/pci/drivers' or 'modinfo " + driver + "'",
                ENOENT);
  Plan plan;
  plan.op = "set";
  if (!driver_registered(ctx.root, driver)) plan.driver_modules.emplace_back(driver, "");
  for (const auto& d : *named) {
    Move m;
    m.before = d;
    m.to_driver = driver;
    m.to_override = driver;
    m.writes = writes_for(d, driver, driver, true);
    if (m.writes.empty()) {
      m.already = true;
      m.note = "already on " + driver;
    }
    auto it = journal.devices.find(d.addr.str());
    if ((it == journal.devices.end() || !entry_current(it->second, d)) && d.driver != driver) {
      JournalEntry e{d.driver, module_of_driver(ctx.root, d.driver), d.driver_override, driver,
                     default_attach_order(d), now_seconds(ctx)};
      m.record = e;
    }
    plan.moves.push_back(std::move(m));
  }
  PT_TRY(check_holders(ctx.root, plan.moves, force));
  return finish_plan(std::move(plan));
}

Result<Plan> plan_unset(const Context& ctx, const std::vector<DeviceSpec>& specs, bool force,
                        const Journal& journal) {
  auto scope = PT_TRY(scan_and_resolve(ctx, specs));
  const std::vector<Device>* named = &scope.named;
  Plan plan;
  plan.op = "unset";
  for (const auto& d : *named) {
    Move m;
    m.before = d;
    m.probe = true;
    // Only a driver that the override put there is let go of.
    bool overridden = !d.driver_override.empty() && d.driver == d.driver_override;
    if (!d.driver_override.empty())
      m.writes.push_back({d.sysfs("driver_override"), "\n", WriteKind::attribute});
    if (overridden) {
      m.writes.push_back({"/sys/bus/pci/drivers/" + d.driver + "/unbind", d.addr.str(), WriteKind::blocking});
      m.writes.push_back({"/sys/bus/pci/drivers_probe", d.addr.str(), WriteKind::blocking});
    }
    m.drop_record = journal.devices.count(d.addr.str()) > 0;
    if (m.writes.empty()) {
      m.already = true;
      m.note = "no driver_override set";
    }
    plan.moves.push_back(std::move(m));
  }
  PT_TRY(check_holders(ctx.root, plan.moves, force));
  return finish_plan(std::move(plan));
}

std::string state_report(const Root& root, const std::vector<std::string>& devices,
                         const std::string& locked) {
  std::string out;
  for (const auto& bdf : devices) {
    if (bdf == locked) {
      auto drv = link_basename(root.path("/sys/bus/pci/devices/" + bdf + "/driver")).value_or("");
      out += "  " + bdf + ": driver=" + (drv.empty() ? "none" : drv) +
             " (driver_override not read: the stuck write holds the device's lock)\n";
      continue;
    }
    auto a = parse_sysfs_name(bdf);
    auto d = a ? read_device(root, *a) : Result<Device>(fail(bdf, "bad address"));
    if (!d) {
      out += "  " + bdf + ": unreadable (" + d.error().describe() + ")\n";
      continue;
    }
    out += "  " + bdf + ": driver=" + (d->driver.empty() ? "none" : d->driver) +
           " driver_override=" + (d->driver_override.empty() ? "(null)" : d->driver_override) + "\n";
  }
  return out;
}

namespace {

void record_stuck_write(Journal& journal, const Error& failure, const Move* m) {
  if (!journal.job) return;
  journal.job->writer = failure.writer;
  journal.job->write_path = failure.subject;
  if (m)
    for (const auto& w : m->writes)
      if (w.path == failure.subject) journal.job->write_value = w.value;
}

}  // namespace

Result<Outcome> execute(Context& ctx, const Plan& plan, Journal& journal) {
  Outcome out;
  out.notes = plan.notes;
  // Making drivers available changes nothing a rollback would need to undo.
  for (const auto& [drv, mod] : plan.driver_modules)
    PT_TRY(ctx.modules->ensure_driver(drv, mod));

  std::vector<std::string> devices;
  for (const auto& m : plan.moves) devices.push_back(m.before.addr.str());
  std::set<std::string> recorded_now;
  for (const auto& m : plan.moves)
    if (m.record) {
      journal.devices[m.before.addr.str()] = *m.record;
      recorded_now.insert(m.before.addr.str());
    }
  // The arbiter's view of each VGA function before the first write (vfio-pci
  // changes its decodes), for pt-vgaarb restore. A record already there is
  // older and kept; an unavailable arbiter never stops a detach.
  if (plan.op == "detach" && ctx.arbiter && ctx.arbiter->available()) {
    for (const auto& m : plan.moves) {
      const std::string bdf = m.before.addr.str();
      if (m.already || !is_vga_class(m.before) || journal.vga.count(bdf)) continue;
      auto st = ctx.arbiter->status(m.before.addr);
      if (!st || !st->valid) continue;
      journal.vga[bdf] = VgaRecord{vga::state_name(st->decodes), vga::state_name(st->owns),
                                   m.before.boot_vga.value_or(false), m.before.driver, now_seconds(ctx)};
    }
  }
  journal.job = Job{plan.op, int(::getpid()), now_seconds(ctx), devices, 0, {}, {}};
  if (auto r = save_journal(ctx.root, journal); !r) {
    for (const auto& bdf : recorded_now) journal.devices.erase(bdf);
    journal.job.reset();
    return std::unexpected(r.error());
  }

  std::vector<const Move*> changed;
  Error failure;
  bool failed = false;
  const Move* failed_move = nullptr;
  for (const auto& m : plan.moves) {
    MoveResult res{m.before.addr.str(), m.before.driver, m.before.driver, m.already, m.note, {}};
    if (m.already) {
      out.moves.push_back(res);
      continue;
    }
    auto start = std::chrono::steady_clock::now();
    bool touched = false;
    auto r = perform(ctx, m, touched);
    if (touched) changed.push_back(&m);
    if (!r) {
      failure = r.error();
      failed = true;
      failed_move = &m;
      break;
    }
    res.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
    res.to = link_basename(ctx.root.path(m.before.sysfs("driver"))).value_or("");
    res.already = !m.before.driver.empty() && res.to == m.before.driver;  // e.g. only the override was set
    if (res.already && res.note.empty()) res.note = "already on " + res.to;
    if (!m.power.empty()) out.notes.push_back(power_note(plan.op, m));
    out.moves.push_back(res);
  }

  if (!failed) {
    // Entries leave the journal only once every move stood, so a rolled-back
    // attach still knows where its functions came from.
    for (const auto& m : plan.moves)
      if (m.drop_record) journal.devices.erase(m.before.addr.str());
    journal.job.reset();
    if (auto saved = save_journal(ctx.root, journal); !saved) {
      // The system changed; saying "nothing changed" (exit 1) would be a lie.
      // The journal on disk is the one written before the first move: it
      // holds the job and the original drivers, so the next run finishes it.
      Error e = saved.error();
      e.exit = Exit::not_rolled_back;
      e.message += ". Every function of the " + plan.op +
                   " was moved, but the journal could not record it, and nothing was undone.\n"
                   "State now:\n" +
                   state_report(ctx.root, devices) +
                   "The journal still holds the job as written before the first move; fix the "
                   "cause, then run pt-bind again to finish it";
      return std::unexpected(e);
    }
    return out;
  }

  if (failure.exit == Exit::timeout) {
    // The write is still in the kernel; another write to the device would
    // likely block too, and so would reading its driver_override (the kernel
    // takes the device lock the stuck write holds). The job stays journaled
    // with the writer, so that the next run reports it instead of blocking.
    const std::string locked = failed_move ? failed_move->before.addr.str() : "";
    record_stuck_write(journal, failure, failed_move);
    failure.message += ".\nState now:\n" + state_report(ctx.root, devices, locked) +
                       "The journal keeps the job; pt-bind refuses to run until the write returns";
    save_journal(ctx.root, journal);
    return std::unexpected(failure);
  }

  std::string undone;
  std::string undo_errors;
  std::string locked;
  for (auto it = changed.rbegin(); it != changed.rend(); ++it) {
    const Device& before = (*it)->before;
    if (auto r = restore_move(ctx, **it); !r) {
      undo_errors += "  " + before.addr.str() + ": " + r.error().describe() + "\n";
      if (r.error().exit == Exit::timeout) {
        // An undo stuck in the kernel is recorded like a stuck move, so the
        // next run waits for it instead of blocking on the device.
        locked = before.addr.str();
        record_stuck_write(journal, r.error(), nullptr);
        journal.job->write_value = locked;
        break;
      }
      continue;
    }
    undone += (undone.empty() ? "" : ", ") + before.addr.str() + " (back on " + driver_or_none(before.driver) + ")";
  }
  if (!undo_errors.empty()) {
    failure.exit = Exit::not_rolled_back;
    failure.message += ".\nRolling back failed too:\n" + undo_errors + "State now:\n" +
                       state_report(ctx.root, devices, locked) + "The journal " +
                       std::string(kJournalPath) +
                       " keeps the original drivers; fix the cause, then run pt-bind attach";
    save_journal(ctx.root, journal);
    return std::unexpected(failure);
  }
  // Everything is where it was: entries made by this run describe nothing now.
  for (const auto& bdf : recorded_now) journal.devices.erase(bdf);
  journal.job.reset();
  save_journal(ctx.root, journal);
  if (changed.empty()) {
    failure.message += "; nothing was changed";
    return std::unexpected(failure);
  }
  failure.exit = Exit::rolled_back;
  failure.message += ". Rolled back: " + undone;
  return std::unexpected(failure);
}

bool adopt_unrecorded_writer(const Root& root, Journal& journal) {
  if (!journal.job) return false;
  Job& job = *journal.job;
  // A recorded writer that still lives is check_stuck_write's to report.
  if (job.writer > 0 && path_exists(root.path("/proc/" + std::to_string(job.writer)))) return false;
  // The files a pt write goes through, as /proc/PID/fd names them: a driver's
  // directory is real under /sys/bus/pci/drivers, a function's attributes
  // are named by its real /sys/devices path, not the bus symlink. Only the
  // driver link is read: reading driver_override would block on the device
  // lock the stuck write holds.
  std::vector<std::string> paths{"/sys/bus/pci/drivers_probe", "/sys/bus/pci/rescan"};
  for (const auto& bdf : job.devices) {
    std::set<std::string> drivers;
    const std::string link = "/sys/bus/pci/devices/" + bdf;
    if (auto d = link_basename(root.path(link + "/driver")); d && !d->empty()) drivers.insert(*d);
    if (auto it = journal.devices.find(bdf); it != journal.devices.end()) {
      drivers.insert(it->second.driver);
      drivers.insert(it->second.to);
    }
    for (const auto& d : drivers) {
      if (d.empty()) continue;
      paths.push_back("/sys/bus/pci/drivers/" + d + "/unbind");
      paths.push_back("/sys/bus/pci/drivers/" + d + "/bind");
    }
    std::vector<std::string> dirs{link};
    std::error_code ec;
    auto real = std::filesystem::canonical(root.path(link), ec);
    if (!ec) dirs.push_back(root.unprefix(real.string()));
    for (const auto& dir : dirs)
      for (const char* attr : {"driver_override", "remove", "reset"})
        paths.push_back(dir + "/" + attr);
  }
  auto writers = find_open(root, paths);
  if (writers.empty()) return false;
  job.writer = writers.front().pid;
  job.write_path = writers.front().node;
  job.write_value.clear();  // unknown: the run that wrote it kept it to itself
  return true;
}

Status check_stuck_write(const Root& root, const Journal& journal) {
  if (!journal.job || journal.job->writer <= 0) return {};
  const Job& job = *journal.job;
  const std::string proc = "/proc/" + std::to_string(job.writer);
  if (!path_exists(root.path(proc))) return {};  // it returned; recover_job takes the job on
  const std::string wchan = spawn::wait_channel(root, job.writer).first;
  // An adopted writer's value is unknown: its run died before it could say.
  const std::string what =
      job.write_value.empty()
          ? " ended (killed?) while writing here, and that write is still blocked in the kernel "
          : " gave up on writing " + show_value(job.write_value) +
                " here, and that write is still blocked in the kernel ";
  return fail(
      job.write_path,
      "a " + job.op + " by pid " + std::to_string(job.pid) + what + "(writer pid " +
          std::to_string(job.writer) + ", waiting in " + wchan +
          "). Until it returns the device's lock is held and pt-bind would block on it too, "
          "so it does nothing. The write completes when the driver lets go: find what holds "
          "the device (for nvidia, the processes with /dev/nvidia* open) and stop it, then run "
          "pt-bind again to finish or undo the " +
          job.op,
      0, Exit::timeout);
}

Result<JobRecovery> plan_recovery(const Context& ctx, const Journal& journal,
                                  const std::vector<std::string>& covered, bool force) {
  JobRecovery rec;
  if (!journal.job) return rec;
  const Job& job = *journal.job;
  rec.what = "an interrupted " + job.op + " of " + std::to_string(job.devices.size()) +
             " function(s) by pid " + std::to_string(job.pid);
  rec.take_over = std::all_of(job.devices.begin(), job.devices.end(), [&](const std::string& d) {
    return std::find(covered.begin(), covered.end(), d) != covered.end();
  });
  if (rec.take_over) return rec;
  // A function removed or unplugged since has nothing left to undo: the
  // kernel forgot its binding with it, and if it comes back (a rescan) it is
  // probed afresh. Only the functions still there are undone.
  std::vector<DeviceSpec> specs;
  for (const auto& d : job.devices) {
    if (!path_exists(ctx.root.path("/sys/bus/pci/devices/" + d))) {
      rec.gone.push_back(d);
      continue;
    }
    if (auto s = parse_device_spec(d)) specs.push_back(*s);
  }
  if (specs.empty()) return rec;
  Journal rest = journal;
  rest.job.reset();
  for (const auto& d : rec.gone) rest.devices.erase(d);
  auto plan = plan_attach(ctx, specs, AttachOptions{force}, rest);
  if (!plan) {
    Error e = plan.error();
    e.message = "undoing " + rec.what + " failed: " + e.message;
    return std::unexpected(e);
  }
  rec.undo = std::move(*plan);
  return rec;
}

std::vector<std::string> gone_notes(const JobRecovery& rec, const Journal& journal) {
  std::vector<std::string> out;
  for (const auto& d : rec.gone) {
    auto it = journal.devices.find(d);
    out.push_back(d + " of " + rec.what +
                  " is gone (removed or unplugged): nothing to undo for it" +
                  (it == journal.devices.end()
                       ? std::string()
                       : "; its journal entry (from " + driver_or_none(it->second.driver) +
                             ") is dropped, a function that comes back is probed afresh"));
  }
  return out;
}

Result<std::vector<std::string>> recover_job(Context& ctx, Journal& journal,
                                             const std::vector<std::string>& covered, bool force) {
  auto rec = PT_TRY(plan_recovery(ctx, journal, covered, force));
  if (!journal.job) return std::vector<std::string>();
  const Job job = *journal.job;
  if (rec.take_over) {
    journal.job.reset();
    return std::vector<std::string>{"found " + rec.what + "; this run takes it over"};
  }
  auto notes = gone_notes(rec, journal);
  journal.job.reset();
  for (const auto& d : rec.gone) journal.devices.erase(d);
  if (rec.undo) {
    if (auto r = execute(ctx, *rec.undo, journal); !r) {
      Error e = r.error();
      e.message = "undoing " + rec.what + " failed: " + e.message;
      return std::unexpected(e);
    }
  } else if (auto r = save_journal(ctx.root, journal); !r) {
    Error e = r.error();
    e.message = "undoing " + rec.what + " failed: " + e.message;
    return std::unexpected(e);
  }
  // An interrupted detach is undone, an interrupted attach finished: either
  // way its functions end on the drivers the journal recorded.
  notes.push_back((job.op == "attach" ? "finished " : "undid ") + rec.what +
                  (rec.undo ? ": its functions are back on their recorded drivers"
                            : ": none of its functions is left"));
  return notes;
}

std::vector<Hint> readiness_hints(const Root& root, ModuleLoader* modules,
                                  const std::vector<Device>& all) {
  std::vector<Hint> hints;
  const bool any_group = std::any_of(all.begin(), all.end(), [](const Device& d) { return d.iommu_group; });
  if (!any_group && !has_iommu(root))
    hints.push_back(
        {"no-iommu",
         "no IOMMU: add intel_iommu=on (or amd_iommu=on) to the kernel command line and enable "
         "VT-d (or AMD-Vi) in the firmware; without IOMMU groups vfio-pci cannot take a device"});
  if (modules && !modules->knows("vfio-pci"))
    hints.push_back(
        {"no-vfio-pci",
         "vfio-pci is not available: no such driver is registered and no kernel module of that "
         "name is installed; install the kernel's vfio-pci module (check with 'modinfo "
         "vfio-pci')"});
  return hints;
}

Result<Mutation> mutate(Context& ctx, const std::function<Result<Plan>(const Journal&)>& make_plan,
                        bool force) {
  auto lock = PT_TRY(lock_unless_held(ctx));
  auto journal = PT_TRY(load_journal(ctx.root));
  // Before anything reads the job's functions: a write left in the kernel by
  // a killed run holds their lock. Recorded, the job stays until it returns.
  if (adopt_unrecorded_writer(ctx.root, journal)) PT_TRY(save_journal(ctx.root, journal));
  PT_TRY(check_stuck_write(ctx.root, journal));
  auto plan = PT_TRY(make_plan(journal));

  std::vector<std::string> covered;
  for (const auto& m : plan.moves) covered.push_back(m.before.addr.str());
  auto notes = PT_TRY(recover_job(ctx, journal, covered, force));
  if (!notes.empty()) {
    // Undoing an old job changed the devices; plan again from what is there now.
    plan = PT_TRY(make_plan(journal));
    for (auto& n : notes) plan.notes.push_back(std::move(n));
  }
  auto outcome = PT_TRY(execute(ctx, plan, journal));
  return Mutation{std::move(plan), std::move(outcome)};
}

}  // namespace pt::bind
