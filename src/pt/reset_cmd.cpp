#include "pt/reset_cmd.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "pt/lock.hpp"
#include "pt/power.hpp"
#include "pt/rebar.hpp"
#include "pt/render.hpp"
#include "pt/reset.hpp"
#include "pt/sysfs.hpp"
#include "pt/system.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"

namespace pt::reset {

using nlohmann::json;

namespace {

using render::pad;

Result<Exit> cmd_methods(const CliOptions& o, Context& ctx, std::ostream& out) {
  const auto specs = PT_TRY(target::parse_all(o.devices));
  const auto all = PT_TRY(scan_near(ctx.root, specs));
  std::vector<Device> devices;
  for (const auto& spec : specs) {
    auto found = PT_TRY(target::resolve(all, spec, target::any()));
    devices.insert(devices.end(), found.begin(), found.end());
  }
  bool kernel_knows = kernel_has_reset_method(ctx.root, all);
  json arr = json::array();
  std::string text;
  for (const auto& d : devices) {
    const auto cfg = PT_TRY(load_config(ctx.root, d.addr));
    auto dm = detect(ctx.root, d, cfg, all, kernel_knows);
    json ms = json::array();
    text += d.addr.str() + "  " + id_string(d) + "  " +
            (d.driver.empty() ? "no driver" : d.driver) + "\n";
    text += "  " + pad("METHOD", 17) + pad("OURS", 6) + pad("KERNEL", 8) + "REASON\n";
    for (const auto& m : dm.methods) {
      ms.push_back({{"name", m.name},
                    {"available", m.available},
                    {"kernel", m.kernel ? json(*m.kernel) : json(nullptr)},
                    {"reason", m.reason}});
      text += "  " + pad(m.name, 17) +
              pad(!m.known      ? "?"
                  : m.available ? "yes"
                                : "no",
                  6) +
              pad(m.kernel ? (*m.kernel ? "yes" : "no") : "-", 8) + m.reason +
              (m.disagrees() ? "  [kernel disagrees]" : "") + "\n";
    }
    // Which of these can wake a function stuck in D3: power's one wording.
    auto stuck = power::stuck_advice(d, cfg, power::read(ctx.root, d),
                                     read_attr(ctx.root, d.sysfs("power_state")).value_or(""),
                                     dm.methods);
    if (stuck) text += "  warning: " + *stuck + "\n";
    arr.push_back({{"device", d.addr.str()},
                   {"methods", ms},
                   {"stuck", stuck ? json(*stuck) : json(nullptr)}});
  }
  if (!kernel_knows)
    text +=
        "note: this kernel has no reset_method attribute (before 5.15): the kernel column is '-'\n";
  if (o.common.json)
    render::emit(out, arr);
  else
    out << render::printable(text, true);
  return Exit::ok;
}

std::string ms(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

Result<Exit> cmd_reset(const CliOptions& o, Context& ctx, std::ostream& out) {
  const auto specs = PT_TRY(target::parse_all(o.devices));
  if (specs.empty()) return usage_error("pt-reset", "needs at least one device");
  Options options{o.method, o.force};
  if (ctx.dry_run) {
    const auto jobs = PT_TRY(plan(ctx, specs, options));
    json arr = json::array();
    std::string text =
        "dry run: " + std::to_string(jobs.size()) + " reset(s); nothing is changed\n";
    for (const auto& j : jobs) {
      std::vector<std::string> devs;
      for (const auto& d : j.devices) devs.push_back(d.addr.str());
      auto writes = describe(j, ctx.root);
      arr.push_back({{"devices", devs},
                     {"method", j.method},
                     {"via", j.via_kernel ? "kernel" : "pt"},
                     {"steps", writes}});
      text += "  " + render::join(devs, " ") + "  " + j.method + " (via " +
              (j.via_kernel ? "the kernel" : "pt") + ")\n";
      for (const auto& w : writes) text += "    " + w + "\n";
    }
    if (o.common.json)
      render::emit(out, arr);
    else
      out << render::printable(text, true);
    return Exit::ok;
  }
  const auto lock = PT_TRY(Lock::acquire(ctx.root, ctx.lock_timeout, ctx.on_wait));
  const auto jobs = PT_TRY(plan(ctx, specs, options));
  const auto outcomes = PT_TRY(perform(ctx, jobs));
  json arr = json::array();
  std::string text;
  for (const auto& oc : outcomes) {
    for (const auto& d : oc.devices) {
      json phases = {{"prepare", oc.phases.prepare},
                     {"reset", oc.phases.reset},
                     {"wait_ready", oc.phases.wait_ready},
                     {"restore", oc.phases.restore},
                     {"verify", oc.phases.verify}};
      json rebar = json::array();
      std::string rebar_text;
      for (const auto& r : oc.rebar) {
        if (r.device != d) continue;
        rebar.push_back({{"bar", r.bar},
                         {"before", rebar::size_name(r.before)},
                         {"after_reset", rebar::size_name(r.after_reset)},
                         {"restored_via", r.via}});
        rebar_text += "  note: " + d + " BAR " + std::to_string(r.bar) + " came back " +
                      rebar::size_name(r.after_reset) + "; restored to " + rebar::size_name(r.before) +
                      (r.via == "resize" ? " through resource" + std::to_string(r.bar) + "_resize"
                                         : " in its Resizable BAR control register") +
                      ", verified\n";
      }
      arr.push_back({{"device", d},
                     {"method", oc.method},
                     {"via", oc.via},
                     {"result", "ok"},
                     {"total_ms", oc.total_ms},
                     {"phases_ms", phases},
                     {"rebar_restored", rebar}});
      text += d + "  " + oc.method + "  ok  " + ms(oc.total_ms) + " ms";
      if (o.common.verbose)
        text += " (prepare " + ms(oc.phases.prepare) + ", reset " + ms(oc.phases.reset) +
                ", wait-ready " + ms(oc.phases.wait_ready) + ", restore " + ms(oc.phases.restore) +
                ", verify " + ms(oc.phases.verify) + ")";
      text += "\n" + rebar_text;
    }
  }
  if (o.common.json)
    render::emit(out, arr);
  else
    out << render::printable(text, true);
  return Exit::ok;
}

}  // namespace

Result<Exit> run_in(const CliOptions& o, Context& ctx, std::ostream& out) {
  // Every address form has a ':'; a word without one is a mistyped command
  // ("pt-reset method 01:00.0"), which must not read as a missing device.
  for (const auto& word : o.devices)
    if (word.find(':') == std::string::npos)
      return usage_error("'" + word + "'",
                         "is neither a command nor a device; the command is 'methods', a device "
                         "is written 0000:01:00.0, 01:00.0 or 01:00 (see pt-reset --help)");
  if (o.method) PT_TRY(check_method(*o.method, "--method"));
  if (o.command == "methods") return cmd_methods(o, ctx, out);
  return cmd_reset(o, ctx, out);
}

Result<Exit> run(const CliOptions& o, std::ostream& out, const ObservedWriter::Observer& on_write) {
  auto sys = PT_TRY(open_system(o.common, on_write));
  return run_in(o, sys->ctx, out);
}

}  // namespace pt::reset
