#include "pt/boot_cmd.hpp"


#include <nlohmann/json.hpp>

#include "pt/bind.hpp"
#include "pt/boot.hpp"
#include "pt/initramfs.hpp"
#include "pt/lock.hpp"
#include "pt/recover.hpp"
#include "pt/recover_cmd.hpp"
#include "pt/render.hpp"
#include "pt/reset.hpp"
#include "pt/sriov.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"

namespace pt::bind {

using nlohmann::json;
using render::emit;

namespace {

using render::nullable;

// pt.conf with its companions checked against the devices there now.
Result<Conf> load_checked_conf(const Context& ctx) {
  auto conf = PT_TRY(load_conf(ctx.root));
  PT_TRY(boot::check_companions(ctx.root, conf));
  return conf;
}

// pt-bind boot: driver_override=vfio-pci on every function pt.conf claims,
// vfio-pci loaded, each function verified on it.
Result<Exit> cmd_boot(const Options& o, Context& ctx, std::ostream& out) {
  auto conf = PT_TRY(load_checked_conf(ctx));
  std::vector<sriov::ConfResult> vfs;  // pt.conf's vfs = N, after the claims
  auto finish = [&](const Plan& plan, const std::vector<std::string>& skipped,
                    const Outcome* oc) -> Exit {
    bool vfs_skipped = false;
    for (const auto& v : vfs) vfs_skipped |= v.skipped;
    if (o.common.json) {
      json j;
      j["vfs"] = json::array();
      for (const auto& v : vfs)
        j["vfs"].push_back(
            {{"device", v.device}, {"vfs", v.count}, {"skipped", v.skipped}, {"lines", v.lines}});
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
      emit(out, j);
    } else {
      for (const auto& s : skipped) out << "skipped: " << s << "\n";
      if (plan.moves.empty())
        out << "boot: " << conf.path << " claims no present function for vfio-pci\n";
      if (oc)
        print_outcome("boot", *oc, false, out);
      else
        print_plan(plan, false, out);
      for (const auto& v : vfs)
        for (const auto& l : v.lines) out << "vfs: " << render::printable(l) << "\n";
    }
    return skipped.empty() && !vfs_skipped ? Exit::ok : Exit::failed;
  };
  auto lock = PT_TRY(lock_unless_dry_run(ctx.root, ctx.dry_run, ctx.lock_timeout, ctx.on_wait));
  auto journal = PT_TRY(load_journal(ctx.root));
  std::vector<std::string> skipped;
  auto plan = PT_TRY(boot::plan_boot(ctx, conf, journal, o.force, skipped));
  std::vector<std::pair<PciAddress, int>> pfs;
  for (const auto& d : conf.devices)
    if (d.vfs > 0) pfs.emplace_back(d.bdf, d.vfs);
  Context held = ctx;
  held.lock_held = true;  // this run's lock covers the VFs too
  if (ctx.dry_run) {
    vfs = PT_TRY(sriov::apply_conf(held, pfs));
    return finish(plan, skipped, nullptr);
  }
  Outcome none;
  Outcome outcome;
  if (!plan.moves.empty()) outcome = PT_TRY(execute(ctx, plan, journal));
  vfs = PT_TRY(sriov::apply_conf(held, pfs));
  return finish(plan, skipped, plan.moves.empty() ? &none : &outcome);
}

Result<Exit> cmd_udev_rules(const Options&, Context& ctx, std::ostream& out) {
  auto conf = PT_TRY(load_checked_conf(ctx));
  out << boot::udev_rules(conf);
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
  auto conf = PT_TRY(load_checked_conf(ctx));
  auto dev = read_device(ctx.root, *addr);
  if (!dev) return Exit::ok;  // a function already gone has nothing to match
  out << boot::udev_match(conf, *addr, dev->vendor, dev->device);
  return Exit::ok;
}

// pt-bind boot-check: is pt, its configuration and vfio-pci in the initramfs,
// and is the configuration there current?
Result<Exit> cmd_boot_check(const Options& o, Context& ctx, std::ostream& out) {
  PT_TRY(load_checked_conf(ctx));
  std::string image = o.initramfs;
  if (!image.empty() && !path_exists(ctx.root.path(image)))
    return usage_error(
        "--initramfs " + image,
        "no such file; name an initramfs image, such as /boot/initrd.img-$(uname -r)");
  if (image.empty()) {
    auto found = PT_TRY(default_initramfs(ctx.root));
    image = found;
  }
  auto reader = make_initramfs_reader(ctx.root);
  auto bc = PT_TRY(boot_check(ctx.root, *reader, image, PT_SBINDIR));
  if (o.common.json) {
    json j{{"initramfs", bc.image},
           {"builder", reader->flavor()},
           {"ok", bc.ok},
           {"problems", bc.problems},
           {"verdict", bc.problems.empty() ? "ok" : "problems"}};
    emit(out, j);
  } else {
    out << bc.image << " (" << reader->flavor() << ")\n";
    for (const auto& s : bc.ok) out << "  ok: " << s << "\n";
    for (const auto& s : bc.problems) out << "  problem: " << s << "\n";
  }
  return bc.problems.empty() ? Exit::ok : Exit::failed;
}

// pt-bind recover DEV...: pt.conf's recover steps for the functions it
// names, pt(7)'s recipe for the others, all in this process under one lock,
// stopping at the first step that fails with that step's exit status.
Result<Exit> cmd_recover(const Options& o, Context& ctx, std::ostream& out) {
  return recover::command({.devices = o.devices,
                           .reset_method = o.reset_method,
                           .json = o.common.json,
                           .recipe = o.recipe,
                           .tag = "pt-bind"},
                          ctx, out);
}

}  // namespace

std::optional<Result<Exit>> run_conf_command(const Options& o, Context& ctx, std::ostream& out) {
  if (o.command == "boot") return cmd_boot(o, ctx, out);
  if (o.command == "udev-rules") return cmd_udev_rules(o, ctx, out);
  if (o.command == "udev-match") return cmd_udev_match(o, ctx, out);
  if (o.command == "boot-check") return cmd_boot_check(o, ctx, out);
  if (o.command == "recover") return cmd_recover(o, ctx, out);
  return std::nullopt;
}

}  // namespace pt::bind
