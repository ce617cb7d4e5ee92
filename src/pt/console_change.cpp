#include "pt/console_change.hpp"

#include <fcntl.h>
#include <linux/vt.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <set>

#include "pt/journal.hpp"
#include "pt/lock.hpp"
#include "pt/spawn.hpp"
#include "pt/sysfs.hpp"
#include "pt/try.hpp"

namespace pt::console {

namespace {

using Clock = std::chrono::steady_clock;

int64_t now_of(const Context& ctx) {
  return ctx.now ? ctx.now() : int64_t(std::time(nullptr));
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string fbs_now(const State& s, const std::string& gpu) {
  std::string out;
  for (const auto* f : s.framebuffers_of(gpu))
    out += (out.empty() ? "" : ", ") + f->node + " (" + f->name + ")";
  return out.empty() ? "none" : out;
}

// Binds the vtconsole a step names. vt.c's vt_bind only takes consoles from
// a system (S) driver: when the consoles sit with a modular one (the dummy
// console that took over from a removed VGA+), binding writes are ignored.
// Then unbinding that holder hands the consoles to the first other
// registered driver, which is TARGET when it comes first in the registry.
Status bind_vtconsole(Context& ctx, const Step& st, std::vector<std::string>& notes) {
  if (auto r = apply(ctx, st); r) return r;
  auto s = PT_TRY(discover(ctx.root));
  const VtConsole* target = s.vtconsole(st.change.name);
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
  for (const auto& v : s.vtconsoles) {
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
  for (const auto& v : s.vtconsoles)
    if (v.name != holder->name && v.name != target->name && index(v) < index(*target))
      return fail(
          st.change.node + " '" + st.change.name + "'",
          "the consoles sit with the modular '" + holder->name + "' (" + holder->node +
              "), which the kernel never hands over to a bind; unbinding it would give them to " +
              v.node + " '" + v.name + "', not to " + st.change.name);
  Step hand{ConsoleChange{"vtconsole", holder->name, "", holder->node, 0, {}},
            "/sys/class/vtconsole/" + holder->node + "/bind", "0", false, ""};
  if (auto r = apply(ctx, hand); !r) return r;
  auto after = PT_TRY(discover(ctx.root));
  const VtConsole* t2 = after.vtconsole(st.change.name);
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

// Drops the newest change recorded for GPU, once it is undone.
Status forget_newest(const Root& root, Journal& journal, const std::string& gpu) {
  auto& list = journal.consoles[gpu];
  if (!list.empty()) list.pop_back();
  if (list.empty()) journal.consoles.erase(gpu);
  return save_journal(root, journal);
}

// fbcon takes the consoles back by itself when the GPU's driver registers
// its fb again, but only onto its primary fb, and 5.10 does not re-select
// the primary: consoles that sat on the GPU at release can end up on another
// GPU's fb. Maps those back with FBIOPUT_CON2FBMAP and reads the map back.
Status remap_consoles(Context& ctx, const std::string& gpu, const std::vector<int>& want,
                      const std::string& preferred, std::vector<std::string>& notes) {
  if (want.empty()) return {};
  auto s = PT_TRY(discover(ctx.root));
  if (!s.con2fb.known) {
    notes.push_back("the console map cannot be read here; which fb tty" + console_ranges(want) +
                    " show is not checked");
    return {};
  }
  auto mine = s.framebuffers_of(gpu);
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
    auto it = s.con2fb.map.find(c);
    if (it != s.con2fb.map.end() && mine_idx.count(it->second)) continue;
    move.push_back(c);
    if (it != s.con2fb.map.end()) from.insert(it->second);
  }
  if (move.empty()) return {};
  PT_TRY(set_con2fb(ctx.root, target->node, move));
  auto after = PT_TRY(discover(ctx.root));
  const int idx = std::stoi(target->node.substr(2));
  for (int c : move)
    if (!after.con2fb.map.count(c) || after.con2fb.map.at(c) != idx)
      return fail("tty" + std::to_string(c), "FBIOPUT_CON2FBMAP to " + target->node +
                                                 " returned but the map does not show it");
  std::string was;
  for (int f : from) {
    std::string owner;
    for (const auto& x : s.framebuffers)
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

// What restoring vtconsole change C finds on S: "gone", "already" or "" (to
// do), with the consoles fbcon mapped to the GPU at release (WANT) and the
// recorded fb when the GPU still has it (PREFERRED).
std::string vtconsole_then_and_now(const ConsoleChange& c, const State& s, const std::string& gpu,
                                   std::vector<int>& want, std::string& preferred,
                                   std::vector<std::string>& notes) {
  std::string result;
  const VtConsole* v = s.vtconsole(c.name);
  if (!v) {
    std::string now;
    for (const auto& x : s.vtconsoles)
      now += (now.empty() ? "" : ", ") + x.node + " '" + shown(x) + "'";
    notes.push_back(
        "vtconsole '" + c.name + "' (" + c.node +
        " at release) no longer exists; vtconsoles now: " + (now.empty() ? "none" : now));
    result = "gone";
  } else if (v->bound) {
    result = "already";
  }
  // Which framebuffer fbcon served on the GPU then, and which now.
  const std::string now = fbs_now(s, gpu);
  for (const auto& was : c.served) {
    want.insert(want.end(), was.consoles.begin(), was.consoles.end());
    bool same = false;
    for (const auto* f : s.framebuffers_of(gpu))
      if (f->node == was.node && f->name == was.name) same = true;
    if (same && preferred.empty()) preferred = was.node;
    if (!same) {
      std::string owner;
      for (const auto& f : s.framebuffers)
        if (f.node == was.node) owner = f.name + " of " + (f.gpu.empty() ? "no GPU" : f.gpu);
      notes.push_back("fbcon served " + was.node + " (" + was.name + ") of " + gpu +
                      " at release; " + was.node +
                      (owner.empty() ? " no longer exists" : " is now " + owner) + "; " + gpu +
                      "'s framebuffers now: " + now);
    }
  }
  return result;
}

// The same for firmware framebuffer change C; "failed" with FAILURE set when
// its driver is gone.
std::string firmware_then_and_now(Context& ctx, const ConsoleChange& c, const State& s,
                                  const std::string& gpu, std::vector<std::string>& notes,
                                  std::optional<Error>& failure) {
  const FirmwareFb* f = s.firmware_fb(c.name);
  if (!f) {
    std::string fw;
    for (const auto& x : s.firmware) fw += (fw.empty() ? "" : ", ") + x.name;
    notes.push_back("firmware framebuffer " + c.name +
                    " no longer exists (a DRM driver removes it when it takes " +
                    "the GPU); firmware framebuffers now: " + (fw.empty() ? "none" : fw) + "; " +
                    gpu + "'s framebuffers now: " + fbs_now(s, gpu));
    return "gone";
  }
  if (f->driver == c.driver) return "already";
  if (!f->driver.empty()) {
    notes.push_back(c.name + " is bound to " + f->driver + " now, not " + c.driver +
                    "; left as it is");
    return "already";
  }
  if (!path_exists(ctx.root.path("/sys/bus/platform/drivers/" + c.driver))) {
    failure = Error{
        ENOENT, c.name,
        "its driver " + c.driver + " is not registered any more; load it and run restore again"};
    return "failed";
  }
  return "";
}

}  // namespace

std::string shown(const VtConsole& v) {
  return (v.mark.empty() ? "" : "(" + v.mark + ") ") + v.name;
}

std::string ms_text(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", ms);
  return buf;
}

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

Result<ReleaseReport> release(Context& ctx, const std::string& gpu) {
  auto lock = PT_TRY(lock_unless_dry_run(ctx));
  auto journal = PT_TRY(load_journal(ctx.root));
  auto s = PT_TRY(discover(ctx.root));
  ReleaseReport report{plan_release(s, gpu, journal), {}};
  if (ctx.dry_run) {
    for (const auto& st : report.plan.steps) report.steps.push_back({st, "planned", "planned", 0});
    return report;
  }
  std::vector<Step> done;
  for (const auto& st : report.plan.steps) {
    auto t0 = Clock::now();
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
          (void)forget_newest(ctx.root, journal, gpu);
        } else {
          undone = false;
          left +=
              " " + it->change.kind + " '" + it->change.name + "' (" + u.error().describe() + ")";
        }
      }
      e.message += undone ? "; the earlier steps were undone"
                          : "; undoing the earlier steps failed:" + left +
                                " (recorded in the journal; run 'pt-console restore " + gpu + "')";
      e.exit = undone ? Exit::rolled_back : Exit::not_rolled_back;
      return std::unexpected(e);
    }
    ConsoleChange c = st.change;
    c.time = now_of(ctx);
    journal.consoles[gpu].push_back(c);
    PT_TRY(save_journal(ctx.root, journal));
    done.push_back(st);
    report.steps.push_back({st, "done", "done", ms_since(t0)});
  }
  return report;
}

Result<RestoreReport> restore(Context& ctx, const std::string& gpu) {
  auto lock = PT_TRY(lock_unless_dry_run(ctx));
  auto journal = PT_TRY(load_journal(ctx.root));
  RestoreReport report;
  auto it = journal.consoles.find(gpu);
  if (it == journal.consoles.end() || it->second.empty()) {
    report.recorded = false;
    return report;
  }
  auto& notes = report.notes;
  auto& failure = report.failure;
  const std::vector<ConsoleChange> changes = it->second;
  for (auto c = changes.rbegin(); c != changes.rend(); ++c) {
    auto s = PT_TRY(discover(ctx.root));
    StepOutcome out{undo_of(*c, s), "", "", 0};
    std::vector<int> want;  // consoles fbcon mapped to the GPU at release
    std::string preferred;  // the recorded fb, when the GPU still has it
    out.did = c->kind == "vtconsole" ? vtconsole_then_and_now(*c, s, gpu, want, preferred, notes)
                                     : firmware_then_and_now(ctx, *c, s, gpu, notes, failure);
    if (out.did == "failed") {
      out.result = out.did;
      report.steps.push_back(out);
      break;
    }
    if (out.did.empty()) {
      if (ctx.dry_run) {
        out.did = out.result = "planned";
        report.steps.push_back(out);
        continue;
      }
      auto t0 = Clock::now();
      if (auto r = run_step(ctx, out.step, notes); !r) {
        failure = r.error();
        out.did = out.result = "failed";
        report.steps.push_back(out);
        break;
      }
      out.did = "done";
      out.ms = ms_since(t0);
    }
    out.result = out.did;
    if (c->kind == "vtconsole" && out.did != "gone" && !ctx.dry_run) {
      if (auto r = remap_consoles(ctx, gpu, want, preferred, notes); !r) {
        failure = r.error();
        out.result = "failed";
        report.steps.push_back(out);
        break;
      }
    }
    report.steps.push_back(out);
    if (!ctx.dry_run) PT_TRY(forget_newest(ctx.root, journal, gpu));
  }
  if (!ctx.dry_run && !failure) {
    if (auto s = discover(ctx.root)) {
      const VtConsole* fbcon = s->fbcon();
      std::string where = "fbcon " + std::string(fbcon && fbcon->bound ? "bound" : "not bound") +
                          "; " + gpu + "'s framebuffers: " + fbs_now(*s, gpu);
      if (s->con2fb.known) where += "; map " + con2fb_text(s->con2fb);
      notes.push_back("now: " + where);
    }
  }
  if (failure) failure->message += "; what is not restored stays in the journal";
  return report;
}

Result<BindReport> bind_named(Context& ctx, const std::string& name, const std::string& driver,
                              bool bind) {
  auto s = PT_TRY(discover(ctx.root));
  BindReport report;
  Step& st = report.step;
  st.bind = bind;
  std::string& already = report.already;
  if (const VtConsole* v = s.vtconsole(name)) {
    if (!driver.empty())
      return usage_error("--driver", "applies to firmware framebuffers, not to vtconsoles");
    st.change = ConsoleChange{"vtconsole", v->name, "", v->node, 0, {}};
    st.path = "/sys/class/vtconsole/" + v->node + "/bind";
    st.value = bind ? "1" : "0";
    if (v->bound == bind)
      already = v->node + " '" + v->name + "' is already " + (bind ? "bound" : "unbound");
  } else if (const FirmwareFb* f = s.firmware_fb(name)) {
    std::string drv =
        bind ? (driver.empty() ? default_fb_driver(ctx.root, f->name) : driver) : f->driver;
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
    for (const auto& v : s.vtconsoles) known += (known.empty() ? "'" : ", '") + v.name + "'";
    for (const auto& f : s.firmware) known += (known.empty() ? "" : ", ") + f.name;
    return usage_error("'" + name + "'",
                       "no vtconsole and no firmware framebuffer of that name; known here: " +
                           (known.empty() ? "none" : known) + " (see pt-console list)");
  }
  if (!already.empty()) {
    report.result = "already";
  } else if (ctx.dry_run) {
    report.result = "planned";
  } else {
    auto lock = PT_TRY(lock_unless_held(ctx));
    auto t0 = Clock::now();
    PT_TRY(run_step(ctx, st, report.notes));
    report.result = "done";
    report.ms = ms_since(t0);
  }
  return report;
}

Result<VtSwitch> switch_vt(Context& ctx, int n) {
  VtSwitch report;
  const std::string& tty0 = report.tty0 = ctx.root.path("/dev/tty0");
  struct stat st {};
  int stat_err = ::stat(tty0.c_str(), &st) != 0 ? errno : 0;
  if (stat_err || !S_ISCHR(st.st_mode))
    return fail(tty0,
                ctx.root.is_real()
                    ? "is not a character device; there is no virtual terminal to switch"
                    : "is not a character device under --root; vt needs a real console (pt never "
                      "falls back to the real /dev/tty0)",
                stat_err);
  if (ctx.dry_run) return report;
  int fd = ::open(tty0.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) fd = ::open(tty0.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return fail(tty0, "cannot open it; switching VTs needs root", errno);
  auto t0 = Clock::now();
  if (::ioctl(fd, VT_ACTIVATE, n) != 0) {
    int e = errno;
    ::close(fd);
    return fail(tty0, "VT_ACTIVATE " + std::to_string(n) + " failed", e);
  }
  // VT_WAITACTIVE cannot be given up in the caller, so a child waits; past --timeout it is killed.
  spawn::Options opts;
  opts.timeout = ctx.timeout;
  opts.on_timeout = spawn::OnTimeout::kill;
  opts.keep_fd = fd;
  WaitReport progress(ctx.on_wait, "tty" + std::to_string(n) + " to become the active VT",
                      "tty" + std::to_string(n), ctx.timeout);
  opts.on_tick = [&] { progress.tick(); };
  auto waited = spawn::call(
      ctx.root, [fd, n](int) { return ::ioctl(fd, VT_WAITACTIVE, n) == 0 ? 0 : 1; }, opts);
  ::close(fd);
  progress.end(waited && waited->finished && waited->code == 0);
  if (!waited) return fail("fork", "cannot wait for the switch", waited.error().err);
  if (!waited->finished) {
    auto active = read_attr(ctx.root, "/sys/class/tty/tty0/active").value_or("unknown");
    return fail("tty" + std::to_string(n),
                "the switch did not finish within --timeout (the active VT is still " + active +
                    "; for example a process controlling it in VT_PROCESS mode has not let it go)",
                0, Exit::timeout);
  }
  if (waited->code != 0) return fail(tty0, "VT_WAITACTIVE " + std::to_string(n) + " failed");
  report.active = read_attr(ctx.root, "/sys/class/tty/tty0/active").value_or("");
  if (!report.active.empty() && report.active != "tty" + std::to_string(n))
    return fail("tty" + std::to_string(n),
                "the kernel reports " + report.active + " active after the switch");
  report.ms = ms_since(t0);
  return report;
}

}  // namespace pt::console
