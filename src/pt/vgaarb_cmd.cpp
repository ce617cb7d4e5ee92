#include "pt/vgaarb_cmd.hpp"

#include <nlohmann/json.hpp>

#include "pt/journal.hpp"
#include "pt/pci.hpp"
#include "pt/render.hpp"
#include "pt/system.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"
#include "pt/vgaarb_ops.hpp"

namespace pt::vgaarb {

using nlohmann::json;

namespace {

using render::nullable;
using render::pad;

std::string class_hex(const Device& d) {
  return render::class_hex(d.class_id());
}

json row_json(const Row& r) {
  json j;
  j["device"] = r.dev.addr.str();
  j["class"] = class_hex(r.dev);
  j["driver"] = nullable(r.dev.driver);
  j["boot_vga"] = r.dev.boot_vga ? json(*r.dev.boot_vga) : json(nullptr);
  j["command_io"] = r.command ? json((*r.command & vga::kIo) != 0) : json(nullptr);
  j["command_mem"] = r.command ? json((*r.command & vga::kMem) != 0) : json(nullptr);
  j["arbitrated"] = r.arbitrated;
  if (r.status)
    j["arbiter"] = {{"count", r.status->count},
                    {"decodes", vga::state_name(r.status->decodes)},
                    {"owns", vga::state_name(r.status->owns)},
                    {"locks", vga::state_name(r.status->locks)},
                    {"io_locks", r.status->io_locks},
                    {"mem_locks", r.status->mem_locks},
                    {"line", r.line}};
  else
    j["arbiter"] = nullptr;
  j["note"] = nullable(r.note);
  return j;
}

std::string command_text(const std::optional<unsigned>& c) {
  return c ? vga::state_name(*c) : "?";
}

std::string boot_text(const Device& d) {
  return d.boot_vga ? (*d.boot_vga ? "yes" : "no") : "-";
}

Result<Exit> cmd_list(const Options& o, Context& ctx, std::ostream& out) {
  const auto survey = PT_TRY(vgaarb::survey(ctx));
  const auto& rows = survey.rows;
  const auto& arbiter = survey.arbiter;
  if (o.common.json) {
    json arr = json::array();
    for (const auto& r : rows) arr.push_back(row_json(r));
    render::emit(out, arr);
    return Exit::ok;
  }
  std::string t;
  if (!arbiter) t += "note: arbiter unavailable: " + arbiter.error().describe() + "\n";
  t += pad("DEVICE", 14) + pad("CLASS", 7) + pad("DRIVER", 14) + pad("BOOT", 6) + pad("CMD", 8) +
       pad("COUNT", 7) + pad("DECODES", 9) + pad("OWNS", 8) + "LOCKS(IO:MEM)\n";
  for (const auto& r : rows) {
    t += pad(r.dev.addr.str(), 14) + pad(class_hex(r.dev), 7) +
         pad(r.dev.driver.empty() ? "-" : r.dev.driver, 14) + pad(boot_text(r.dev), 6) +
         pad(command_text(r.command), 8);
    if (r.status) {
      const auto& s = *r.status;
      t += pad(std::to_string(s.count), 7) + pad(vga::state_name(s.decodes), 9) +
           pad(vga::state_name(s.owns), 8) + vga::state_name(s.locks) + "(" +
           std::to_string(s.io_locks) + ":" + std::to_string(s.mem_locks) + ")";
    } else if (!r.arbitrated || arbiter) {
      t += r.note;
    } else {
      t += "-";
    }
    t += "\n";
  }
  out << t;
  return Exit::ok;
}

// The one VGA-class function DEV names; a slot must hold exactly one.
Result<Device> resolve_vga(Context& ctx, const std::string& input, bool allow_display) {
  const auto spec = PT_TRY(parse_device_spec(input));
  const auto all = PT_TRY(scan_devices(ctx.root, ScanOptions{.names = false}));
  return PT_TRY(target::resolve(all, spec, target::vga(allow_display))).front();
}

std::string bridges_text(const std::vector<Bridge>& bs) {
  if (bs.empty()) return "none (on a root bus)";
  std::string t;
  for (const auto& b : bs)
    t += (t.empty() ? "" : ", ") + b.device + " VGA enable " +
         (b.vga_enable ? (*b.vga_enable ? "on" : "off") : std::string("unreadable"));
  return t;
}

json bridges_json(const std::vector<Bridge>& bs) {
  json arr = json::array();
  for (const auto& b : bs)
    arr.push_back(
        {{"device", b.device}, {"vga_enable", b.vga_enable ? json(*b.vga_enable) : json(nullptr)}});
  return arr;
}

json record_json(const VgaRecord& r) {
  return {{"decodes", r.decodes},
          {"owns", r.owns},
          {"boot_vga", r.boot_vga},
          {"driver", nullable(r.driver)},
          {"time", r.time}};
}

Result<Exit> cmd_show(const Options& o, Context& ctx, std::ostream& out) {
  const auto found = PT_TRY(resolve_vga(ctx, o.device, true));
  const Device* dev = &found;
  const auto shown = inspect(ctx, *dev);
  const Row& r = shown.row;
  const auto& bridges = shown.bridges;
  const auto& log = shown.kernel_log;
  const auto& record = shown.record;
  const auto& journal_error = shown.journal_error;
  if (o.common.json) {
    json j = row_json(r);
    j["bridges"] = bridges_json(bridges);
    j["journal"] = record ? record_json(*record) : json(nullptr);
    j["journal_error"] = journal_error ? json(journal_error->describe()) : json(nullptr);
    j["kernel_log"] = log ? json(*log) : json(nullptr);
    j["kernel_log_error"] = log ? json(nullptr) : json(log.error().describe());
    render::emit(out, j);
    return Exit::ok;
  }
  std::string t = dev->addr.str() + "  class " + class_hex(*dev) + "  driver " +
                  (dev->driver.empty() ? std::string("none") : dev->driver) + "\n";
  t += "  boot_vga:     " +
       (dev->boot_vga ? std::string(*dev->boot_vga ? "1" : "0") : std::string("-")) + "\n";
  if (r.command)
    t += "  command:      IO " + std::string(*r.command & vga::kIo ? "on" : "off") + ", MEM " +
         (*r.command & vga::kMem ? "on" : "off") + " (PCI command register)\n";
  else
    t += "  command:      unreadable\n";
  if (r.status) {
    const auto& s = *r.status;
    t += "  arbiter:      " + r.line + "\n";
    t += "  count:        " + std::to_string(s.count) +
         " (VGA devices that decode legacy VGA resources)\n";
    t += "  decodes:      " + std::string(vga::state_name(s.decodes)) + "\n";
    t += "  owns:         " + std::string(vga::state_name(s.owns)) + "\n";
    t += "  locks:        " + std::string(vga::state_name(s.locks)) + " (io " +
         std::to_string(s.io_locks) + ", mem " + std::to_string(s.mem_locks) + ")\n";
  } else {
    t += "  arbiter:      " + r.note + "\n";
  }
  t += "  bridges:      " + bridges_text(bridges) + "\n";
  if (record)
    t += "  journal:      decodes=" + record->decodes + " owns=" + record->owns +
         " recorded when pt-bind detached it" +
         (record->driver.empty() ? std::string() : " from " + record->driver) + "\n";
  else if (journal_error)
    t += "  journal:      unreadable: " + journal_error->describe() + "\n";
  if (log) {
    t += "  kernel log:   " + std::string(log->empty() ? "no vgaarb messages about it" : "") + "\n";
    for (const auto& l : *log) t += "    " + l + "\n";
  } else {
    t += "  kernel log:   unavailable: " + log.error().describe() + "\n";
  }
  out << t;
  return Exit::ok;
}

std::string change_line(const Device& d, const Change& c, unsigned requested) {
  std::string t = d.addr.str() + "  decodes ";
  if (c.already) return t + vga::state_name(c.after.decodes) + " already\n";
  t += std::string(vga::state_name(c.before.decodes)) + " -> " + vga::state_name(c.after.decodes) +
       "  (verified: " + vga::format_status(c.after) + ")\n";
  if (c.after.decodes != requested)
    t += "note: the kernel's arbiter takes " + std::string(vga::state_name(requested)) +
         " as io+mem\n";
  return t;
}

json change_json(const Device& d, const Change& c, unsigned requested) {
  return {{"device", d.addr.str()},
          {"requested", vga::state_name(requested)},
          {"from", vga::state_name(c.before.decodes)},
          {"to", vga::state_name(c.after.decodes)},
          {"result", c.already ? "already" : "changed"},
          {"line", vga::format_status(c.after)}};
}

Result<unsigned> parse_decodes_arg(const std::string& text) {
  auto st = vga::parse_state(text);
  if (!st)
    return usage_error("'" + text + "'",
                       std::string("is not a decodes value; give one of ") + kStates);
  return *st;
}

Result<Exit> cmd_decodes(const Options& o, Context& ctx, std::ostream& out) {
  const unsigned state = PT_TRY(parse_decodes_arg(o.state));
  const auto dev = PT_TRY(resolve_vga(ctx, o.device, false));
  const auto c = PT_TRY(decodes(ctx, dev, state));
  if (ctx.dry_run) {
    const auto& st = c.before;
    std::string text = std::string("decodes ") + vga::state_name(state);
    if (o.common.json)
      render::emit(out,
                   json{{"device", dev.addr.str()},
                        {"dry_run", true},
                        {"decodes", vga::state_name(st.decodes)},
                        {"writes", st.decodes == effective_decodes(state)
                                       ? json::array()
                                       : json::array({"target PCI:" + dev.addr.str(), text})}});
    else if (st.decodes == effective_decodes(state))
      out << "dry run: " << dev.addr.str() << " already decodes " << vga::state_name(st.decodes)
          << "; nothing would be written\n";
    else
      out << "dry run: nothing is changed\n  write " << kArbiterPath
          << " \"target PCI:" << dev.addr.str() << "\"\n  write " << kArbiterPath << " "
          << show_value(text) << "  (decodes now " << vga::state_name(st.decodes) << ")\n";
    return Exit::ok;
  }
  if (o.common.json)
    render::emit(out, change_json(dev, c, state));
  else
    out << change_line(dev, c, state);
  return Exit::ok;
}

Result<Exit> cmd_restore(const Options& o, Context& ctx, std::ostream& out) {
  const auto dev = PT_TRY(resolve_vga(ctx, o.device, false));
  const auto r = PT_TRY(restore(ctx, dev));
  const std::string bdf = dev.addr.str();
  if (ctx.dry_run) {
    bool same = r.current.decodes == effective_decodes(r.target) || r.current.decodes == r.target;
    std::string text = std::string("decodes ") + vga::state_name(r.target);
    if (o.common.json) {
      render::emit(
          out, json{{"device", bdf},
                    {"dry_run", true},
                    {"decodes", vga::state_name(r.current.decodes)},
                    {"target", vga::state_name(r.target)},
                    {"source", r.source},
                    {"writes", same ? json::array() : json::array({"target PCI:" + bdf, text})}});
    } else {
      out << "dry run: restore " << bdf << " to decodes " << vga::state_name(r.target) << " ("
          << r.source << "); nothing is changed\n";
      if (same)
        out << "  already decodes " << vga::state_name(r.current.decodes)
            << "; nothing would be written\n";
      else
        out << "  write " << kArbiterPath << " \"target PCI:" << bdf << "\"\n  write "
            << kArbiterPath << " " << show_value(text) << "\n";
    }
    return Exit::ok;
  }
  if (o.common.json) {
    json j = change_json(dev, r.change, r.target);
    j["source"] = r.source;
    j["journal_record_removed"] = r.dropped;
    j["boot_vga"] = dev.boot_vga.value_or(false);
    j["bridges"] = r.owns_note ? bridges_json(r.bridges) : json(nullptr);
    render::emit(out, j);
    return Exit::ok;
  }
  std::string t = change_line(dev, r.change, r.target);
  t += "  " + r.source + (r.dropped ? "; the record is removed" : "") + "\n";
  if (r.owns_note) {
    bool routed = true;
    for (const auto& b : r.bridges) routed = routed && b.vga_enable.value_or(false);
    t += "note: " + bdf +
         " is the boot VGA device but owns no legacy VGA resources (owns=none); the arbiter gives "
         "them to it at its next lock. Upstream bridges: " +
         bridges_text(r.bridges) + "\n";
    if (!r.bridges.empty() && !routed)
      t += "note: a bridge above " + bdf +
           " does not forward VGA (Bridge Control VGA Enable off), so legacy VGA "
           "cycles do not reach it until the arbiter routes them there\n";
  }
  out << t;
  return Exit::ok;
}

Result<Exit> cmd_lock(const Options& o, Context& ctx, std::ostream& out) {
  unsigned state = vga::kIoMem;
  if (!o.state.empty()) {
    auto st = vga::parse_state(o.state);
    if (!st || *st == 0)
      return usage_error("'" + o.state + "'", "is not something to lock; give io, mem or io+mem");
    state = *st;
  }
  if (o.argv.empty())
    return usage_error("lock", "needs a command after '--': pt-vgaarb lock DEV -- CMD...");
  const auto dev = PT_TRY(resolve_vga(ctx, o.device, false));
  if (ctx.dry_run) {
    PT_TRY(arbiter_state(ctx));
    out << "dry run: nothing is run\n  write " << kArbiterPath << " \"target PCI:" << dev.addr.str()
        << "\"\n  write " << kArbiterPath << " "
        << show_value(std::string("lock ") + vga::state_name(state)) << "\n  run "
        << render::join(o.argv, " ") << "\n  write " << kArbiterPath << " "
        << show_value(std::string("unlock ") + vga::state_name(state)) << "\n";
    return Exit::ok;
  }
  return static_cast<Exit>(PT_TRY(run_locked(ctx, dev, state, o.argv)));
}

}  // namespace

Result<Exit> run_in(const Options& o, Context& ctx, std::ostream& out) {
  if (o.command == "list") return cmd_list(o, ctx, out);
  if (o.command == "show") return cmd_show(o, ctx, out);
  if (o.command == "decodes") return cmd_decodes(o, ctx, out);
  if (o.command == "restore") return cmd_restore(o, ctx, out);
  if (o.command == "lock") return cmd_lock(o, ctx, out);
  return usage_error(o.command, "unknown command; see pt-vgaarb --help");
}

Result<Exit> run(const Options& o, std::ostream& out, const ObservedWriter::Observer& on_write) {
  auto sys = PT_TRY(open_system(o.common, on_write));
  return run_in(o, sys->ctx, out);
}

}  // namespace pt::vgaarb
