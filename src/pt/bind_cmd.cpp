#include "pt/bind_cmd.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "pt/bind.hpp"
#include "pt/boot.hpp"
#include "pt/holders.hpp"
#include "pt/initramfs.hpp"
#include "pt/lock.hpp"
#include "pt/modules.hpp"
#include "pt/pci.hpp"
#include "pt/system.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"

namespace pt::bind {

using nlohmann::json;

namespace {

json nullable(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

std::string class_hex(const Device& d) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", d.class_id());
  return buf;
}

std::vector<std::string> companions(const std::vector<Device>& all, const Device& d) {
  std::vector<std::string> out;
  for (const auto& o : all)
    if (o.addr != d.addr && o.addr.same_slot(d.addr)) out.push_back(o.addr.str());
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// The list schema, documented in pt-bind(8); show extends it.
json device_json(const std::vector<Device>& all, const Device& d) {
  json j;
  j["device"] = d.addr.str();
  char id[8];
  std::snprintf(id, sizeof id, "%04x", d.vendor);
  j["vendor"] = id;
  std::snprintf(id, sizeof id, "%04x", d.device);
  j["device_id"] = id;
  j["class"] = class_hex(d);
  j["class_name"] = nullable(d.class_name);
  j["driver"] = nullable(d.driver);
  j["iommu_group"] = d.iommu_group ? json(*d.iommu_group) : json(nullptr);
  j["boot_vga"] = d.boot_vga ? json(*d.boot_vga) : json(nullptr);
  j["reset_methods"] = d.reset_methods ? json(*d.reset_methods) : json(nullptr);
  j["companions"] = companions(all, d);
  return j;
}

bool class_selected(const Device& d, const std::string& cls) {
  if (cls == "display") return d.is_display();
  if (cls == "audio") return d.is_audio();
  return true;
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

Result<Exit> cmd_list(const Options& o, Context& ctx, std::ostream& out) {
  if (o.device_class != "display" && o.device_class != "audio" && o.device_class != "all")
    return usage_error("--class '" + o.device_class + "'", "must be display, audio or all");
  auto all = scan_devices(ctx.root);
  if (!all) return std::unexpected(all.error());
  if (o.common.json) {
    json arr = json::array();
    for (const auto& d : *all)
      if (class_selected(d, o.device_class)) arr.push_back(device_json(*all, d));
    out << arr.dump(2) << "\n";
    return Exit::ok;
  }
  std::string text = pad("DEVICE", 14) + pad("ID", 11) + pad("CLASS", 28) + pad("DRIVER", 16) +
                     pad("GROUP", 7) + pad("BOOT", 6) + pad("RESET", 16) + "COMPANIONS\n";
  for (const auto& d : *all) {
    if (!class_selected(d, o.device_class)) continue;
    std::string cls = d.class_name.empty() ? class_hex(d) : d.class_name;
    if (cls.size() > 27) cls = cls.substr(0, 26) + "~";
    text += pad(d.addr.str(), 14) + pad(id_string(d), 11) + pad(cls, 28) +
            pad(d.driver.empty() ? "-" : d.driver, 16) +
            pad(d.iommu_group ? std::to_string(*d.iommu_group) : "-", 7) +
            pad(d.boot_vga ? (*d.boot_vga ? "yes" : "no") : "-", 6) +
            pad(d.reset_methods ? (d.reset_methods->empty() ? "none" : join(*d.reset_methods, ","))
                                : "-",
                16);
    auto c = companions(*all, d);
    text += (c.empty() ? "-" : join(c, ",")) + "\n";
  }
  out << text;
  return Exit::ok;
}

Result<Exit> cmd_show(const Options& o, Context& ctx, std::ostream& out) {
  if (o.devices.size() != 1) return usage_error("show", "takes exactly one device");
  auto spec = parse_device_spec(o.devices[0]);
  if (!spec) return std::unexpected(spec.error());
  auto all = scan_devices(ctx.root);
  if (!all) return std::unexpected(all.error());
  auto devs = target::resolve(*all, *spec, target::any());
  if (!devs) return std::unexpected(devs.error());
  auto journal = load_journal(ctx.root);
  json arr = json::array();
  std::string text;
  for (const auto& d : *devs) {
    json j = device_json(*all, d);
    j["driver_override"] = nullable(d.driver_override);
    j["driver_module"] = nullable(module_of_driver(ctx.root, d.driver));
    j["parent"] = d.parent ? json(d.parent->str()) : json(nullptr);
    std::vector<std::string> members;
    if (d.iommu_group)
      for (const auto& m : group_members(ctx.root, *d.iommu_group)) members.push_back(m.str());
    j["group_members"] = members;
    std::vector<std::string> slot;
    for (const auto& x : *all)
      if (x.addr.same_slot(d.addr)) slot.push_back(x.addr.str());
    j["slot_functions"] = slot;
    j["device_nodes"] = device_nodes(ctx.root, d);
    json holders = json::array();
    auto hs = find_holders(ctx.root, d);
    for (const auto& h : hs)
      holders.push_back({{"pid", h.pid}, {"command", h.command}, {"node", h.node}});
    j["holders"] = holders;
    json users = json::array();
    auto ku = find_kernel_users(ctx.root, d);
    for (const auto& u : ku) {
      static const char* kinds[] = {"mount", "swap", "net"};
      json ju = {{"kind", kinds[int(u.kind)]}, {"device", u.device}, {"via", nullable(u.via)}};
      if (u.kind == KernelUser::Kind::mount)
        ju.update({{"target", u.target}, {"fstype", u.fstype}});
      if (u.kind == KernelUser::Kind::net) ju["operstate"] = u.operstate;
      users.push_back(ju);
    }
    j["kernel_users"] = users;
    json je = nullptr;
    if (journal) {
      if (auto it = journal->devices.find(d.addr.str()); it != journal->devices.end())
        je = {{"driver", nullable(it->second.driver)},
              {"module", nullable(it->second.module)},
              {"driver_override", nullable(it->second.driver_override)},
              {"to", it->second.to},
              {"attach_order", it->second.attach_order},
              {"time", it->second.time}};
    }
    j["journal"] = je;
    j["journal_error"] = journal ? json(nullptr) : json(journal.error().describe());
    arr.push_back(j);

    text += d.addr.str() + "  " + id_string(d) + "  " +
            (d.class_name.empty() ? class_hex(d) : d.class_name) + "\n";
    auto mod = module_of_driver(ctx.root, d.driver);
    text += "  driver:           " + (d.driver.empty() ? std::string("none") : d.driver) +
            (mod.empty() ? "" : " (module " + mod + ")") + "\n";
    text += "  driver_override:  " +
            (d.driver_override.empty() ? std::string("(null)") : d.driver_override) + "\n";
    text += "  iommu group:      " +
            (d.iommu_group ? std::to_string(*d.iommu_group) + ": " + join(members, " ")
                           : std::string("none")) +
            "\n";
    text += "  slot functions:   " + join(slot, " ") + "\n";
    text += "  parent:           " + (d.parent ? d.parent->str() : std::string("root bus")) + "\n";
    if (d.boot_vga) text += std::string("  boot_vga:         ") + (*d.boot_vga ? "1" : "0") + "\n";
    text +=
        "  reset methods:    " +
        (d.reset_methods ? join(*d.reset_methods, " ") : std::string("(no reset_method file)")) +
        "\n";
    auto nodes = j["device_nodes"].get<std::vector<std::string>>();
    text +=
        "  device nodes:     " + (nodes.empty() ? std::string("none") : join(nodes, " ")) + "\n";
    text += "  holders:          " + (hs.empty() ? std::string("none") : describe(hs)) + "\n";
    std::string kus;
    for (const auto& u : ku) kus += (kus.empty() ? "" : ", ") + describe(u);
    text += "  kernel users:     " + (kus.empty() ? std::string("none") : kus) + "\n";
    if (!je.is_null())
      text +=
          "  journal:          detached from " +
          (je["driver"].is_null() ? std::string("no driver") : je["driver"].get<std::string>()) +
          " to " + je["to"].get<std::string>() + "\n";
    else if (!journal)
      text += "  journal:          unreadable: " + journal.error().describe() + "\n";
  }
  if (o.common.json)
    out << (arr.size() == 1 ? arr[0] : arr).dump(2) << "\n";
  else
    out << text;
  return Exit::ok;
}

void print_plan(const Plan& plan, bool json_out, std::ostream& out) {
  if (json_out) {
    json j;
    j["op"] = plan.op;
    j["dry_run"] = true;
    j["load_drivers"] = plan.drivers;
    j["notes"] = plan.notes;
    json fs = json::array();
    for (const auto& m : plan.moves) {
      json w = json::array();
      for (const auto& x : m.writes) w.push_back({{"path", x.path}, {"value", x.value}});
      fs.push_back({{"device", m.before.addr.str()},
                    {"from", nullable(m.before.driver)},
                    {"to", nullable(m.to_driver)},
                    {"result", m.already ? "already" : "planned"},
                    {"note", nullable(m.note)},
                    {"writes", w}});
    }
    j["functions"] = fs;
    out << j.dump(2) << "\n";
    return;
  }
  std::string t;
  for (const auto& n : plan.notes) t += "note: " + n + "\n";
  t += "dry run: " + plan.op + " " + std::to_string(plan.moves.size()) +
       " function(s); nothing is changed\n";
  for (const auto& d : plan.drivers) t += "  load driver " + d + " with its module dependencies\n";
  for (const auto& m : plan.moves) {
    if (m.already) {
      t += "  " + m.before.addr.str() + "  " + m.note + "\n";
      continue;
    }
    t += "  " + m.before.addr.str() + "  " +
         (m.before.driver.empty() ? "no driver" : m.before.driver) + " -> " +
         (m.to_driver.empty() ? (m.probe ? "kernel's choice" : "no driver") : m.to_driver) + "\n";
    for (const auto& w : m.writes) t += "    write " + w.path + " " + show_value(w.value) + "\n";
  }
  out << t;
}

void print_outcome(const std::string& op, const Outcome& oc, bool json_out, std::ostream& out) {
  if (json_out) {
    json j;
    j["op"] = op;
    j["dry_run"] = false;
    j["notes"] = oc.notes;
    json fs = json::array();
    for (const auto& m : oc.moves)
      fs.push_back({{"device", m.device},
                    {"from", nullable(m.from)},
                    {"to", nullable(m.to)},
                    {"result", m.already ? "already" : "moved"},
                    {"note", nullable(m.note)},
                    {"ms", double(m.elapsed.count()) / 1000.0}});
    j["functions"] = fs;
    out << j.dump(2) << "\n";
    return;
  }
  std::string t;
  for (const auto& n : oc.notes) t += "note: " + n + "\n";
  for (const auto& m : oc.moves) {
    if (m.already) {
      t += m.device + "  " + m.note + "\n";
      continue;
    }
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.1f ms", double(m.elapsed.count()) / 1000.0);
    t += m.device + "  " + (m.from.empty() ? "no driver" : m.from) + " -> " +
         (m.to.empty() ? "no driver" : m.to) + "  (" + ms + ")\n";
  }
  out << t;
}

Result<Exit> cmd_mutate(const Options& o, Context& ctx, std::ostream& out) {
  std::vector<DeviceSpec> specs;
  for (const auto& s : o.devices) {
    auto spec = parse_device_spec(s);
    if (!spec) return std::unexpected(spec.error());
    specs.push_back(*spec);
  }
  if (specs.empty()) return usage_error(o.command, "needs at least one device");

  auto make_plan = [&](const Journal& journal) -> Result<Plan> {
    if (o.command == "detach")
      return plan_detach(ctx, specs, DetachOptions{o.to, o.force, o.force_group}, journal);
    if (o.command == "attach") return plan_attach(ctx, specs, AttachOptions{o.force}, journal);
    if (o.command == "set") return plan_set(ctx, specs, o.driver, o.force, journal);
    return plan_unset(ctx, specs, o.force, journal);
  };

  if (ctx.dry_run) {
    // No lock and no state directory: a dry run writes nothing at all.
    if (auto r = check_state_dir(ctx.root, false); !r) return std::unexpected(r.error());
    auto journal = load_journal(ctx.root);
    if (!journal) return std::unexpected(journal.error());
    auto plan = make_plan(*journal);
    if (!plan) return std::unexpected(plan.error());
    if (journal->job)
      plan->notes.push_back("the journal holds an interrupted " + journal->job->op + " job (pid " +
                            std::to_string(journal->job->pid) +
                            "); the real run first finishes or undoes it");
    print_plan(*plan, o.common.json, out);
    return Exit::ok;
  }

  auto lock = Lock::acquire(ctx.root, ctx.lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  auto journal = load_journal(ctx.root);
  if (!journal) return std::unexpected(journal.error());
  auto plan = make_plan(*journal);
  if (!plan) return std::unexpected(plan.error());

  std::vector<std::string> covered;
  for (const auto& m : plan->moves) covered.push_back(m.before.addr.str());
  auto note = recover_job(ctx, *journal, covered, o.force);
  if (!note) return std::unexpected(note.error());
  if (*note) {
    // Undoing an old job changed the devices; plan again from what is there now.
    plan = make_plan(*journal);
    if (!plan) return std::unexpected(plan.error());
    plan->notes.push_back(**note);
  }
  auto outcome = execute(ctx, *plan, *journal);
  if (!outcome) return std::unexpected(outcome.error());
  print_outcome(plan->op, *outcome, o.common.json, out);
  return Exit::ok;
}

// pt-bind boot: driver_override=vfio-pci on every function pt.conf claims,
// vfio-pci loaded, each function verified on it.
Result<Exit> cmd_boot(const Options& o, Context& ctx, std::ostream& out) {
  auto conf = load_conf(ctx.root);
  if (!conf) return std::unexpected(conf.error());
  auto finish = [&](const Plan& plan, const std::vector<std::string>& skipped,
                    const Outcome* oc) -> Exit {
    if (o.common.json) {
      json j;
      j["op"] = "boot";
      j["dry_run"] = oc == nullptr;
      j["skipped"] = skipped;
      json fs = json::array();
      if (oc)
        for (const auto& m : oc->moves)
          fs.push_back({{"device", m.device},
                        {"from", nullable(m.from)},
                        {"to", nullable(m.to)},
                        {"result", m.already ? "already" : "moved"}});
      else
        for (const auto& m : plan.moves)
          fs.push_back({{"device", m.before.addr.str()},
                        {"from", nullable(m.before.driver)},
                        {"to", "vfio-pci"},
                        {"result", m.already ? "already" : "planned"}});
      j["functions"] = fs;
      out << j.dump(2) << "\n";
    } else {
      for (const auto& s : skipped) out << "skipped: " << s << "\n";
      if (plan.moves.empty())
        out << "boot: " << conf->path << " claims no present function for vfio-pci\n";
      if (oc)
        print_outcome("boot", *oc, false, out);
      else
        print_plan(plan, false, out);
    }
    return skipped.empty() ? Exit::ok : Exit::failed;
  };
  auto lock = lock_unless_dry_run(ctx.root, ctx.dry_run, ctx.lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  auto journal = load_journal(ctx.root);
  if (!journal) return std::unexpected(journal.error());
  std::vector<std::string> skipped;
  auto plan = plan_boot(ctx, *conf, *journal, o.force, skipped);
  if (!plan) return std::unexpected(plan.error());
  if (ctx.dry_run) return finish(*plan, skipped, nullptr);
  Outcome none;
  if (plan->moves.empty()) return finish(*plan, skipped, &none);
  auto outcome = execute(ctx, *plan, *journal);
  if (!outcome) return std::unexpected(outcome.error());
  return finish(*plan, skipped, &*outcome);
}

Result<Exit> cmd_udev_rules(const Options&, Context& ctx, std::ostream& out) {
  auto conf = load_conf(ctx.root);
  if (!conf) return std::unexpected(conf.error());
  out << udev_rules(*conf);
  return Exit::ok;
}

// pt-bind udev-match BDF: udev's IMPORT{program} of the packaged rules. It
// reads pt.conf and the function's IDs and nothing else, to stay fast.
Result<Exit> cmd_udev_match(const Options& o, Context& ctx, std::ostream& out) {
  if (o.devices.size() != 1) return usage_error("udev-match", "takes exactly one device");
  auto addr = parse_sysfs_name(o.devices[0]);
  if (!addr)
    return usage_error("'" + o.devices[0] + "'",
                       "udev-match takes the kernel's name, like 0000:3b:00.0");
  auto conf = load_conf(ctx.root);
  if (!conf) return std::unexpected(conf.error());
  auto dev = read_device(ctx.root, *addr);
  if (!dev) return Exit::ok;  // a function already gone has nothing to match
  out << udev_match(*conf, *addr, dev->vendor, dev->device);
  return Exit::ok;
}

// pt-bind boot-check: is pt, its configuration and vfio-pci in the initramfs,
// and is the configuration there current?
Result<Exit> cmd_boot_check(const Options& o, Context& ctx, std::ostream& out) {
  std::string image = o.initramfs;
  if (!image.empty() && !path_exists(ctx.root.path(image)))
    return usage_error(
        "--initramfs " + image,
        "no such file; name an initramfs image, such as /boot/initrd.img-$(uname -r)");
  if (image.empty()) {
    auto found = default_initramfs(ctx.root);
    if (!found) return std::unexpected(found.error());
    image = *found;
  }
  auto reader = make_initramfs_reader(ctx.root);
  auto bc = boot_check(ctx.root, *reader, image, PT_SBINDIR);
  if (!bc) return std::unexpected(bc.error());
  if (o.common.json) {
    json j{{"initramfs", bc->image},
           {"builder", reader->flavor()},
           {"ok", bc->ok},
           {"problems", bc->problems},
           {"verdict", bc->problems.empty() ? "ok" : "problems"}};
    out << j.dump(2) << "\n";
  } else {
    out << bc->image << " (" << reader->flavor() << ")\n";
    for (const auto& s : bc->ok) out << "  ok: " << s << "\n";
    for (const auto& s : bc->problems) out << "  problem: " << s << "\n";
  }
  return bc->problems.empty() ? Exit::ok : Exit::failed;
}

// The directory of the running tool: the other tools of the kit sit beside it.
std::string tool_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/usr/sbin";
  std::string self(buf, size_t(n));
  return self.substr(0, self.rfind('/'));
}

// pt-bind recover DEV: the steps pt.conf lists for DEV, each as its own tool,
// stopping at the first that fails with that step's exit status.
Result<Exit> cmd_recover(const Options& o, Context& ctx, std::ostream& out) {
  if (o.devices.size() != 1) return usage_error("recover", "takes exactly one device");
  auto spec = parse_device_spec(o.devices[0]);
  if (!spec) return std::unexpected(spec.error());
  if (!spec->func)
    return usage_error("'" + spec->input + "'", "recover takes one function, like 0000:3b:00.0");
  const PciAddress addr{spec->domain, spec->bus, spec->dev, *spec->func};
  auto conf = load_conf(ctx.root);
  if (!conf) return std::unexpected(conf.error());
  const DeviceConf* d = conf->find(addr);
  if (!d)
    return fail(
        addr.str(),
        "no [device.NAME] table in " + conf->path + " names it; add one with a recover list",
        ENOENT);
  if (d->recover.empty())
    return fail(addr.str(), "[device." + d->name + "] in " + conf->path + " lists no recover steps",
                ENOENT);
  const std::string dir = tool_dir();
  const std::string root = ctx.root.is_real() ? "/" : ctx.root.dir();
  // One lock for the whole sequence, handed to each step through
  // PT_LOCK_FD, so no other pt command slips in between two steps.
  auto lock = lock_unless_dry_run(ctx.root, ctx.dry_run, ctx.lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  const int lock_fd = *lock ? (*lock)->fd() : -1;
  const std::string lock_fd_text = std::to_string(lock_fd);
  for (const auto& step : d->recover) {
    auto argv = step_argv(step, d->bdf, dir, root);
    std::string line;
    for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
    if (step.name == "reset") {
      // A reset belongs before the attach; once the host driver has the
      // device (udev starts us on its bind) resetting it would pull it away.
      const std::string drv =
          link_basename(ctx.root.path("/sys/bus/pci/devices/" + d->bdf.str() + "/driver"))
              .value_or("");
      if (drv != "vfio-pci") {
        out << "recover " << d->bdf.str() << ": skip reset: the function is on "
            << (drv.empty() ? "no driver" : drv) << ", not vfio-pci\n";
        continue;
      }
    }
    if (ctx.dry_run) {
      out << "recover " << d->bdf.str() << ": would run " << line << "\n";
      continue;
    }
    out << "recover " << d->bdf.str() << ": " << step.name << ": " << line << "\n" << std::flush;
    auto start = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    if (pid < 0) return fail(argv[0], "cannot start the step", errno);
    if (pid == 0) {
      if (lock_fd >= 0) {
        // The lock's descriptor is close-on-exec; this one copy survives.
        int flags = ::fcntl(lock_fd, F_GETFD);
        if (flags < 0 || ::fcntl(lock_fd, F_SETFD, flags & ~FD_CLOEXEC) < 0) _exit(126);
        ::setenv(kLockFdEnv, lock_fd_text.c_str(), 1);
      }
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      _exit(127);
    }
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    out << "recover " << d->bdf.str() << ": " << step.name << " exited " << rc << " after " << ms
        << " ms\n";
    if (rc == 127)
      return fail(argv[0], "the step's tool is missing; install the whole pt kit", ENOENT);
    if (rc != 0) {
      Error e{0, d->bdf.str(),
              "recovery stopped at step '" + step.name + "' (exit " + std::to_string(rc) + ")",
              Exit(rc)};
      return std::unexpected(e);
    }
  }
  out << "recover " << d->bdf.str() << ": done\n";
  return Exit::ok;
}

}  // namespace

Result<Exit> run_in(const Options& o, Context& ctx, std::ostream& out) {
  if (o.command == "list") return cmd_list(o, ctx, out);
  if (o.command == "show") return cmd_show(o, ctx, out);
  if (o.command == "boot") return cmd_boot(o, ctx, out);
  if (o.command == "udev-rules") return cmd_udev_rules(o, ctx, out);
  if (o.command == "udev-match") return cmd_udev_match(o, ctx, out);
  if (o.command == "boot-check") return cmd_boot_check(o, ctx, out);
  if (o.command == "recover") return cmd_recover(o, ctx, out);
  if (o.command == "detach" || o.command == "attach" || o.command == "set" || o.command == "unset")
    return cmd_mutate(o, ctx, out);
  return usage_error(o.command, "unknown command; see pt-bind --help");
}

Result<Exit> run(const Options& o, std::ostream& out, const ObservedWriter::Observer& on_write) {
  auto sys = open_system(o.common, on_write);
  if (!sys) return std::unexpected(sys.error());
  return run_in(o, (*sys)->ctx, out);
}

}  // namespace pt::bind
