#include "pt/sriov.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>

#include "pt/holders.hpp"
#include "pt/lock.hpp"
#include "pt/modules.hpp"
#include "pt/pci.hpp"
#include "pt/sysfs.hpp"
#include "pt/try.hpp"
#include "pt/wait.hpp"

namespace pt::sriov {

namespace {

// Offsets in the SR-IOV capability (PCIe Base Spec 9.3.3).
constexpr uint16_t kCaps = 0x04, kCtrl = 0x08, kInitial = 0x0c, kTotal = 0x0e, kNum = 0x10,
                   kOffset = 0x14, kStride = 0x16, kVfDevice = 0x1a;

std::string base(const PciAddress& a) {
  return "/sys/bus/pci/devices/" + a.str();
}

int read_int(const Root& root, const std::string& abs) {
  auto v = read_attr(root, abs);
  if (!v) return 0;
  return int(parse_index(*v).value_or(0));
}

int64_t now(const Context& ctx) {
  return ctx.now ? ctx.now() : int64_t(std::time(nullptr));
}

std::string s(int n) {
  return std::to_string(n);
}

std::string modalias_of(const Root& root, const PciAddress& a) {
  return read_attr(root, base(a) + "/modalias").value_or("");
}

// The modalias a VF of the PF will have: the PF's ("pci:v%08Xd%08Xsv…", as
// pci-sysfs.c prints it) with the VF device ID. Only for the dry run and the
// plan: execute reads each VF's own.
std::string predicted_modalias(const std::string& pf_alias, uint16_t vf_device) {
  if (pf_alias.size() < 22 || !pf_alias.starts_with("pci:v") || pf_alias[13] != 'd')
    return pf_alias;
  char id[9];
  std::snprintf(id, sizeof id, "%08X", unsigned(vf_device));
  return pf_alias.substr(0, 14) + id + pf_alias.substr(22);
}

std::optional<uint16_t> hex16(const std::string& t) {
  uint16_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v, 16);
  if (t.empty() || ec != std::errc() || end != t.data() + t.size()) return std::nullopt;
  return v;
}

void add_once(std::vector<std::string>& v, const std::string& line) {
  if (!line.empty() && std::find(v.begin(), v.end(), line) == v.end()) v.push_back(line);
}

}  // namespace

std::optional<Cap> decode(const ConfigSpace& c) {
  if (c.ext_caps_unreadable()) return std::nullopt;
  auto pos = c.find_ext(kExtCapSriov);
  if (!pos) return std::nullopt;
  Cap cap;
  cap.capabilities = c.u32(*pos + kCaps);
  cap.control = c.u16(*pos + kCtrl);
  cap.initial_vfs = c.u16(*pos + kInitial);
  cap.total_vfs = c.u16(*pos + kTotal);
  cap.num_vfs = c.u16(*pos + kNum);
  cap.first_vf_offset = c.u16(*pos + kOffset);
  cap.vf_stride = c.u16(*pos + kStride);
  cap.vf_device = c.u16(*pos + kVfDevice);
  return cap;
}

std::vector<PciAddress> vf_addresses(const PciAddress& pf, const Cap& cap, int n) {
  std::vector<PciAddress> out;
  const int rid = pf.bus << 8 | pf.dev << 3 | pf.func;
  for (int i = 0; i < n; ++i) {
    const int r = rid + cap.first_vf_offset + cap.vf_stride * i;
    if (r > 0xffff) break;  // past the last bus: the capability is nonsense
    out.push_back(PciAddress{pf.domain, uint8_t(r >> 8), uint8_t(r >> 3 & 0x1f), uint8_t(r & 7)});
  }
  return out;
}

std::optional<PciAddress> physfn(const Root& root, const PciAddress& addr) {
  auto name = link_basename(root, base(addr) + "/physfn");
  if (!name) return std::nullopt;
  return parse_sysfs_name(*name);
}

std::optional<State> read_state(const Root& root, const PciAddress& addr) {
  const std::string b = base(addr);
  auto total = read_attr(root, b + "/sriov_totalvfs");
  if (!total) return std::nullopt;
  State st;
  st.pf = addr;
  st.total_vfs = int(parse_index(*total).value_or(0));
  st.num_vfs = read_int(root, b + "/sriov_numvfs");
  if (auto ap = read_attr(root, b + "/sriov_drivers_autoprobe")) st.autoprobe = *ap == "1";
  st.vf_device = read_attr(root, b + "/sriov_vf_device").value_or("");
  st.driver = link_basename(root, b + "/driver").value_or("");
  std::vector<std::pair<uint32_t, PciAddress>> vfs;
  for (const auto& n : list_dir(root, b)) {
    if (!n.starts_with("virtfn")) continue;
    auto i = parse_index(std::string_view(n).substr(6));
    auto target = link_basename(root, b + "/" + n);
    auto a = target ? parse_sysfs_name(*target) : std::nullopt;
    if (i && a) vfs.emplace_back(*i, *a);
  }
  std::sort(vfs.begin(), vfs.end());
  for (const auto& [i, a] : vfs) st.vfs.push_back(a);
  if (auto cfg = load_config(root, addr, 4096)) st.cap = decode(*cfg);
  return st;
}

namespace {

// Why the existing VF is in use, empty when it is not: a process holds one
// of its nodes (its /dev/vfio group: a VM runs on it), or the host kernel
// uses it (a mounted disk, an interface that is up).
std::string in_use(const Root& root, const PciAddress& vf) {
  auto dev = read_device(root, vf);
  if (!dev) return "";
  auto holders = find_holders(root, *dev);
  if (!holders.empty()) return describe(holders);
  auto users = find_kernel_users(root, *dev);
  if (!users.empty()) return "the kernel uses it: " + describe(users.front());
  return "";
}

}  // namespace

Result<Plan> plan(const Context& ctx, const Request& req, const Journal& journal) {
  auto spec = PT_TRY(parse_device_spec(req.device));
  const PciAddress addr{spec.domain, spec.bus, spec.dev, spec.func.value_or(0)};
  if (req.count < 0 || req.count > 65535)
    return usage_error(s(req.count), "the number of VFs must be from 0 to 65535");
  PT_TRY(read_device(ctx.root, addr));
  auto st = read_state(ctx.root, addr);
  if (!st) {
    if (auto pf = physfn(ctx.root, addr))
      return usage_error(addr.str(), "is a virtual function of " + pf->str() +
                                         "; name the physical function: pt-bind vfs " + pf->str() +
                                         " N");
    return usage_error(addr.str(),
                       "is no SR-IOV physical function (no sriov_totalvfs): it cannot have "
                       "virtual functions");
  }
  if (req.count > st->total_vfs)
    return usage_error(addr.str(), "supports at most " + s(st->total_vfs) +
                                       " VFs (sriov_totalvfs), not " + s(req.count));
  // As detach --to: a driver that cannot be had is refused before any change.
  if (req.count > 0 && req.to != kAuto && ctx.modules && !ctx.modules->knows(req.to))
    return fail(req.to,
                "no PCI driver and no kernel module of that name; check the name with 'ls "
                "/sys/bus/pci/drivers' or 'modinfo " +
                    req.to + "'",
                ENOENT);
  Plan p;
  p.before = *st;
  p.count = req.count;
  p.to = req.to;
  if (auto it = journal.sriov.find(addr.str()); it != journal.sriov.end()) p.record = it->second;

  bool on_target = true;
  std::vector<std::pair<std::string, VfDriver>> existing;
  std::string on;
  // Only a count the PF has can be there already; vfs 0 must not depend on
  // the module index.
  if (req.count > 0 && req.count == st->num_vfs)
    for (const auto& vf : st->vfs) {
      auto choice = choose_driver(ctx.root, ctx.modules, req.to, modalias_of(ctx.root, vf));
      const std::string drv = link_basename(ctx.root, base(vf) + "/driver").value_or("");
      if (choice.driver.empty() || drv != choice.driver) on_target = false;
      if (on.find(choice.name()) == std::string::npos)
        on += (on.empty() ? "" : ", ") + choice.name();
      existing.emplace_back(vf.str(), std::move(choice));
    }
  if (req.count == st->num_vfs && int(st->vfs.size()) == st->num_vfs &&
      (req.count == 0 ? !p.record : on_target)) {
    p.already = true;
    p.drivers = std::move(existing);
    p.notes.push_back(req.count == 0
                          ? addr.str() + " has no VFs"
                          : addr.str() + " already has " + s(req.count) + " VFs on " + on);
    return p;
  }
  if (st->driver.empty())
    return fail(addr.str(),
                "has no driver: the kernel creates and removes VFs through the PF's driver; "
                "bind it first (pt-bind attach or unset " +
                    addr.str() + ")",
                ENOENT);
  // Changing the count removes every existing VF: none may be in use.
  if (st->num_vfs > 0)
    for (const auto& vf : st->vfs)
      if (auto why = in_use(ctx.root, vf); !why.empty())
        return fail(vf.str(),
                    "is a VF of " + addr.str() + " in use: " + why +
                        "; stop its user before changing the VFs (no change made)",
                    EBUSY);

  const std::string b = base(addr);
  if (req.count > 0) {
    if (!p.record)
      p.steps.push_back("journal sriov_numvfs " + s(st->num_vfs) + " and sriov_drivers_autoprobe " +
                        (st->autoprobe ? (*st->autoprobe ? "1" : "0") : "(none)"));
    if (st->autoprobe) p.steps.push_back("write " + b + "/sriov_drivers_autoprobe 0");
    if (st->num_vfs > 0) p.steps.push_back("write " + b + "/sriov_numvfs 0");
    p.steps.push_back("write " + b + "/sriov_numvfs " + s(req.count));
    p.steps.push_back("wait for " + s(req.count) + " virtfn links");
    auto where = st->cap ? vf_addresses(addr, *st->cap, req.count) : std::vector<PciAddress>{};
    // sysfs prints sriov_vf_device as %x; before 5.6 only the capability has it.
    uint16_t vf_device = st->cap ? st->cap->vf_device : 0;
    if (auto id = hex16(st->vf_device)) vf_device = *id;
    const std::string alias = predicted_modalias(modalias_of(ctx.root, addr), vf_device);
    for (int i = 0; i < req.count; ++i) {
      const std::string vf = i < int(where.size()) ? where[i].str() : "VF " + s(i);
      auto choice = choose_driver(ctx.root, ctx.modules, req.to, alias);
      if (!choice.module.empty() && choice.driver.empty())
        add_once(p.steps, "load module " + choice.module + " (modprobe " + choice.module + ")");
      p.steps.push_back("bind " + vf + " to " + choice.name() +
                        " (driver_override, drivers_probe; " + choice.why + ")");
      add_once(p.warnings, choice.warning);
      p.drivers.emplace_back(vf, std::move(choice));
    }
    if (st->autoprobe && *st->autoprobe)
      p.steps.push_back("write " + b + "/sriov_drivers_autoprobe 1");
  } else {
    for (const auto& vf : st->vfs)
      p.steps.push_back("unbind " + vf.str() + " and clear its driver_override");
    p.steps.push_back("write " + b + "/sriov_numvfs 0");
    if (p.record) {
      if (!p.record->autoprobe.empty())
        p.steps.push_back("write " + b + "/sriov_drivers_autoprobe " + p.record->autoprobe);
      if (p.record->numvfs > 0)
        p.steps.push_back("write " + b + "/sriov_numvfs " + s(p.record->numvfs) +
                          " (as before pt-bind vfs)");
      p.steps.push_back("drop the journal's record of " + addr.str());
    }
  }
  return p;
}

namespace {

struct Runner {
  Context& ctx;
  const Plan& plan;
  Journal& journal;
  std::string pf() const { return plan.before.pf.str(); }
  std::string attr(const std::string& name) const { return base(plan.before.pf) + "/" + name; }

  Status write(const std::string& path, const std::string& value, WriteKind kind) {
    return ctx.writer->write(path, value, kind);
  }

  // Waits until the PF shows exactly N virtfn links, each to a function in sysfs.
  Result<std::vector<PciAddress>> wait_vfs(int n) {
    std::vector<PciAddress> vfs;
    bool ok = wait_until(
        [&] {
          auto st = read_state(ctx.root, plan.before.pf);
          if (!st || int(st->vfs.size()) != n) return false;
          for (const auto& vf : st->vfs)
            if (!path_exists(ctx.root, base(vf))) return false;
          vfs = st->vfs;
          return true;
        },
        ctx.timeout, ctx.on_wait, s(n) + " VFs of " + pf(), pf());
    if (!ok)
      return fail(attr("sriov_numvfs"),
                  "the kernel did not show " + s(n) + " VFs (virtfn links) within the timeout",
                  ETIMEDOUT);
    return vfs;
  }

  Status unbind_vf(const PciAddress& vf) {
    auto drv = link_basename(ctx.root, base(vf) + "/driver");
    if (drv)
      PT_TRY(write("/sys/bus/pci/drivers/" + *drv + "/unbind", vf.str(), WriteKind::blocking));
    return write(base(vf) + "/driver_override", "", WriteKind::attribute);
  }

  Status bind_vf(const PciAddress& vf, const std::string& to) {
    auto drv = link_basename(ctx.root, base(vf) + "/driver");
    if (drv && *drv == to) return {};
    PT_TRY(write(base(vf) + "/driver_override", to, WriteKind::attribute));
    if (drv)
      PT_TRY(write("/sys/bus/pci/drivers/" + *drv + "/unbind", vf.str(), WriteKind::blocking));
    PT_TRY(write("/sys/bus/pci/drivers_probe", vf.str(), WriteKind::blocking));
    const std::string link = base(vf) + "/driver";
    if (!wait_until([&] { return link_basename(ctx.root, link).value_or("") == to; }, ctx.timeout,
                    ctx.on_wait, binding_wait(vf.str(), to), vf.str()))
      return fail(vf.str(),
                  "did not bind to " + to + " (it is on " +
                      link_basename(ctx.root, link).value_or("no driver") + ")",
                  ENODEV);
    return {};
  }

  // Back to the record: no VFs of pt's, the old count and autoprobe.
  Status restore(const SriovRecord& rec) {
    auto st = read_state(ctx.root, plan.before.pf);
    if (st)
      for (const auto& vf : st->vfs)
        if (path_exists(ctx.root, base(vf))) PT_TRY(unbind_vf(vf));
    if (st && st->num_vfs > 0) {
      PT_TRY(write(attr("sriov_numvfs"), "0", WriteKind::blocking));
      PT_TRY(wait_vfs(0));
    }
    if (!rec.autoprobe.empty())
      PT_TRY(write(attr("sriov_drivers_autoprobe"), rec.autoprobe, WriteKind::attribute));
    if (rec.numvfs > 0) PT_TRY(write(attr("sriov_numvfs"), s(rec.numvfs), WriteKind::blocking));
    return {};
  }

  Result<Outcome> create() {
    SriovRecord rec = plan.record.value_or(SriovRecord{});
    if (!plan.record) {
      rec.numvfs = plan.before.num_vfs;
      rec.autoprobe = plan.before.autoprobe ? (*plan.before.autoprobe ? "1" : "0") : "";
    }
    rec.count = plan.count;
    rec.to = plan.to;
    rec.time = now(ctx);
    // Journaled before the first write: a crash leaves what vfs DEV 0 restores.
    journal.sriov[pf()] = rec;
    PT_TRY(save_journal(ctx.root, journal));

    std::vector<std::string> warnings;
    auto made = [&]() -> Result<std::vector<VfResult>> {
      if (plan.to != kAuto && ctx.modules && !driver_registered(ctx.root, plan.to))
        PT_TRY(ctx.modules->ensure_driver(plan.to, ""));
      // Off before the VFs exist: no host driver may probe them.
      if (plan.before.autoprobe)
        PT_TRY(write(attr("sriov_drivers_autoprobe"), "0", WriteKind::attribute));
      auto now_st = read_state(ctx.root, plan.before.pf);
      if (now_st && now_st->num_vfs > 0) {
        for (const auto& vf : now_st->vfs)
          if (path_exists(ctx.root, base(vf))) PT_TRY(unbind_vf(vf));
        // The kernel refuses to change a non-zero count but to 0.
        PT_TRY(write(attr("sriov_numvfs"), "0", WriteKind::blocking));
        PT_TRY(wait_vfs(0));
      }
      PT_TRY(write(attr("sriov_numvfs"), s(plan.count), WriteKind::blocking));
      auto vfs = PT_TRY(wait_vfs(plan.count));
      std::vector<VfResult> bound;
      auto& drivers = journal.sriov[pf()].drivers;
      drivers.clear();
      for (const auto& vf : vfs) {
        // The VF's own modalias: its subsystem IDs may differ from the PF's.
        auto choice = choose_driver(ctx.root, ctx.modules, plan.to, modalias_of(ctx.root, vf));
        add_once(warnings, choice.warning);
        if (ctx.modules) {
          PT_TRY(load_driver(ctx.root, *ctx.modules, choice));
          if (!driver_registered(ctx.root, choice.driver))
            PT_TRY(ctx.modules->ensure_driver(choice.driver, ""));
        }
        PT_TRY(bind_vf(vf, choice.driver));
        drivers[vf.str()] = choice.driver;
        bound.push_back({vf.str(), choice.driver, choice.why});
      }
      // Which driver each VF is on, for the record (the way back unbinds
      // whatever driver a VF is on).
      PT_TRY(save_journal(ctx.root, journal));
      if (plan.before.autoprobe && *plan.before.autoprobe)
        PT_TRY(write(attr("sriov_drivers_autoprobe"), "1", WriteKind::attribute));
      return bound;
    }();
    if (!made) {
      Error e = made.error();
      if (auto undone = restore(rec); !undone) {
        e.exit = Exit::not_rolled_back;
        e.message += "; undoing it failed too: " + undone.error().describe() +
                     " (the journal keeps the record: pt-bind vfs " + pf() + " 0 retries)";
        return std::unexpected(e);
      }
      if (plan.record)
        journal.sriov[pf()] = *plan.record;
      else
        journal.sriov.erase(pf());
      PT_TRY(save_journal(ctx.root, journal));
      e.exit = Exit::rolled_back;
      e.message += "; the VFs were removed and " + pf() + " is as it was";
      return std::unexpected(e);
    }
    Outcome out{pf(), plan.count, std::move(*made), plan.notes, warnings};
    return out;
  }

  Result<Outcome> remove() {
    SriovRecord rec = plan.record.value_or(SriovRecord{});
    if (!plan.record) {
      // VFs pt did not make: removed, and autoprobe left as it is.
      rec.autoprobe.clear();
      rec.numvfs = 0;
    }
    if (auto st = restore(rec); !st) {
      Error e = st.error();
      e.exit = Exit::not_rolled_back;
      e.message +=
          " (the journal keeps the record of " + pf() + ": pt-bind vfs " + pf() + " 0 retries)";
      return std::unexpected(e);
    }
    journal.sriov.erase(pf());
    PT_TRY(save_journal(ctx.root, journal));
    Outcome out{pf(), 0, {}, plan.notes};
    if (rec.numvfs > 0)
      out.notes.push_back(pf() + " has its " + s(rec.numvfs) +
                          " VFs from before pt-bind vfs again");
    return out;
  }
};

}  // namespace

Result<Outcome> execute(Context& ctx, const Plan& plan, Journal& journal) {
  if (plan.already) {
    Outcome out{plan.before.pf.str(), plan.count, {}, plan.notes, plan.warnings};
    for (const auto& [vf, d] : plan.drivers) {
      out.vfs.push_back({vf, d.name(), d.why});
      add_once(out.warnings, d.warning);
    }
    return out;
  }
  Runner r{ctx, plan, journal};
  return plan.count > 0 ? r.create() : r.remove();
}

Result<Outcome> run(Context& ctx, const Request& request) {
  auto lock = PT_TRY(lock_unless_held(ctx));
  PT_TRY(check_state_dir(ctx.root, true));
  auto journal = PT_TRY(load_journal(ctx.root));
  auto p = PT_TRY(plan(ctx, request, journal));
  return execute(ctx, p, journal);
}

Result<std::vector<ConfResult>> apply_conf(Context& ctx,
                                           const std::vector<std::pair<PciAddress, int>>& pfs) {
  std::vector<ConfResult> out;
  for (const auto& [pf, n] : pfs) {
    ConfResult r{pf.str(), n, {}, false};
    if (!path_exists(ctx.root, base(pf))) {
      r.skipped = true;
      r.lines.push_back(pf.str() + " is not present; no VFs made");
      out.push_back(std::move(r));
      continue;
    }
    // Early in boot the PF's driver may not be loaded yet: a later run
    // (after udev, the systemd unit) makes the VFs.
    if (auto st = read_state(ctx.root, pf); st && st->driver.empty() && st->num_vfs != n) {
      r.skipped = true;
      r.lines.push_back(pf.str() +
                        " has no driver yet, and the kernel makes VFs through it; "
                        "no VFs made (run pt-bind boot again once it has one)");
      out.push_back(std::move(r));
      continue;
    }
    auto journal = PT_TRY(load_journal(ctx.root));
    auto p = PT_TRY(plan(ctx, Request{pf.str(), n, kAuto}, journal));
    if (ctx.dry_run) {
      r.lines = p.already ? p.notes : p.steps;
    } else {
      auto oc = PT_TRY(execute(ctx, p, journal));
      for (const auto& w : oc.warnings) r.lines.push_back("warning: " + w);
      for (const auto& vf : oc.vfs)
        r.lines.push_back(vf.device + " VF of " + pf.str() + " on " + vf.driver);
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace pt::sriov
