#include "pt/state_cmd.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "pt/conf_file.hpp"
#include "pt/journal.hpp"
#include "pt/metrics.hpp"
#include "pt/recover.hpp"
#include "pt/recover_cmd.hpp"
#include "pt/render.hpp"
#include "pt/reset.hpp"
#include "pt/state.hpp"
#include "pt/system.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"

namespace pt::state {

using nlohmann::json;
using render::join;

namespace {

std::string or_none(const std::string& s, const char* none = "none") {
  return s.empty() ? none : s;
}

std::string vga_text(const Vga& v) {
  return "decodes " + v.decodes + ", owns " + v.owns + ", locks " + v.locks + " (" +
         std::to_string(v.io_locks) + ":" + std::to_string(v.mem_locks) + ")";
}

std::string hex16(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", unsigned(v));
  return buf;
}

// One screen: a block per function, the consoles, the journal, then what
// is in the way of passthrough.
void print_status(const Snapshot& s, std::ostream& out) {
  std::string t;
  auto line = [&](const char* label, const std::string& value) {
    t += "  " + render::pad(label, 17) + value + "\n";
  };
  for (const auto& f : s.functions) {
    t += f.bdf + "  " + f.vendor + ":" + f.device_id + "  " +
         (f.class_name.empty() ? "class " + f.class_id : f.class_name + " (" + f.class_id + ")");
    // As lspci and pt-bind list name it (name_string): a device pci.ids does
    // not list under its vendor is "Device ID".
    if (f.vendor_name)
      t += "  " + *f.vendor_name + " " + f.device_name.value_or("Device " + f.device_id);
    t += f.in_slot ? "\n" : "  (same IOMMU group)\n";
    line("driver",
         or_none(f.driver) +
             (f.driver_override.empty() ? "" : "  (driver_override " + f.driver_override + ")"));
    line("iommu group", f.iommu_group ? std::to_string(*f.iommu_group) + "  " +
                                            or_none(f.vfio_node, "no /dev/vfio node")
                                      : std::string("none"));
    std::string power = f.power_state.empty() ? "" : f.power_state;
    if (!f.pm_state.empty()) power += (power.empty() ? "" : ", ") + ("PMCSR " + f.pm_state);
    if (!f.runtime_status.empty())
      power += (power.empty() ? "" : ", ") +
               ("runtime " + f.runtime_status +
                (f.runtime_control.empty() ? "" : " (control " + f.runtime_control + ")"));
    if (f.d3cold_allowed)
      power += (power.empty() ? "" : ", ") + std::string("d3cold ") +
               (*f.d3cold_allowed ? "allowed" : "forbidden");
    if (f.vfio_disable_idle_d3)
      power += (power.empty() ? "" : ", ") + std::string("vfio-pci idle d3 ") +
               (*f.vfio_disable_idle_d3 ? "disabled" : "enabled");
    line("power", or_none(power, "unknown"));
    line("command", f.command
                        ? hex16(*f.command) + "  " + or_none(join(command_bits(*f.command), " "))
                        : std::string("unreadable"));
    if (f.link) {
      const Link& l = *f.link;
      const bool down = l.speed != l.max_speed || l.width != l.max_width;
      line("link", or_none(l.speed, "?") + " x" + std::to_string(l.width) + " of " +
                       or_none(l.max_speed, "?") + " x" + std::to_string(l.max_width) +
                       (down ? "  (below capability)" : ""));
    }
    if (f.aer)
      line("aer", "correctable " + std::to_string(f.aer->correctable) + ", nonfatal " +
                      std::to_string(f.aer->nonfatal) + ", fatal " + std::to_string(f.aer->fatal));
    line("reset", "kernel " +
                      (f.kernel_reset_methods ? or_none(join(*f.kernel_reset_methods, " "))
                                              : std::string("(no reset_method)")) +
                      "; pt-reset " + or_none(join(f.reset_methods, " ")));
    if (f.vga)
      line("vga arbiter", vga_text(*f.vga));
    else if (!f.vga_error.empty())
      line("vga arbiter", "unknown: " + f.vga_error);
    if (f.boot_vga) line("boot_vga", *f.boot_vga ? "1" : "0");
    if (!f.framebuffers.empty()) line("framebuffers", join(f.framebuffers, ", "));
    for (const auto& fw : f.firmware)
      line("firmware fb", fw.name + " (" + or_none(fw.driver, "unbound") + ", by " + fw.how + ")");
    if (f.drm) {
      const Drm& d = *f.drm;
      line("drm",
           d.card + "  " + d.node + (d.node_exists ? "" : " (missing)") +
               (d.render.empty() ? "" : "  " + d.render) + "  kms " + d.kms + "  " + d.verdict +
               (d.fbcon_on_card ? (*d.fbcon_on_card ? ", fbcon on it" : ", fbcon elsewhere") : ""));
      if (!d.kms_error.empty()) line("", d.kms_error);
      for (const auto& c : d.connectors)
        line("", c.name + " " + or_none(c.status, "?") + " " + or_none(c.enabled, "?") + " dpms " +
                     or_none(c.dpms, "?") + ", " + std::to_string(c.modes) + " modes");
    }
    std::string hs;
    for (const auto& h : f.holders)
      hs += (hs.empty() ? "" : ", ") + h.command + " (pid " + std::to_string(h.pid) + ") " + h.node;
    line("holders", or_none(hs));
    if (f.journal)
      line("journal", "detached from " + or_none(f.journal->from_driver, "no driver") + " to " +
                          or_none(f.journal->to) + (f.journal->boot ? " at boot" : ""));
    if (f.journal_vga)
      line("journal vga",
           "recorded decodes " + f.journal_vga->decodes + ", owns " + f.journal_vga->owns);
    if (!f.journal_consoles.empty()) line("journal console", join(f.journal_consoles, ", "));
  }
  std::string vts;
  for (const auto& v : s.vtconsoles)
    vts += (vts.empty() ? "" : ", ") + (v.mark.empty() ? "" : "(" + v.mark + ") ") + v.name +
           (v.bound ? " bound" : " unbound");
  t += "consoles: " + or_none(vts) + "; active " + or_none(s.active_vt, "unknown") + "\n";
  if (s.con2fb) t += "fbcon map: " + or_none(con2fb_text(*s.con2fb)) + " (consoles=fb)\n";
  t += "journal: " +
       (s.journal_error.empty() ? (s.journal_job.empty() ? std::string("no job in flight")
                                                         : "job " + s.journal_job + " in flight")
                                : "unreadable: " + s.journal_error) +
       "\n";
  for (const auto& w : s.warnings)
    t += "warning: " + (w.device.empty() ? "" : w.device + ": ") + w.message + "\n";
  out << render::printable(t, true);
}

Result<Snapshot> collect_now(Context& ctx, drm::Backend& backend, const std::string& device) {
  return collect(ctx.root, device, Sources{ctx.arbiter, &backend, ctx.modules});
}

Result<Exit> cmd_status(const Options& o, Context& ctx, drm::Backend& backend, std::ostream& out) {
  const auto s = PT_TRY(collect_now(ctx, backend, o.device));
  if (o.common.json)
    render::emit(out, to_json(s));
  else
    print_status(s, out);
  return Exit::ok;
}

Result<Exit> cmd_snapshot(const Options& o, Context& ctx, drm::Backend& backend,
                          std::ostream& out) {
  if (o.output.empty()) return usage_error("snapshot", "needs -o FILE");
  const auto s = PT_TRY(collect_now(ctx, backend, o.device));
  json doc = to_json(s);
  doc["format"] = kFormat;
  // The file is the user's, not the system's: written beside itself and
  // renamed, so an interrupted run leaves the old snapshot whole.
  const std::string tmp = o.output + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) return fail(o.output, "cannot write the snapshot there", errno);
    render::emit(f, doc);
    f.flush();
    if (!f) return fail(o.output, "cannot write the snapshot there", errno);
  }
  if (std::rename(tmp.c_str(), o.output.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return fail(o.output, "cannot write the snapshot there", err);
  }
  if (o.common.json)
    render::emit(out, {{"file", o.output}, {"functions", s.functions.size()}});
  else
    out << render::printable(o.output) << ": " << s.functions.size() << " function(s) of "
        << render::printable(s.device) << "\n";
  return Exit::ok;
}

Result<Exit> cmd_diff(const Options& o, Context& ctx, drm::Backend& backend, std::ostream& out) {
  if (o.files.empty() || o.files.size() > 2)
    return usage_error("diff", "takes a snapshot and, optionally, a second one (default: now)");
  const auto a = PT_TRY(load(o.files[0]));
  const auto b =
      o.files.size() == 2 ? PT_TRY(load(o.files[1])) : PT_TRY(collect_now(ctx, backend, a.device));
  const auto changes = diff(a, b);
  if (o.common.json) {
    render::emit(out, {{"same", changes.empty()}, {"changes", changes_json(changes)}});
  } else {
    std::string t;
    for (const auto& c : changes) t += c.describe() + "\n";
    if (changes.empty()) t = "no change\n";
    out << render::printable(t, true);
  }
  return changes.empty() ? Exit::ok : Exit::failed;
}

// pt recover: pt-bind recover (recover::command, --recipe included) and
// the state of each DEV's slot compared before and after.
Result<Exit> cmd_recover(const Options& o, Context& ctx, drm::Backend& backend, std::ostream& out) {
  return recover::command({.devices = o.devices,
                           .reset_method = o.reset_method,
                           .json = o.common.json,
                           .recipe = o.recipe,
                           .tag = "pt",
                           .state_backend = &backend},
                          ctx, out);
}

// The functions pt manages: pt.conf's devices and companions, the journal's,
// and whatever is on vfio-pci.
std::vector<std::string> managed_functions(const Root& root, const Journal& journal, const Conf& conf) {
  std::vector<std::string> out;
  auto add = [&](const std::string& bdf) {
    if (std::find(out.begin(), out.end(), bdf) == out.end()) out.push_back(bdf);
  };
  for (const auto& d : conf.devices) {
    add(d.bdf.str());
    for (const auto& c : d.companions) add(c.str());
  }
  for (const auto& [bdf, e] : journal.devices) add(bdf);
  for (const auto& name : list_dir(root.path("/sys/bus/pci/drivers/vfio-pci")))
    if (parse_sysfs_name(name)) add(name);
  return out;
}

Result<Exit> cmd_metrics(const Options& o, Context& ctx, drm::Backend& backend, std::ostream& out) {
  const std::string output = o.output.empty() ? metrics::kTextfilePath : o.output;
  const Journal journal = PT_TRY(load_journal(ctx.root));
  const Conf conf = PT_TRY(load_conf(ctx.root));
  metrics::Inputs in;
  in.journal_pending = journal.job.has_value();
  in.counters = PT_TRY(metrics::load(ctx.root));
  std::vector<std::string> seen;
  for (const auto& bdf : managed_functions(ctx.root, journal, conf)) {
    if (std::find(seen.begin(), seen.end(), bdf) != seen.end()) continue;
    // A configured device that is not there (another machine's pt.conf, a
    // card taken out) has nothing to show; the others still do.
    auto s = collect(ctx.root, bdf, {ctx.arbiter, &backend, ctx.modules});
    if (!s) continue;
    for (const auto& f : s->functions) {
      if (!f.in_slot || std::find(seen.begin(), seen.end(), f.bdf) != seen.end()) continue;
      seen.push_back(f.bdf);
      metrics::Function m{f.bdf, "0x" + f.vendor, "0x" + f.device_id, f.driver,
                          f.journal ? f.journal->to : "", std::nullopt};
      if (f.drm && (f.drm->verdict == "healthy" || f.drm->verdict == "degraded"))
        m.display_healthy = f.drm->verdict == "healthy";
      in.functions.push_back(std::move(m));
    }
  }
  const std::string text = metrics::render(in);
  if (output == "-") {
    out << text;
    return Exit::ok;
  }
  PT_TRY(metrics::write_textfile(ctx.root, output, text));
  return Exit::ok;
}

}  // namespace

Result<Exit> run_in(const Options& o, Context& ctx, drm::Backend& backend, std::ostream& out) {
  if (o.command == "status") return cmd_status(o, ctx, backend, out);
  if (o.command == "snapshot") return cmd_snapshot(o, ctx, backend, out);
  if (o.command == "diff") return cmd_diff(o, ctx, backend, out);
  if (o.command == "recover") return cmd_recover(o, ctx, backend, out);
  if (o.command == "metrics") return cmd_metrics(o, ctx, backend, out);
  return usage_error(o.command, "unknown command; see pt --help");
}

Result<Exit> run(const Options& o, std::ostream& out, const ObservedWriter::Observer& on_write) {
  auto sys = PT_TRY(open_system(o.common, on_write));
  auto backend =
      drm::make_bounded_backend(drm::make_backend(sys->ctx.root), sys->ctx.root, sys->ctx.timeout);
  return run_in(o, sys->ctx, *backend, out);
}

}  // namespace pt::state
