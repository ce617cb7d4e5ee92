#include "pt/console_cmd.hpp"

#include <linux/vt.h>

#include <map>

#include "pt/console.hpp"
#include "pt/console_change.hpp"
#include "pt/journal.hpp"
#include "pt/render.hpp"
#include "pt/system.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"

namespace pt::console {

using render::emit;
using render::json;
using render::nullable;
using render::pad;

namespace {

// The GPU named on the command line: one display-class PCI function.
Result<std::string> resolve_gpu(const Context& ctx, const std::string& input) {
  return PT_TRY(target::read_one(ctx.root, input, target::console_gpu())).addr.str();
}

json change_json(const ConsoleChange& c) {
  json j = {{"kind", c.kind},
            {"name", c.name},
            {"driver", nullable(c.driver)},
            {"node", nullable(c.node)},
            {"time", c.time}};
  if (c.kind == "vtconsole") {
    j["served"] = json::array();
    for (const auto& f : c.served)
      j["served"].push_back({{"fb", f.node}, {"name", f.name}, {"consoles", f.consoles}});
  }
  return j;
}

json state_json(const State& s, const Journal* journal) {
  json j;
  j["vtconsoles"] = json::array();
  for (const auto& v : s.vtconsoles)
    j["vtconsoles"].push_back({{"node", v.node},
                               {"name", v.name},
                               {"mark", nullable(v.mark)},
                               {"bound", v.bound},
                               {"fbcon", v.is_fbcon()}});
  j["framebuffers"] = json::array();
  for (const auto& f : s.framebuffers)
    j["framebuffers"].push_back({{"node", f.node},
                                 {"name", f.name},
                                 {"device", nullable(f.device)},
                                 {"driver", nullable(f.driver)},
                                 {"pci", nullable(f.pci)},
                                 {"firmware", nullable(f.platform)},
                                 {"gpu", nullable(f.gpu)}});
  j["firmware_framebuffers"] = json::array();
  for (const auto& f : s.firmware)
    j["firmware_framebuffers"].push_back(
        {{"name", f.name},
         {"driver", nullable(f.driver)},
         {"device", nullable(f.device)},
         {"framebuffers", f.framebuffers},
         {"gpu", nullable(f.gpu)},
         {"gpu_from", f.how == Attribution::none ? json(nullptr) : json(attribution_name(f.how))}});
  if (s.con2fb.known) {
    json m = json::object();
    for (const auto& [c, fb] : s.con2fb.map) m[std::to_string(c)] = fb;
    j["con2fb"] = m;
  } else {
    j["con2fb"] = nullptr;
  }
  j["active_vt"] = render::opt(s.active_vt);
  j["boot_vga"] = nullable(s.boot_vga);
  json released = json::object();
  if (journal)
    for (const auto& [gpu, changes] : journal->consoles) {
      json arr = json::array();
      for (const auto& c : changes) arr.push_back(change_json(c));
      released[gpu] = arr;
    }
  j["released"] = released;
  return j;
}

Result<Exit> cmd_list(const CliOptions& o, Context& ctx, std::ostream& out) {
  const auto s = PT_TRY(discover(ctx.root));
  auto journal = load_journal(ctx.root);
  if (o.common.json) {
    emit(out, state_json(s, journal ? &*journal : nullptr));
    return Exit::ok;
  }
  std::string t = "VTCONSOLE  NAME                          BIND\n";
  for (const auto& v : s.vtconsoles)
    t += pad(v.node, 11) + pad(shown(v), 30) + (v.bound ? "bound" : "unbound") +
         (v.is_fbcon() ? "  (fbcon)" : "") + "\n";
  if (s.vtconsoles.empty()) t += "(none)\n";
  t += "\nFB     NAME                DRIVER          GPU\n";
  for (const auto& f : s.framebuffers)
    t += pad(f.node, 7) + pad(f.name.empty() ? "-" : f.name, 20) +
         pad(f.driver.empty() ? "-" : f.driver, 16) + (f.gpu.empty() ? "-" : f.gpu) +
         (f.platform.empty() ? "" : "  (firmware " + f.platform + ")") + "\n";
  if (s.framebuffers.empty()) t += "(none)\n";
  t += "\nFIRMWARE FRAMEBUFFER    DRIVER             FB     GPU\n";
  for (const auto& f : s.firmware) {
    const std::string fbs = render::join(f.framebuffers, ",");
    t += pad(f.name, 24) + pad(f.driver.empty() ? "-" : f.driver, 19) +
         pad(fbs.empty() ? "-" : fbs, 7) + (f.gpu.empty() ? "-" : f.gpu) +
         (f.how == Attribution::boot_vga ? "  (a guess: the boot VGA device)"
          : f.how == Attribution::iomem  ? "  (from /proc/iomem)"
          : f.how == Attribution::parent ? "  (parent device)"
                                         : "") +
         "\n";
  }
  if (s.firmware.empty()) t += "(none)\n";
  t += "\nfbcon map:  " + con2fb_text(s.con2fb) + "\n";
  t += "active VT:  " + s.active_vt.value_or("unknown (no /sys/class/tty/tty0/active)") + "\n";
  if (journal)
    for (const auto& [gpu, changes] : journal->consoles) {
      t += "released for " + gpu + ":";
      for (const auto& c : changes) t += " " + c.kind + " '" + c.name + "'";
      t += "\n";
    }
  out << t;
  return Exit::ok;
}

json step_json(const Step& st, const std::string& result) {
  return {{"kind", st.change.kind},
          {"name", st.change.name},
          {"driver", nullable(st.change.driver)},
          {"node", nullable(st.change.node)},
          {"path", st.path},
          {"value", st.value},
          {"note", nullable(st.note)},
          {"result", result}};
}

std::string step_text(const Step& st) {
  if (st.change.kind == "vtconsole")
    return std::string(st.bind ? "bind" : "unbind") + " " + st.change.node + " '" + st.change.name +
           "'";
  return std::string(st.bind ? "bind " : "unbind ") + st.change.name +
         (st.bind ? " to " : " from ") + st.change.driver;
}

std::string write_text(const Step& st) {
  return "write " + st.path + " " + show_value(st.value);
}

Result<Exit> cmd_release(const CliOptions& o, Context& ctx, std::ostream& out) {
  const auto gpu = PT_TRY(resolve_gpu(ctx, o.target));
  const auto r = PT_TRY(release(ctx, gpu));
  const Plan& p = r.plan;
  json steps = json::array();
  std::string text;
  for (const auto& n : p.notes) text += "note: " + n + "\n";
  for (const auto& a : p.already) text += "already: " + a + "\n";
  if (p.steps.empty())
    text += p.already.empty() ? "no console on " + gpu + ": nothing to release\n"
                              : gpu + ": already released; nothing more to do\n";
  if (ctx.dry_run && !p.steps.empty())
    text += "dry run: release " + gpu + ", " + std::to_string(p.steps.size()) +
            " step(s); nothing is changed\n";
  for (const auto& s : r.steps) {
    const Step& st = s.step;
    steps.push_back(step_json(st, s.result));
    if (ctx.dry_run)
      text += "  " + step_text(st) + (st.note.empty() ? "" : "  (" + st.note + ")") + "\n    " +
              write_text(st) + "\n";
    else
      text += gpu + "  " + step_text(st) + "  (" + ms_text(s.ms) + ")" +
              (st.note.empty() ? "" : "\n  because " + st.note) + "\n";
  }
  if (o.common.json)
    emit(out, {{"op", "release"},
               {"gpu", gpu},
               {"dry_run", ctx.dry_run},
               {"steps", steps},
               {"already", p.already},
               {"notes", p.notes}});
  else
    out << render::printable(text, true);
  return Exit::ok;
}

Result<Exit> cmd_restore(const CliOptions& o, Context& ctx, std::ostream& out) {
  const auto gpu = PT_TRY(resolve_gpu(ctx, o.target));
  auto r = PT_TRY(restore(ctx, gpu));
  if (!r.recorded) {
    if (o.common.json)
      emit(out, {{"op", "restore"},
                 {"gpu", gpu},
                 {"dry_run", ctx.dry_run},
                 {"steps", json::array()},
                 {"notes", {"nothing is recorded for " + gpu}}});
    else
      out << "nothing recorded for " + gpu + ": no console was released; nothing to restore\n";
    return Exit::ok;
  }
  json steps = json::array();
  std::string text = ctx.dry_run ? "dry run: restore " + gpu + "; nothing is changed\n" : "";
  for (const auto& s : r.steps) {
    steps.push_back(step_json(s.step, s.result));
    if (s.did == "planned")
      text += "  " + step_text(s.step) + "\n    " + write_text(s.step) + "\n";
    else if (s.did == "done")
      text += gpu + "  " + step_text(s.step) + "  (" + ms_text(s.ms) + ")\n";
    else if (s.did == "already")
      text += gpu + "  " + step_text(s.step) + ": already so\n";
  }
  for (const auto& n : r.notes) text += "note: " + n + "\n";
  if (o.common.json)
    emit(out, {{"op", "restore"},
               {"gpu", gpu},
               {"dry_run", ctx.dry_run},
               {"steps", steps},
               {"notes", r.notes}});
  else
    out << render::printable(text, true);
  if (r.failure) return std::unexpected(*r.failure);
  return Exit::ok;
}

// bind|unbind NAME: a vtconsole name or a firmware framebuffer device.
Result<Exit> cmd_bind(const CliOptions& o, Context& ctx, std::ostream& out) {
  if (o.target.empty())
    return usage_error(o.command, "name a vtconsole or a firmware framebuffer device");
  const auto r = PT_TRY(bind_named(ctx, o.target, o.driver, o.command == "bind"));
  const Step& st = r.step;
  json j{{"op", o.command}, {"name", st.change.name}, {"dry_run", ctx.dry_run}};
  j["result"] = r.result;
  std::string text;
  if (r.result == "already") {
    text = r.already + "\n";
  } else {
    j["path"] = st.path;
    j["value"] = st.value;
    text = r.result == "planned"
               ? "dry run: " + step_text(st) + "; nothing is changed\n  " + write_text(st) + "\n"
               : step_text(st) + "  (" + ms_text(r.ms) + ")\n";
  }
  j["notes"] = r.notes;
  for (const auto& n : r.notes) text += "note: " + n + "\n";
  if (o.common.json)
    emit(out, j);
  else
    out << render::printable(text, true);
  return Exit::ok;
}

Result<Exit> cmd_vt(const CliOptions& o, Context& ctx, std::ostream& out) {
  int n = 0;
  try {
    size_t used = 0;
    n = std::stoi(o.target, &used);
    if (used != o.target.size()) n = 0;
  } catch (const std::exception&) {
    n = 0;
  }
  if (n < 1 || n > MAX_NR_CONSOLES)
    return usage_error("'" + o.target + "'",
                       "is not a VT number; give one from 1 to " + std::to_string(MAX_NR_CONSOLES));
  const auto r = PT_TRY(switch_vt(ctx, n));
  if (ctx.dry_run)
    out << (o.common.json
                ? json{{"op", "vt"}, {"vt", n}, {"dry_run", true}, {"result", "planned"}}.dump(2)
                : "dry run: switch to tty" + std::to_string(n) + " through " + r.tty0 +
                      "; nothing is changed")
        << "\n";
  else if (o.common.json)
    emit(out, {{"op", "vt"},
               {"vt", n},
               {"dry_run", false},
               {"result", "done"},
               {"active", nullable(r.active)}});
  else
    out << "switched to tty" << n << "  (" << ms_text(r.ms) << ")\n";
  return Exit::ok;
}

}  // namespace

Result<Exit> run_in(const CliOptions& o, Context& ctx, std::ostream& out) {
  using Command = Result<Exit> (*)(const CliOptions&, Context&, std::ostream&);
  static const std::map<std::string, Command> commands{
      {"list", cmd_list}, {"release", cmd_release}, {"restore", cmd_restore},
      {"bind", cmd_bind}, {"unbind", cmd_bind},     {"vt", cmd_vt}};
  auto it = commands.find(o.command);
  if (it == commands.end()) return usage_error(o.command, "unknown command; see pt-console --help");
  return it->second(o, ctx, out);
}

Result<Exit> run(const CliOptions& o, std::ostream& out, const ObservedWriter::Observer& on_write) {
  auto sys = PT_TRY(open_system(o.common, on_write));
  return run_in(o, sys->ctx, out);
}

}  // namespace pt::console
