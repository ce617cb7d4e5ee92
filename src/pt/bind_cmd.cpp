#include "pt/bind_cmd.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "pt/bind.hpp"
#include "pt/boot_cmd.hpp"
#include "pt/export.hpp"
#include "pt/holders.hpp"
#include "pt/lock.hpp"
#include "pt/modules.hpp"
#include "pt/pci.hpp"
#include "pt/pci_config.hpp"
#include "pt/power.hpp"
#include "pt/rebar.hpp"
#include "pt/render.hpp"
#include "pt/sriov_cmd.hpp"
#include "pt/system.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"

namespace pt::bind {

using nlohmann::json;
using render::emit;

namespace {

using render::join;
using render::nullable;
using render::pad;

std::string class_hex(const Device& d) {
  return render::class_hex(d.class_id());
}

std::vector<std::string> companions(const std::vector<Device>& all, const Device& d) {
  std::vector<std::string> out;
  for (const auto& o : all)
    if (o.addr != d.addr && o.addr.same_slot(d.addr)) out.push_back(o.addr.str());
  return out;
}

// The list schema, documented in pt-bind(8); show extends it.
json device_json(const std::vector<Device>& all, const Device& d) {
  json j;
  j["device"] = d.addr.str();
  j["vendor"] = hex4(d.vendor);
  j["device_id"] = hex4(d.device);
  j["class"] = class_hex(d);
  j["class_name"] = nullable(d.class_name);
  j["vendor_name"] = nullable(d.vendor_name);
  j["device_name"] = nullable(d.device_name);
  j["driver"] = nullable(d.driver);
  j["iommu_group"] = d.iommu_group ? json(*d.iommu_group) : json(nullptr);
  j["boot_vga"] = d.boot_vga ? json(*d.boot_vga) : json(nullptr);
  j["reset_methods"] = d.reset_methods ? json(*d.reset_methods) : json(nullptr);
  j["companions"] = companions(all, d);
  return j;
}

json acs_json(uint16_t bits) {
  return {{"sv", (bits & reg::kAcsSv) != 0}, {"tb", (bits & reg::kAcsTb) != 0},
          {"rr", (bits & reg::kAcsRr) != 0}, {"cr", (bits & reg::kAcsCr) != 0},
          {"uf", (bits & reg::kAcsUf) != 0}, {"ec", (bits & reg::kAcsEc) != 0},
          {"dt", (bits & reg::kAcsDt) != 0}};
}

// The Resizable BARs: each BAR's size now and the sizes it supports.
void show_rebar(const std::vector<rebar::Bar>& bars, json& j, std::string& text) {
  json arr = json::array();
  std::string line;
  for (const auto& b : bars) {
    json sizes = json::array();
    for (int s = 0; s <= rebar::kMaxSize; ++s)
      if (b.supported >> s & 1) sizes.push_back(rebar::size_name(s));
    arr.push_back({{"bar", b.index}, {"current", rebar::size_name(b.current)},
                   {"current_mib", uint64_t(1) << b.current}, {"supported", sizes}});
    line += (line.empty() ? "" : "; ") + ("BAR " + std::to_string(b.index) + " " +
                                          rebar::size_name(b.current) + " (supports " +
                                          rebar::size_list(b.supported) + ")");
  }
  j["rebar"] = arr;
  text += "  resizable bars:   " + (line.empty() ? std::string("none") : line) + "\n";
}

// What show says about isolation: ACS, ATS and ARI of the function, and the
// bridges above it that make its IOMMU group large. Each is null (text:
// the reason) where the bytes that decide it could not be read.
void show_isolation(const Root& root, const Device& d, json& j, std::string& text) {
  auto cfg = load_config(root, d.addr, 4096);
  std::optional<std::string> why;
  if (!cfg)
    why = cfg.error().message;
  else
    why = cfg->ext_caps_unreadable();
  j["config_size"] = cfg ? json(cfg->size()) : json(nullptr);
  j["capabilities_error"] = why ? json(*why) : json(nullptr);
  if (why) {
    j["acs"] = j["ats"] = j["ari"] = j["rebar"] = nullptr;
    text += "  capabilities:     " + *why + "\n";
  } else {
    auto iso = cfg->isolation();
    json acs = {{"present", iso.acs.has_value()}};
    if (iso.acs) {
      acs["capability"] = acs_json(iso.acs->capability);
      acs["control"] = acs_json(iso.acs->control);
    }
    j["acs"] = acs;
    j["ats"] = {{"present", iso.ats}, {"enabled", iso.ats ? json(iso.ats_enabled) : json(nullptr)}};
    j["ari"] = {{"present", iso.ari}};
    text += "  acs:              " +
            (iso.acs ? "capability " + acs_bits(iso.acs->capability) + "; control " +
                           acs_bits(iso.acs->control)
                     : std::string("none")) +
            "\n";
    text += "  ats:              " +
            std::string(iso.ats ? (iso.ats_enabled ? "present, enabled" : "present, disabled")
                                : "none") +
            "\n";
    text += "  ari:              " + std::string(iso.ari ? "present" : "none") + "\n";
    show_rebar(rebar::decode(*cfg), j, text);
  }
  json path = json::array();
  for (const auto& gap : acs_gaps(root, d.addr)) {
    path.push_back(
        {{"bridge", gap.bridge.str()}, {"problem", gap.problem}, {"unknown", gap.unknown}});
    text += "  warning: " + acs_gap_warning(gap) + "\n";
  }
  j["acs_path"] = path;
}

bool class_selected(const Device& d, const std::string& cls) {
  if (cls == "display") return d.is_display();
  if (cls == "audio") return d.is_audio();
  return true;
}

Result<Exit> cmd_list(const Options& o, Context& ctx, std::ostream& out) {
  if (o.device_class != "display" && o.device_class != "audio" && o.device_class != "all")
    return usage_error("--class '" + o.device_class + "'", "must be display, audio or all");
  auto all = PT_TRY(scan_devices(ctx.root));
  if (o.common.json) {
    json arr = json::array();
    for (const auto& d : all)
      if (class_selected(d, o.device_class)) arr.push_back(device_json(all, d));
    emit(out, arr);
    return Exit::ok;
  }
  std::string text = pad("DEVICE", 14) + pad("ID", 11) + pad("CLASS", 28) + pad("DRIVER", 16) +
                     pad("GROUP", 7) + pad("BOOT", 6) + pad("RESET", 16) + pad("COMPANIONS", 14) + " NAME\n";
  for (const auto& d : all) {
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
    auto c = companions(all, d);
    const auto name = name_string(d);
    // The companions may run past their column; a space still ends them.
    text += pad(c.empty() ? "-" : join(c, ","), 14) + " " + (name.empty() ? "-" : name) + "\n";
  }
  for (const auto& h : readiness_hints(ctx.root, ctx.modules, all))
    text += "note: " + h.message + "\n";
  out << render::printable(text, true);
  return Exit::ok;
}

Result<Exit> cmd_show(const Options& o, Context& ctx, std::ostream& out) {
  if (o.devices.size() != 1) return usage_error("show", "takes exactly one device");
  auto spec = PT_TRY(parse_device_spec(o.devices[0]));
  auto all = PT_TRY(scan_devices(ctx.root));
  auto devs = PT_TRY(target::resolve(all, spec, target::any()));
  auto journal = load_journal(ctx.root);
  json arr = json::array();
  std::string text;
  for (const auto& d : devs) {
    json j = device_json(all, d);
    j["driver_override"] = nullable(d.driver_override);
    j["driver_module"] = nullable(module_of_driver(ctx.root, d.driver));
    j["parent"] = d.parent ? json(d.parent->str()) : json(nullptr);
    std::vector<std::string> members;
    if (d.iommu_group)
      for (const auto& m : group_members(ctx.root, *d.iommu_group)) members.push_back(m.str());
    j["group_members"] = members;
    std::vector<std::string> slot;
    for (const auto& x : all)
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
      static const char* kinds[] = {"mount", "swap", "net", "stacked"};
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
    std::string isolation;
    show_isolation(ctx.root, d, j, isolation);
    j["power"] = power::show_json(ctx.root, d, all);
    show_sriov(ctx.root, d.addr, j, isolation);
    arr.push_back(j);

    const auto name = name_string(d);
    text += d.addr.str() + "  " + id_string(d) + "  " +
            (d.class_name.empty() ? class_hex(d) : d.class_name) +
            (name.empty() ? "" : ": " + name) + "\n";
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
    text += isolation;
    text += power::show_text(j["power"]);
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
    emit(out, (arr.size() == 1 ? arr[0] : arr));
  else
    out << render::printable(text, true);
  return Exit::ok;
}

Result<Exit> cmd_mutate(const Options& o, Context& ctx, std::ostream& out) {
  std::vector<DeviceSpec> specs;
  for (const auto& s : o.devices) {
    auto spec = PT_TRY(parse_device_spec(s));
    specs.push_back(spec);
  }
  if (specs.empty()) return usage_error(o.command, "needs at least one device");
  // Before the lock and the journal: a bad name changes nothing at all.
  if (o.command == "detach") PT_TRY(check_driver_name(o.to, "--to"));
  if (o.command != "detach" && !o.rebar.empty()) return usage_error("--rebar", "belongs to detach");
  for (const auto& r : o.rebar) PT_TRY(rebar::parse_request(r, "--rebar"));
  if (o.command == "set") PT_TRY(check_driver_name(o.driver, "DRIVER"));
  // pt.conf's power policy: a bad key stops the detach before anything is written.
  std::optional<Conf> conf;
  if (o.command == "detach") conf = PT_TRY(load_conf(ctx.root));

  auto make_plan = [&](const Journal& journal) -> Result<Plan> {
    if (o.command == "detach")
      return plan_detach(ctx, specs, DetachOptions{o.to, o.force, o.force_group, &*conf, o.rebar},
                         journal);
    if (o.command == "attach") return plan_attach(ctx, specs, AttachOptions{o.force}, journal);
    if (o.command == "set") return plan_set(ctx, specs, o.driver, o.force, journal);
    return plan_unset(ctx, specs, o.force, journal);
  };

  if (ctx.dry_run) {
    // No lock and no state directory: a dry run writes nothing at all.
    PT_TRY(check_state_dir(ctx.root, false));
    auto journal = PT_TRY(load_journal(ctx.root));
    adopt_unrecorded_writer(ctx.root, journal);
    PT_TRY(check_stuck_write(ctx.root, journal));
    auto plan = make_plan(journal);
    if (!plan) return std::unexpected(plan.error());
    if (journal.job) {
      // The real run's recovery, planned: it refuses here as it would there.
      std::vector<std::string> covered;
      for (const auto& m : plan->moves) covered.push_back(m.before.addr.str());
      auto rec = PT_TRY(plan_recovery(ctx, journal, covered, o.force));
      plan->notes.push_back("the journal holds an interrupted " + journal.job->op + " job (pid " +
                            std::to_string(journal.job->pid) +
                            "); the real run first finishes or undoes it");
      for (auto& n : gone_notes(rec, journal)) plan->notes.push_back(std::move(n));
    }
    print_plan(*plan, o.common.json, out);
    return Exit::ok;
  }

  const auto done = PT_TRY(mutate(ctx, make_plan, o.force));
  print_outcome(done.plan.op, done.outcome, o.common.json, out);
  return Exit::ok;
}

}  // namespace

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
      json pw = json::array();
      for (size_t i = 0; i < m.power.size(); ++i)
        pw.push_back({{"path", m.power[i].path},
                      {"value", m.power[i].value},
                      {"was", i < m.power_undo.size() ? json(m.power_undo[i].value) : json(nullptr)}});
      fs.push_back({{"device", m.before.addr.str()},
                    {"from", nullable(m.before.driver)},
                    {"to", nullable(m.to_driver)},
                    {"result", m.already ? "already" : "planned"},
                    {"note", nullable(m.note)},
                    {"writes", w},
                    {"power_writes", pw}});
    }
    j["functions"] = fs;
    emit(out, j);
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
    for (size_t i = 0; i < m.power.size(); ++i)
      t += "    write " + m.power[i].path + " " + show_value(m.power[i].value) +
           (i < m.power_undo.size() ? " (now " + show_value(m.power_undo[i].value) + ")" : "") +
           ", then read it back\n";
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
    emit(out, j);
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

// pt-bind export FORMAT DEV: another engine's configuration entry for DEV.
Result<Exit> cmd_export(const Options& o, Context& ctx, std::ostream& out) {
  if (o.devices.size() != 1) return usage_error("export", "takes exactly one device");
  exporter::Request r{.format = PT_TRY(exporter::parse_format(o.format)), .name = o.name};
  auto spec = PT_TRY(parse_device_spec(o.devices[0]));
  auto functions = PT_TRY(exporter::read_functions(ctx.root, spec));
  if (r.format == exporter::Format::proxmox) {
    r.node =
        o.node.empty() ? read_attr(ctx.root, "/proc/sys/kernel/hostname").value_or("") : o.node;
    if (r.node.empty())
      return fail("/proc/sys/kernel/hostname",
                  "the host name is unreadable; name the node with --node", ENOENT);
  }
  out << PT_TRY(exporter::render(functions, r));
  return Exit::ok;
}

Result<Exit> run_in(const Options& o, Context& ctx, std::ostream& out) {
  if (o.command == "list") return cmd_list(o, ctx, out);
  if (o.command == "export") return cmd_export(o, ctx, out);
  if (o.command == "show") return cmd_show(o, ctx, out);
  if (auto r = run_conf_command(o, ctx, out)) return *r;
  if (auto r = run_sriov_command(o, ctx, out)) return *r;
  if (o.command == "detach" || o.command == "attach" || o.command == "set" || o.command == "unset")
    return cmd_mutate(o, ctx, out);
  return usage_error(o.command, "unknown command; see pt-bind --help");
}

Result<Exit> run(const Options& o, std::ostream& out, const ObservedWriter::Observer& on_write) {
  auto sys = PT_TRY(open_system(o.common, on_write));
  return run_in(o, sys->ctx, out);
}

}  // namespace pt::bind
