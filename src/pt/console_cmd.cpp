#include "pt/console_cmd.hpp"

#include <fcntl.h>
#include <linux/vt.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "pt/address.hpp"
#include "pt/console.hpp"
#include "pt/journal.hpp"
#include "pt/lock.hpp"
#include "pt/pci.hpp"
#include "pt/system.hpp"

namespace pt::console {

using nlohmann::json;

namespace {

json nullable(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

int64_t now_of(const Context& ctx) {
  return ctx.now ? ctx.now() : int64_t(std::time(nullptr));
}

std::string ms_since(std::chrono::steady_clock::time_point t0) {
  char buf[32];
  std::snprintf(
      buf, sizeof buf, "%.1f ms",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return buf;
}

std::string shown(const VtConsole& v) {
  return (v.mark.empty() ? "" : "(" + v.mark + ") ") + v.name;
}

// A display-class PCI function named on the command line.
Result<std::string> resolve_gpu(const Context& ctx, const std::string& input) {
  if (input.empty()) return usage_error("pt-console", "name the GPU, e.g. 01:00.0");
  auto spec = parse_device_spec(input);
  if (!spec) return std::unexpected(spec.error());
  if (!spec->func)
    return usage_error("'" + input + "'",
                       "names a slot; name the GPU function, e.g. " + input + ".0");
  PciAddress a{spec->domain, spec->bus, spec->dev, *spec->func};
  if (!path_exists(ctx.root.path("/sys/bus/pci/devices/" + a.str())))
    return fail("'" + input + "'", "no such PCI device; list devices with 'pt-bind list'", ENODEV);
  auto d = read_device(ctx.root, a);
  if (!d) return std::unexpected(d.error());
  if (!d->is_display()) {
    char cls[8];
    std::snprintf(cls, sizeof cls, "%04x", d->class_id());
    return usage_error("'" + input + "'",
                       a.str() + " is not a display controller (class " + cls +
                           "); pt-console frees the consoles of a GPU (class 03xx)");
  }
  return a.str();
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
  j["active_vt"] = s.active_vt ? json(*s.active_vt) : json(nullptr);
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

// "tty1-63 -> fb0, tty64 -> fb1": runs of consoles mapped to one fb.
std::string con2fb_text(const Con2Fb& m) {
  if (!m.known) return "unknown (no /dev/fbN character device to ask with FBIOGET_CON2FBMAP)";
  if (m.map.empty()) return "no console is mapped to a framebuffer";
  std::string out;
  int first = -1, last = -1, fb = -1;
  auto flush = [&] {
    if (first < 0) return;
    out += (out.empty() ? "" : ", ") + std::string("tty") + std::to_string(first) +
           (last > first ? "-" + std::to_string(last) : "") + " -> fb" + std::to_string(fb);
  };
  for (const auto& [c, f] : m.map) {
    if (first >= 0 && f == fb && c == last + 1) {
      last = c;
      continue;
    }
    flush();
    first = last = c;
    fb = f;
  }
  flush();
  return out;
}

Result<Exit> cmd_list(const CliOptions& o, Context& ctx, std::ostream& out) {
  auto s = discover(ctx.root);
  if (!s) return std::unexpected(s.error());
  auto journal = load_journal(ctx.root);
  if (o.common.json) {
    out << state_json(*s, journal ? &*journal : nullptr).dump(2) << "\n";
    return Exit::ok;
  }
  std::string t = "VTCONSOLE  NAME                          BIND\n";
  for (const auto& v : s->vtconsoles)
    t += pad(v.node, 11) + pad(shown(v), 30) + (v.bound ? "bound" : "unbound") +
         (v.is_fbcon() ? "  (fbcon)" : "") + "\n";
  if (s->vtconsoles.empty()) t += "(none)\n";
  t += "\nFB     NAME                DRIVER          GPU\n";
  for (const auto& f : s->framebuffers)
    t += pad(f.node, 7) + pad(f.name.empty() ? "-" : f.name, 20) +
         pad(f.driver.empty() ? "-" : f.driver, 16) + (f.gpu.empty() ? "-" : f.gpu) +
         (f.platform.empty() ? "" : "  (firmware " + f.platform + ")") + "\n";
  if (s->framebuffers.empty()) t += "(none)\n";
  t += "\nFIRMWARE FRAMEBUFFER    DRIVER             FB     GPU\n";
  for (const auto& f : s->firmware) {
    std::string fbs;
    for (const auto& n : f.framebuffers) fbs += (fbs.empty() ? "" : ",") + n;
    t += pad(f.name, 24) + pad(f.driver.empty() ? "-" : f.driver, 19) +
         pad(fbs.empty() ? "-" : fbs, 7) + (f.gpu.empty() ? "-" : f.gpu) +
         (f.how == Attribution::boot_vga ? "  (a guess: the boot VGA device)"
          : f.how == Attribution::iomem  ? "  (from /proc/iomem)"
          : f.how == Attribution::parent ? "  (parent device)"
                                         : "") +
         "\n";
  }
  if (s->firmware.empty()) t += "(none)\n";
  t += "\nfbcon map:  " + con2fb_text(s->con2fb) + "\n";
  t += "active VT:  " + s->active_vt.value_or("unknown (no /sys/class/tty/tty0/active)") + "\n";
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

// Binds the vtconsole a step names. vt.c's vt_bind only takes consoles from
// a system (S) driver: when the consoles sit with a modular one (the dummy
// console that took over from a removed VGA+), binding writes are ignored.
// Then unbinding that holder hands the consoles to the first other
// registered driver, which is TARGET when it comes first in the registry.
Status bind_vtconsole(Context& ctx, const Step& st, std::vector<std::string>& notes) {
  if (auto r = apply(ctx, st); r) return r;
  auto s = discover(ctx.root);
  if (!s) return std::unexpected(s.error());
  const VtConsole* target = s->vtconsole(st.change.name);
  if (!target) return fail(st.change.name, "the vtconsole went away while binding it");
  if (target->bound) return {};
  if (target->mark != "M")
    return fail(st.change.node + " '" + st.change.name + "'",
                "wrote \"1\" to " + st.path +
                    " but it reads back \"0\": the kernel binds only modular (M) console "
                    "drivers through sysfs; a system driver gets the consoles back when the "
                    "modular one holding them is "
                    "unbound");
  bool system_bound = false;
  const VtConsole* holder = nullptr;
  for (const auto& v : s->vtconsoles) {
    if (v.name == target->name || !v.bound) continue;
    if (v.mark == "S") system_bound = true;
    if (v.mark == "M" && !holder) holder = &v;
  }
  auto index = [](const VtConsole& v) { return std::stoi(v.node.substr(5)); };
  if (system_bound || !holder)
    return fail(st.change.node + " '" + st.change.name + "'",
                "wrote \"1\" to " + st.path +
                    " but it reads back \"0\": the kernel did not bind it" +
                    (holder ? "" : " (no console driver holds the consoles)"));
  for (const auto& v : s->vtconsoles)
    if (v.name != holder->name && v.name != target->name && index(v) < index(*target))
      return fail(
          st.change.node + " '" + st.change.name + "'",
          "the consoles sit with the modular '" + holder->name + "' (" + holder->node +
              "), which the kernel never hands over to a bind; unbinding it would give them to " +
              v.node + " '" + v.name + "', not to " + st.change.name);
  Step hand{ConsoleChange{"vtconsole", holder->name, "", holder->node, 0, {}},
            "/sys/class/vtconsole/" + holder->node + "/bind", "0", false, ""};
  if (auto r = apply(ctx, hand); !r) return r;
  auto after = discover(ctx.root);
  if (!after) return std::unexpected(after.error());
  const VtConsole* t2 = after->vtconsole(st.change.name);
  if (!t2 || !t2->bound)
    return fail(st.change.node + " '" + st.change.name + "'",
                "unbinding '" + holder->name + "' (" + holder->node + ") did not bring it back");
  notes.push_back(
      "the kernel binds a console driver only onto consoles of a system (S) driver; they sat with "
      "the "
      "modular '" +
      holder->name + "' (" + holder->node + "), so pt unbound it and '" + st.change.name +
      "' took them back");
  return {};
}

Status run_step(Context& ctx, const Step& st, std::vector<std::string>& notes) {
  if (st.change.kind == "vtconsole" && st.bind) return bind_vtconsole(ctx, st, notes);
  return apply(ctx, st);
}

Step undo_of(const ConsoleChange& c, const State& s) {
  Step st;
  st.change = c;
  st.bind = true;
  if (c.kind == "vtconsole") {
    const VtConsole* v = s.vtconsole(c.name);
    st.change.node = v ? v->node : c.node;
    st.path = "/sys/class/vtconsole/" + st.change.node + "/bind";
    st.value = "1";
  } else {
    st.path = "/sys/bus/platform/drivers/" + c.driver + "/bind";
    st.value = c.name;
  }
  return st;
}

Result<Exit> cmd_release(const CliOptions& o, Context& ctx, std::ostream& out) {
  auto gpu = resolve_gpu(ctx, o.target);
  if (!gpu) return std::unexpected(gpu.error());
  auto lock = lock_unless_dry_run(ctx.root, ctx.dry_run, ctx.lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  auto journal = load_journal(ctx.root);
  if (!journal) return std::unexpected(journal.error());
  auto s = discover(ctx.root);
  if (!s) return std::unexpected(s.error());
  Plan p = plan_release(*s, *gpu, *journal);
  json steps = json::array();
  std::string text;
  for (const auto& n : p.notes) text += "note: " + n + "\n";
  for (const auto& a : p.already) text += "already: " + a + "\n";
  if (p.steps.empty()) {
    text += p.already.empty() ? "no console on " + *gpu + ": nothing to release\n"
                              : *gpu + ": already released; nothing more to do\n";
  }
  if (ctx.dry_run) {
    if (!p.steps.empty())
      text += "dry run: release " + *gpu + ", " + std::to_string(p.steps.size()) +
              " step(s); nothing is changed\n";
    for (const auto& st : p.steps) {
      steps.push_back(step_json(st, "planned"));
      text += "  " + step_text(st) + (st.note.empty() ? "" : "  (" + st.note + ")") +
              "\n    write " + st.path + " " + show_value(st.value) + "\n";
    }
  } else {
    std::vector<Step> done;
    for (const auto& st : p.steps) {
      auto t0 = std::chrono::steady_clock::now();
      if (auto r = apply(ctx, st); !r) {
        Error e = r.error();
        if (done.empty()) return std::unexpected(e);
        // Undo this run's changes, newest first, so a failed release leaves nothing half done.
        auto now = discover(ctx.root);
        bool undone = now.has_value();
        std::string left;
        for (auto it = done.rbegin(); it != done.rend() && now; ++it) {
          std::vector<std::string> ignored;
          if (auto u = run_step(ctx, undo_of(it->change, *now), ignored); u) {
            auto& list = journal->consoles[*gpu];
            if (!list.empty()) list.pop_back();
            if (list.empty()) journal->consoles.erase(*gpu);
            save_journal(ctx.root, *journal);
          } else {
            undone = false;
            left +=
                " " + it->change.kind + " '" + it->change.name + "' (" + u.error().describe() + ")";
          }
        }
        e.message += undone
                         ? "; the earlier steps were undone"
                         : "; undoing the earlier steps failed:" + left +
                               " (recorded in the journal; run 'pt-console restore " + *gpu + "')";
        e.exit = undone ? Exit::rolled_back : Exit::not_rolled_back;
        return std::unexpected(e);
      }
      ConsoleChange c = st.change;
      c.time = now_of(ctx);
      journal->consoles[*gpu].push_back(c);
      if (auto r = save_journal(ctx.root, *journal); !r) return std::unexpected(r.error());
      done.push_back(st);
      steps.push_back(step_json(st, "done"));
      text += *gpu + "  " + step_text(st) + "  (" + ms_since(t0) + ")" +
              (st.note.empty() ? "" : "\n  because " + st.note) + "\n";
    }
  }
  if (o.common.json) {
    out << json{{"op", "release"}, {"gpu", *gpu},          {"dry_run", ctx.dry_run},
                {"steps", steps},  {"already", p.already}, {"notes", p.notes}}
               .dump(2)
        << "\n";
  } else {
    out << text;
  }
  return Exit::ok;
}

std::string fbs_now(const State& s, const std::string& gpu) {
  std::string out;
  for (const auto* f : s.framebuffers_of(gpu))
    out += (out.empty() ? "" : ", ") + f->node + " (" + f->name + ")";
  return out.empty() ? "none" : out;
}

// fbcon takes the consoles back by itself when the GPU's driver registers
// its fb again, but only onto its primary fb, and 5.10 does not re-select
// the primary: consoles that sat on the GPU at release can end up on another
// GPU's fb. Maps those back with FBIOPUT_CON2FBMAP and reads the map back.
Status remap_consoles(Context& ctx, const std::string& gpu, const std::vector<int>& want,
                      const std::string& preferred, std::vector<std::string>& notes) {
  if (want.empty()) return {};
  auto s = discover(ctx.root);
  if (!s) return std::unexpected(s.error());
  if (!s->con2fb.known) {
    notes.push_back("the console map cannot be read here; which fb tty" + console_ranges(want) +
                    " show is not checked");
    return {};
  }
  auto mine = s->framebuffers_of(gpu);
  if (mine.empty()) {
    notes.push_back(gpu + " has no framebuffer now; tty" + console_ranges(want) +
                    " stay where they are");
    return {};
  }
  std::set<int> mine_idx;
  for (const auto* f : mine) mine_idx.insert(std::stoi(f->node.substr(2)));
  const Framebuffer* target = mine.front();
  for (const auto* f : mine)
    if (f->node == preferred) target = f;
  std::vector<int> move;
  std::set<int> from;
  for (int c : want) {
    auto it = s->con2fb.map.find(c);
    if (it != s->con2fb.map.end() && mine_idx.count(it->second)) continue;
    move.push_back(c);
    if (it != s->con2fb.map.end()) from.insert(it->second);
  }
  if (move.empty()) return {};
  if (auto r = set_con2fb(ctx.root, target->node, move); !r) return r;
  auto after = discover(ctx.root);
  if (!after) return std::unexpected(after.error());
  const int idx = std::stoi(target->node.substr(2));
  for (int c : move)
    if (!after->con2fb.map.count(c) || after->con2fb.map.at(c) != idx)
      return fail("tty" + std::to_string(c), "FBIOPUT_CON2FBMAP to " + target->node +
                                                 " returned but the map does not show it");
  std::string was;
  for (int f : from) {
    std::string owner;
    for (const auto& x : s->framebuffers)
      if (x.node == "fb" + std::to_string(f))
        owner = " (" + x.name + " of " + (x.gpu.empty() ? "no GPU" : x.gpu) + ")";
    was += (was.empty() ? "fb" : ", fb") + std::to_string(f) + owner;
  }
  notes.push_back("fbcon had tty" + console_ranges(move) +
                  (was.empty() ? " mapped to no framebuffer" : " on " + was) +
                  "; pt mapped them to " + target->node + " (" + target->name + ") of " + gpu +
                  " as at release");
  return {};
}

Result<Exit> cmd_restore(const CliOptions& o, Context& ctx, std::ostream& out) {
  auto gpu = resolve_gpu(ctx, o.target);
  if (!gpu) return std::unexpected(gpu.error());
  auto lock = lock_unless_dry_run(ctx.root, ctx.dry_run, ctx.lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  auto journal = load_journal(ctx.root);
  if (!journal) return std::unexpected(journal.error());
  auto it = journal->consoles.find(*gpu);
  if (it == journal->consoles.end() || it->second.empty()) {
    if (o.common.json)
      out << json{{"op", "restore"},
                  {"gpu", *gpu},
                  {"dry_run", ctx.dry_run},
                  {"steps", json::array()},
                  {"notes", {"nothing is recorded for " + *gpu}}}
                 .dump(2)
          << "\n";
    else
      out << "nothing recorded for " + *gpu + ": no console was released; nothing to restore\n";
    return Exit::ok;
  }
  std::vector<ConsoleChange> changes = it->second;
  json steps = json::array();
  std::vector<std::string> notes;
  std::string text;
  std::optional<Error> failure;
  for (auto c = changes.rbegin(); c != changes.rend(); ++c) {
    auto s = discover(ctx.root);
    if (!s) return std::unexpected(s.error());
    Step st = undo_of(*c, *s);
    std::string result;
    std::vector<int> want;  // consoles fbcon mapped to the GPU at release
    std::string preferred;  // the recorded fb, when the GPU still has it
    if (c->kind == "vtconsole") {
      const VtConsole* v = s->vtconsole(c->name);
      if (!v) {
        std::string now;
        for (const auto& x : s->vtconsoles)
          now += (now.empty() ? "" : ", ") + x.node + " '" + shown(x) + "'";
        notes.push_back(
            "vtconsole '" + c->name + "' (" + c->node +
            " at release) no longer exists; vtconsoles now: " + (now.empty() ? "none" : now));
        result = "gone";
      } else if (v->bound) {
        result = "already";
      }
      // Which framebuffer fbcon served on the GPU then, and which now.
      {
        const std::string now = fbs_now(*s, *gpu);
        for (const auto& was : c->served) {
          const std::string& node = was.node;
          const std::string& name = was.name;
          want.insert(want.end(), was.consoles.begin(), was.consoles.end());
          bool same = false;
          for (const auto* f : s->framebuffers_of(*gpu))
            if (f->node == node && f->name == name) same = true;
          if (same && preferred.empty()) preferred = node;
          if (!same) {
            std::string owner;
            for (const auto& f : s->framebuffers)
              if (f.node == node) owner = f.name + " of " + (f.gpu.empty() ? "no GPU" : f.gpu);
            notes.push_back("fbcon served " + node + " (" + name + ") of " + *gpu +
                            " at release; " + node +
                            (owner.empty() ? " no longer exists" : " is now " + owner) + "; " +
                            *gpu + "'s framebuffers now: " + now);
          }
        }
      }
    } else {
      const FirmwareFb* f = s->firmware_fb(c->name);
      if (!f) {
        std::string fw;
        for (const auto& x : s->firmware) fw += (fw.empty() ? "" : ", ") + x.name;
        notes.push_back("firmware framebuffer " + c->name +
                        " no longer exists (a DRM driver removes it when it takes " +
                        "the GPU); firmware framebuffers now: " + (fw.empty() ? "none" : fw) +
                        "; " + *gpu + "'s framebuffers now: " + fbs_now(*s, *gpu));
        result = "gone";
      } else if (f->driver == c->driver) {
        result = "already";
      } else if (!f->driver.empty()) {
        notes.push_back(c->name + " is bound to " + f->driver + " now, not " + c->driver +
                        "; left as it is");
        result = "already";
      } else if (!path_exists(ctx.root.path("/sys/bus/platform/drivers/" + c->driver))) {
        failure = Error{ENOENT, c->name,
                        "its driver " + c->driver +
                            " is not registered any more; load it and run restore again"};
        steps.push_back(step_json(st, "failed"));
        break;
      }
    }
    if (result.empty()) {
      if (ctx.dry_run) {
        steps.push_back(step_json(st, "planned"));
        text += "  " + step_text(st) + "\n    write " + st.path + " " + show_value(st.value) + "\n";
        continue;
      }
      auto t0 = std::chrono::steady_clock::now();
      if (auto r = run_step(ctx, st, notes); !r) {
        failure = r.error();
        steps.push_back(step_json(st, "failed"));
        break;
      }
      result = "done";
      text += *gpu + "  " + step_text(st) + "  (" + ms_since(t0) + ")\n";
    } else if (result == "already") {
      text += *gpu + "  " + step_text(st) + ": already so\n";
    }
    if (c->kind == "vtconsole" && result != "gone" && !ctx.dry_run) {
      if (auto r = remap_consoles(ctx, *gpu, want, preferred, notes); !r) {
        failure = r.error();
        steps.push_back(step_json(st, "failed"));
        break;
      }
    }
    steps.push_back(step_json(st, result));
    if (!ctx.dry_run) {
      auto& list = journal->consoles[*gpu];
      list.pop_back();
      if (list.empty()) journal->consoles.erase(*gpu);
      if (auto r = save_journal(ctx.root, *journal); !r) return std::unexpected(r.error());
    }
  }
  if (!ctx.dry_run && !failure) {
    auto s = discover(ctx.root);
    if (s) {
      const VtConsole* fbcon = s->fbcon();
      std::string where = "fbcon " + std::string(fbcon && fbcon->bound ? "bound" : "not bound") +
                          "; " + *gpu + "'s framebuffers: " + fbs_now(*s, *gpu);
      if (s->con2fb.known) where += "; map " + con2fb_text(s->con2fb);
      notes.push_back("now: " + where);
    }
  }
  if (ctx.dry_run) text = "dry run: restore " + *gpu + "; nothing is changed\n" + text;
  for (const auto& n : notes) text += "note: " + n + "\n";
  if (o.common.json)
    out << json{{"op", "restore"},
                {"gpu", *gpu},
                {"dry_run", ctx.dry_run},
                {"steps", steps},
                {"notes", notes}}
               .dump(2)
        << "\n";
  else
    out << text;
  if (failure) {
    failure->message += "; what is not restored stays in the journal";
    return std::unexpected(*failure);
  }
  return Exit::ok;
}

// bind|unbind NAME: a vtconsole name or a firmware framebuffer device.
Result<Exit> cmd_bind(const CliOptions& o, Context& ctx, std::ostream& out) {
  const bool bind = o.command == "bind";
  if (o.target.empty())
    return usage_error(o.command, "name a vtconsole or a firmware framebuffer device");
  auto s = discover(ctx.root);
  if (!s) return std::unexpected(s.error());
  Step st;
  st.bind = bind;
  std::string already;
  if (const VtConsole* v = s->vtconsole(o.target)) {
    if (!o.driver.empty())
      return usage_error("--driver", "applies to firmware framebuffers, not to vtconsoles");
    st.change = ConsoleChange{"vtconsole", v->name, "", v->node, 0, {}};
    st.path = "/sys/class/vtconsole/" + v->node + "/bind";
    st.value = bind ? "1" : "0";
    if (v->bound == bind)
      already = v->node + " '" + v->name + "' is already " + (bind ? "bound" : "unbound");
  } else if (const FirmwareFb* f = s->firmware_fb(o.target)) {
    std::string drv =
        bind ? (o.driver.empty() ? default_fb_driver(ctx.root, f->name) : o.driver) : f->driver;
    if (bind && !f->driver.empty()) already = f->name + " is already bound to " + f->driver;
    if (!bind && f->driver.empty()) already = f->name + " has no driver bound";
    if (already.empty()) {
      if (drv.empty())
        return fail(f->name, "no framebuffer driver for it is registered; name one with --driver",
                    ENOENT);
      if (!path_exists(ctx.root.path("/sys/bus/platform/drivers/" + drv)))
        return usage_error("--driver " + drv, "no such platform driver is registered");
    }
    st.change = ConsoleChange{"framebuffer", f->name, drv, "", 0, {}};
    st.path = "/sys/bus/platform/drivers/" + drv + (bind ? "/bind" : "/unbind");
    st.value = f->name;
  } else {
    std::string known;
    for (const auto& v : s->vtconsoles) known += (known.empty() ? "'" : ", '") + v.name + "'";
    for (const auto& f : s->firmware) known += (known.empty() ? "" : ", ") + f.name;
    return usage_error("'" + o.target + "'",
                       "no vtconsole and no firmware framebuffer of that name; known here: " +
                           (known.empty() ? "none" : known) + " (see pt-console list)");
  }
  std::vector<std::string> notes;
  json j{{"op", o.command}, {"name", st.change.name}, {"dry_run", ctx.dry_run}};
  std::string text;
  if (!already.empty()) {
    j["result"] = "already";
    text = already + "\n";
  } else if (ctx.dry_run) {
    j["result"] = "planned";
    j["path"] = st.path;
    j["value"] = st.value;
    text = "dry run: " + step_text(st) + "; nothing is changed\n  write " + st.path + " " +
           show_value(st.value) + "\n";
  } else {
    auto lock = Lock::acquire(ctx.root, ctx.lock_timeout);
    if (!lock) return std::unexpected(lock.error());
    auto t0 = std::chrono::steady_clock::now();
    if (auto r = run_step(ctx, st, notes); !r) return std::unexpected(r.error());
    j["result"] = "done";
    j["path"] = st.path;
    j["value"] = st.value;
    text = step_text(st) + "  (" + ms_since(t0) + ")\n";
  }
  j["notes"] = notes;
  for (const auto& n : notes) text += "note: " + n + "\n";
  if (o.common.json)
    out << j.dump(2) << "\n";
  else
    out << text;
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
  const std::string tty0 = ctx.root.path("/dev/tty0");
  struct stat st {};
  int stat_err = ::stat(tty0.c_str(), &st) != 0 ? errno : 0;
  if (stat_err || !S_ISCHR(st.st_mode))
    return fail(tty0,
                ctx.root.is_real()
                    ? "is not a character device; there is no virtual terminal to switch"
                    : "is not a character device under --root; vt needs a real console (pt never "
                      "falls back to the real /dev/tty0)",
                stat_err);
  if (ctx.dry_run) {
    out << (o.common.json
                ? json{{"op", "vt"}, {"vt", n}, {"dry_run", true}, {"result", "planned"}}.dump(2)
                : "dry run: switch to tty" + std::to_string(n) + " through " + tty0 +
                      "; nothing is changed")
        << "\n";
    return Exit::ok;
  }
  int fd = ::open(tty0.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) fd = ::open(tty0.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return fail(tty0, "cannot open it; switching VTs needs root", errno);
  auto t0 = std::chrono::steady_clock::now();
  if (::ioctl(fd, VT_ACTIVATE, n) != 0) {
    int e = errno;
    ::close(fd);
    return fail(tty0, "VT_ACTIVATE " + std::to_string(n) + " failed", e);
  }
  // VT_WAITACTIVE cannot be given up in the caller, so a child waits; past --timeout it is killed.
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(fd);
    return fail("fork", "cannot wait for the switch", e);
  }
  if (pid == 0) _exit(::ioctl(fd, VT_WAITACTIVE, n) == 0 ? 0 : 1);
  ::close(fd);
  int status = 0;
  bool finished = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, ctx.timeout);
  if (!finished) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    auto active = read_attr(ctx.root.path("/sys/class/tty/tty0/active")).value_or("unknown");
    return fail("tty" + std::to_string(n),
                "the switch did not finish within --timeout (the active VT is still " + active +
                    "; for example a process controlling it in VT_PROCESS mode has not let it go)",
                0, Exit::timeout);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return fail(tty0, "VT_WAITACTIVE " + std::to_string(n) + " failed");
  auto active = read_attr(ctx.root.path("/sys/class/tty/tty0/active")).value_or("");
  if (!active.empty() && active != "tty" + std::to_string(n))
    return fail("tty" + std::to_string(n),
                "the kernel reports " + active + " active after the switch");
  if (o.common.json)
    out << json{{"op", "vt"},
                {"vt", n},
                {"dry_run", false},
                {"result", "done"},
                {"active", nullable(active)}}
               .dump(2)
        << "\n";
  else
    out << "switched to tty" << n << "  (" << ms_since(t0) << ")\n";
  return Exit::ok;
}

}  // namespace

Result<Exit> run_in(const CliOptions& o, Context& ctx, std::ostream& out) {
  if (o.command == "list") return cmd_list(o, ctx, out);
  if (o.command == "release") return cmd_release(o, ctx, out);
  if (o.command == "restore") return cmd_restore(o, ctx, out);
  if (o.command == "bind" || o.command == "unbind") return cmd_bind(o, ctx, out);
  if (o.command == "vt") return cmd_vt(o, ctx, out);
  return usage_error(o.command, "unknown command; see pt-console --help");
}

Result<Exit> run(const CliOptions& o, std::ostream& out, const ObservedWriter::Observer& on_write) {
  auto sys = open_system(o.common, on_write);
  if (!sys) return std::unexpected(sys.error());
  return run_in(o, (*sys)->ctx, out);
}

}  // namespace pt::console
