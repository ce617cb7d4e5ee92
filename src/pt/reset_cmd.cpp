#include "pt/reset_cmd.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "pt/bind.hpp"
#include "pt/bind_cmd.hpp"
#include "pt/lock.hpp"
#include "pt/reset.hpp"
#include "pt/system.hpp"

namespace pt::reset {

using nlohmann::json;

namespace {

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

Result<std::vector<DeviceSpec>> parse_specs(const std::vector<std::string>& devices) {
  std::vector<DeviceSpec> specs;
  for (const auto& s : devices) {
    auto spec = parse_device_spec(s);
    if (!spec) return std::unexpected(spec.error());
    specs.push_back(*spec);
  }
  return specs;
}

Result<Exit> cmd_methods(const CliOptions& o, Context& ctx, std::ostream& out) {
  auto specs = parse_specs(o.devices);
  if (!specs) return std::unexpected(specs.error());
  auto all = scan_near(ctx.root, *specs);
  if (!all) return std::unexpected(all.error());
  std::vector<Device> devices;
  for (const auto& spec : *specs) {
    auto found = bind::resolve_any(*all, spec);
    if (!found) return std::unexpected(found.error());
    devices.insert(devices.end(), found->begin(), found->end());
  }
  bool kernel_knows = kernel_has_reset_method(ctx.root, *all);
  json arr = json::array();
  std::string text;
  for (const auto& d : devices) {
    auto cfg = load_config(ctx.root, d.addr);
    if (!cfg) return std::unexpected(cfg.error());
    auto dm = detect(ctx.root, d, *cfg, *all, kernel_knows);
    json ms = json::array();
    text += d.addr.str() + "  " + id_string(d) + "  " + (d.driver.empty() ? "no driver" : d.driver) + "\n";
    text += "  " + pad("METHOD", 17) + pad("OURS", 6) + pad("KERNEL", 8) + "REASON\n";
    for (const auto& m : dm.methods) {
      ms.push_back({{"name", m.name},
                    {"available", m.available},
                    {"kernel", m.kernel ? json(*m.kernel) : json(nullptr)},
                    {"reason", m.reason}});
      text += "  " + pad(m.name, 17) + pad(m.available ? "yes" : "no", 6) +
              pad(m.kernel ? (*m.kernel ? "yes" : "no") : "-", 8) + m.reason +
              (m.disagrees() ? "  [kernel disagrees]" : "") + "\n";
    }
    arr.push_back({{"device", d.addr.str()}, {"methods", ms}});
  }
  if (!kernel_knows) text += "note: this kernel has no reset_method attribute (before 5.15): the kernel column is '-'\n";
  if (o.common.json)
    out << arr.dump(2) << "\n";
  else
    out << text;
  return Exit::ok;
}

std::string ms(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

Result<Exit> cmd_reset(const CliOptions& o, Context& ctx, std::ostream& out) {
  auto specs = parse_specs(o.devices);
  if (!specs) return std::unexpected(specs.error());
  if (specs->empty()) return usage_error("pt-reset", "needs at least one device");
  Options options{o.method, o.force};
  if (ctx.dry_run) {
    auto jobs = plan(ctx, *specs, options);
    if (!jobs) return std::unexpected(jobs.error());
    json arr = json::array();
    std::string text = "dry run: " + std::to_string(jobs->size()) + " reset(s); nothing is changed\n";
    for (const auto& j : *jobs) {
      std::vector<std::string> devs;
      for (const auto& d : j.devices) devs.push_back(d.addr.str());
      auto writes = describe(j, ctx.root);
      arr.push_back({{"devices", devs}, {"method", j.method}, {"via", j.via_kernel ? "kernel" : "pt"}, {"steps", writes}});
      std::string list;
      for (const auto& d : devs) list += (list.empty() ? "" : " ") + d;
      text += "  " + list + "  " + j.method + " (via " + (j.via_kernel ? "the kernel" : "pt") + ")\n";
      for (const auto& w : writes) text += "    " + w + "\n";
    }
    if (o.common.json)
      out << arr.dump(2) << "\n";
    else
      out << text;
    return Exit::ok;
  }
  auto lock = Lock::acquire(ctx.root, ctx.lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  auto jobs = plan(ctx, *specs, options);
  if (!jobs) return std::unexpected(jobs.error());
  auto outcomes = perform(ctx, *jobs);
  if (!outcomes) return std::unexpected(outcomes.error());
  json arr = json::array();
  std::string text;
  for (const auto& oc : *outcomes) {
    for (const auto& d : oc.devices) {
      json phases = {{"prepare", oc.phases.prepare},
                     {"reset", oc.phases.reset},
                     {"wait_ready", oc.phases.wait_ready},
                     {"restore", oc.phases.restore},
                     {"verify", oc.phases.verify}};
      arr.push_back({{"device", d}, {"method", oc.method}, {"via", oc.via}, {"result", "ok"},
                     {"total_ms", oc.total_ms}, {"phases_ms", phases}});
      text += d + "  " + oc.method + "  ok  " + ms(oc.total_ms) + " ms";
      if (o.common.verbose)
        text += " (prepare " + ms(oc.phases.prepare) + ", reset " + ms(oc.phases.reset) + ", wait-ready " +
                ms(oc.phases.wait_ready) + ", restore " + ms(oc.phases.restore) + ", verify " + ms(oc.phases.verify) +
                ")";
      text += "\n";
    }
  }
  if (o.common.json)
    out << arr.dump(2) << "\n";
  else
    out << text;
  return Exit::ok;
}

}  // namespace

Result<Exit> run_in(const CliOptions& o, Context& ctx, std::ostream& out) {
  if (o.command == "methods") return cmd_methods(o, ctx, out);
  return cmd_reset(o, ctx, out);
}

Result<Exit> run(const CliOptions& o, std::ostream& out, const ObservedWriter::Observer& on_write) {
  auto sys = open_system(o.common, on_write);
  if (!sys) return std::unexpected(sys.error());
  return run_in(o, (*sys)->ctx, out);
}

}  // namespace pt::reset
