#include "pt/recover.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <stdexcept>

#include "pt/bind.hpp"
#include "pt/console_change.hpp"
#include "pt/drm.hpp"
#include "pt/drm_verdict.hpp"
#include "pt/drm_wait.hpp"
#include "pt/lock.hpp"
#include "pt/metrics.hpp"
#include "pt/pci.hpp"
#include "pt/render.hpp"
#include "pt/reset.hpp"
#include "pt/sysfs.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"
#include "pt/vgaarb_ops.hpp"
#include "pt/vgaarb_status.hpp"

namespace pt::recover {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string ms_text(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", ms);
  return buf;
}

std::string option(const Step& step, const char* key) {
  auto it = step.options.find(key);
  return it == step.options.end() ? std::string() : it->second;
}

std::string driver_of(const Root& root, const PciAddress& a) {
  return link_basename(root, "/sys/bus/pci/devices/" + a.str() + "/driver").value_or("");
}

std::vector<DeviceSpec> specs_of(const std::vector<PciAddress>& devices) {
  std::vector<DeviceSpec> out;
  for (const auto& d : devices) out.push_back(DeviceSpec{d.domain, d.bus, d.dev, d.func, d.str()});
  return out;
}

// ------------------------------------------------------------ the steps
// Each performs what its tool's command does around the engine call, and
// returns what it did in a few words.

Result<std::string> do_reset(Context& ctx, const Step& step,
                             const std::vector<PciAddress>& devices) {
  reset::Options o;
  if (auto m = option(step, "method"); !m.empty()) o.method = m;
  o.force = option(step, "force") == "true";
  const auto jobs = PT_TRY(reset::plan(ctx, specs_of(devices), o));
  const auto outcomes = PT_TRY(reset::perform(ctx, jobs));
  std::vector<std::string> done;
  for (const auto& oc : outcomes)
    done.push_back(render::join(oc.devices, " ") + " " + oc.method + " via " + oc.via + " (" +
                   ms_text(oc.total_ms) + ")");
  return render::join(done, ", ");
}

Result<std::string> do_attach(Context& ctx, const Step& step) {
  const auto specs = specs_of(step.devices);
  auto make_plan = [&](const Journal& journal) {
    return bind::plan_attach(ctx, specs, bind::AttachOptions{}, journal);
  };
  const auto done = PT_TRY(bind::mutate(ctx, make_plan, false));
  std::vector<std::string> moves;
  for (const auto& m : done.outcome.moves)
    moves.push_back(m.already ? m.device + " " + m.note
                              : m.device + " " + (m.from.empty() ? "no driver" : m.from) + " -> " +
                                    (m.to.empty() ? "no driver" : m.to));
  return render::join(moves, ", ");
}

// pt-drm's bound backend: every card read in an abandonable child, bounded
// by the step's timeout.
std::unique_ptr<drm::Backend> backend_for(const Context& ctx) {
  return drm::make_bounded_backend(drm::make_backend(ctx.root), ctx.root, ctx.timeout);
}

Result<std::string> do_drm_wait(Context& ctx, const Step& step, const PciAddress& gpu) {
  Context c = ctx;
  if (auto t = option(step, "timeout"); !t.empty())
    c.timeout = PT_TRY(duration(std::strtod(t.c_str(), nullptr), "drm-wait.timeout", false));
  const auto dev = PT_TRY(target::read_one(c.root, gpu.str(), target::drm_display()));
  auto backend = backend_for(c);
  const auto ready = PT_TRY(drm::wait_ready(c, *backend, dev, gpu.str(), {}));
  return ready.card + " is ready (KMS readable) after " + ms_text(ready.waited_ms);
}

Result<std::string> do_vgaarb(Context& ctx, const PciAddress& gpu) {
  const auto spec = PT_TRY(parse_device_spec(gpu.str()));
  const auto all = PT_TRY(scan_devices(ctx.root, ScanOptions{.names = false}));
  const auto dev = PT_TRY(target::resolve(all, spec, target::vga(false))).front();
  const auto r = PT_TRY(vgaarb::restore(ctx, dev));
  return std::string("decodes ") + vga::state_name(r.change.after.decodes) +
         (r.change.already ? " (already)" : "") + (r.dropped ? "; the record is removed" : "");
}

Result<std::string> do_console(Context& ctx, const PciAddress& gpu) {
  const auto dev = PT_TRY(target::read_one(ctx.root, gpu.str(), target::console_gpu()));
  const auto r = PT_TRY(console::restore(ctx, dev.addr.str()));
  if (r.failure) return std::unexpected(*r.failure);
  if (!r.recorded) return std::string("nothing recorded: no console was released");
  int done = 0, already = 0;
  for (const auto& s : r.steps) {
    done += s.did == "done";
    already += s.did == "already";
  }
  return std::to_string(done) + " change(s) restored" +
         (already ? ", " + std::to_string(already) + " already so" : "");
}

Result<std::string> do_drm_check(Context& ctx, const PciAddress& gpu) {
  const auto dev = PT_TRY(target::read_one(ctx.root, gpu.str(), target::drm_display()));
  auto backend = backend_for(ctx);
  const drm::Health h = drm::examine(ctx.root, *backend, dev);
  // A read that never returned is no verdict on the display: exit 5, not 6.
  if (h.stuck) return std::unexpected(*h.stuck);
  const auto v = drm::judge(h.input);
  if (v.exit != Exit::ok)
    return std::unexpected(Error{0, gpu.str(), v.state + ": " + v.summary, v.exit});
  return v.state + ": " + v.summary;
}

Result<std::string> perform(Context& ctx, const Step& step,
                            const std::vector<PciAddress>& devices) {
  const PciAddress& first = devices.front();
  if (step.name == "reset") return do_reset(ctx, step, devices);
  if (step.name == "attach") return do_attach(ctx, step);
  if (step.name == "drm-wait") return do_drm_wait(ctx, step, first);
  if (step.name == "vgaarb") return do_vgaarb(ctx, first);
  if (step.name == "console") return do_console(ctx, first);
  if (step.name == "drm-check") return do_drm_check(ctx, first);
  // pt.conf's parser knows only kRecipe's names: another one is a bug here.
  throw std::logic_error("recover: unknown step '" + step.name + "'");
}

}  // namespace

std::vector<std::string> step_argv(const Step& step, const std::string& root) {
  // Each step's tool and its command word (none for pt-reset).
  static constexpr struct {
    const char* step;
    const char* tool;
    const char* verb;
  } kTools[] = {{"reset", "pt-reset", nullptr},       {"attach", "pt-bind", "attach"},
                {"drm-wait", "pt-drm", "wait"},       {"vgaarb", "pt-vgaarb", "restore"},
                {"console", "pt-console", "restore"}, {"drm-check", "pt-drm", "check"}};
  std::vector<std::string> argv;
  for (const auto& t : kTools) {
    if (step.name != t.step) continue;
    argv.push_back(t.tool);
    if (root != "/" && !root.empty()) argv.insert(argv.end(), {"--root", root});
    if (t.verb) argv.push_back(t.verb);
  }
  if (argv.empty()) return argv;
  if (step.name == "reset") {
    if (auto m = option(step, "method"); !m.empty()) argv.insert(argv.end(), {"--method", m});
    if (option(step, "force") == "true") argv.push_back("--force");
  }
  for (const auto& d : step.devices) argv.push_back(d.str());
  if (step.name == "drm-wait")
    if (auto t = option(step, "timeout"); !t.empty()) argv.insert(argv.end(), {"--timeout", t});
  return argv;
}

Result<std::vector<Step>> recipe(const Root& root, std::vector<PciAddress> functions,
                                 const std::string& reset_method) {
  std::sort(functions.begin(), functions.end());
  functions.erase(std::unique(functions.begin(), functions.end()), functions.end());
  std::vector<PciAddress> gpus, vga;
  for (const auto& f : functions) {
    const auto cls = read_attr(root, "/sys/bus/pci/devices/" + f.str() + "/class");
    if (!cls) return fail(f.str(), "no such PCI device; list devices with 'pt-bind list'", ENODEV);
    if (cls->starts_with("0x03")) gpus.push_back(f);
    if (cls->starts_with("0x0300")) vga.push_back(f);
  }
  std::vector<Step> out;
  // One reset of them all: pt-reset resets separate domains in parallel.
  if (!gpus.empty()) {
    Step reset{"reset", gpus, {}};
    if (!reset_method.empty() && reset_method != "auto") reset.options["method"] = reset_method;
    out.push_back(std::move(reset));
  }
  if (!functions.empty()) out.push_back(Step{"attach", functions, {}});
  // The display steps go GPU by GPU: each card settles before the next.
  for (const auto& g : gpus)
    for (const char* name : kRecipe) {
      const std::string step = name;
      if (step == "reset" || step == "attach") continue;
      if (step == "vgaarb" && std::find(vga.begin(), vga.end(), g) == vga.end()) continue;
      out.push_back(Step{step, {g}, {}});
    }
  return out;
}

Result<std::vector<Unit>> plan(const Root& root, const std::vector<DeviceSpec>& specs,
                               const std::string& reset_method) {
  const auto functions = PT_TRY(target::present(root, specs, target::any()));
  const auto conf = PT_TRY(load_conf(root));
  std::vector<Unit> units;
  std::vector<const DeviceConf*> tables;
  std::vector<PciAddress> rest;
  for (const auto& f : functions) {
    const DeviceConf* d = conf.find(f);
    if (!d) {
      rest.push_back(f);
      continue;
    }
    if (std::find(tables.begin(), tables.end(), d) != tables.end()) continue;
    tables.push_back(d);
    if (d->recover.empty())
      return fail(f.str(),
                  "[device." + d->name + "] in " + conf.path +
                      " lists no recover steps; add a recover list, or remove the table "
                      "to recover it with the recipe of pt(7)",
                  ENOENT);
    Unit u{d->bdf.str(), {}};
    for (const auto& s : d->recover) u.steps.push_back(Step{s.name, {d->bdf}, s.options});
    units.push_back(std::move(u));
  }
  if (!rest.empty()) {
    std::vector<std::string> names;
    for (const auto& f : rest) names.push_back(f.str());
    units.push_back(Unit{render::join(names, " "), PT_TRY(recipe(root, rest, reset_method))});
  }
  return units;
}

namespace {
// For pt metrics (metrics.hpp). Best effort: a count that cannot be written
// never fails the recovery it counts.
void count_recovery(const Context& ctx, const std::string& result) {
  const int64_t now = ctx.now ? ctx.now() : int64_t(std::time(nullptr));
  (void)metrics::record_recover(ctx.root, result, now);
}
}  // namespace

Result<Exit> run(Context& ctx, const std::vector<Unit>& units, const Observer& on_event) {
  const auto start = Clock::now();
  auto tell = [&](Event e) {
    e.elapsed_ms = ms_since(start);
    if (on_event) on_event(e);
  };
  // One lock for the whole recovery, so no other pt command slips in
  // between two steps; the steps run on a context that says so.
  const auto lock = PT_TRY(lock_unless_dry_run(ctx));
  Context held = ctx;
  held.lock_held = !ctx.dry_run;
  for (const auto& unit : units) {
    for (const auto& step : unit.steps) {
      std::vector<PciAddress> devices = step.devices;
      if (step.name == "reset") {
        // A reset belongs before the attach; once the host driver has the
        // function (udev starts us on its bind) resetting it would pull it away.
        std::vector<PciAddress> keep;
        for (const auto& d : devices) {
          const std::string drv = driver_of(ctx.root, d);
          if (drv == "vfio-pci")
            keep.push_back(d);
          else
            tell({Event::Kind::skip, unit.label, step, d,
                  "the function is on " + (drv.empty() ? std::string("no driver") : drv) +
                      ", not vfio-pci"});
        }
        devices = std::move(keep);
        if (devices.empty()) continue;
      }
      Step shown = step;
      shown.devices = devices;
      if (ctx.dry_run) {
        tell({Event::Kind::dry_run, unit.label, shown, devices.front(), ""});
        continue;
      }
      tell({Event::Kind::start, unit.label, shown, devices.front(), ""});
      const auto t0 = Clock::now();
      auto done = perform(held, step, devices);
      Event e{done ? Event::Kind::ok : Event::Kind::failed, unit.label, shown, devices.front(), ""};
      e.ms = ms_since(t0);
      if (!done) {
        Error err = done.error();
        e.exit = int(err.exit);
        e.detail = err.describe();
        tell(e);
        err.message = "recovery stopped at step '" + step.name + "' (exit " +
                      std::to_string(e.exit) + "): " + err.message;
        count_recovery(ctx, "failed");
        return std::unexpected(err);
      }
      e.detail = *done;
      tell(e);
    }
    Event d{Event::Kind::done, unit.label, {}, {}, ""};
    tell(d);
    if (!ctx.dry_run) count_recovery(ctx, "ok");
  }
  return Exit::ok;
}

Observer printer(std::ostream& out, bool terminal, const std::string& root) {
  return [&out, terminal, root](const Event& e) {
    const std::string bdf = e.device.str();
    const std::string& name = e.step.name;
    std::string line;
    if (terminal) {
      char stamp[32];
      std::snprintf(stamp, sizeof stamp, "[%7.2f s] ", e.elapsed_ms / 1000.0);
      switch (e.kind) {
        case Event::Kind::start:
          return;  // the step's line comes when it ends
        case Event::Kind::skip:
          line = bdf + "  " + name + "  skipped: " + e.detail;
          break;
        case Event::Kind::dry_run:
          line = bdf + "  " + name + "  would run " + render::join(step_argv(e.step, root), " ");
          break;
        case Event::Kind::ok:
          line = bdf + "  " + name + "  ok  " + ms_text(e.ms) + "  " + e.detail;
          break;
        case Event::Kind::failed:
          line = bdf + "  " + name + "  FAILED (exit " + std::to_string(e.exit) + ") after " +
                 ms_text(e.ms);
          break;
        case Event::Kind::done:
          line = e.unit + "  recovered";
          break;
      }
      out << render::printable(stamp + line, false) << "\n" << std::flush;
      return;
    }
    const std::string head = "recover " + bdf + ": ";
    switch (e.kind) {
      case Event::Kind::start:
        line = head + name + ": " + render::join(step_argv(e.step, root), " ");
        break;
      case Event::Kind::skip:
        line = head + "skip " + name + ": " + e.detail;
        break;
      case Event::Kind::dry_run:
        line = head + "would run " + render::join(step_argv(e.step, root), " ");
        break;
      case Event::Kind::ok:
        line =
            head + name + " exited 0 after " + std::to_string(int64_t(e.ms)) + " ms: " + e.detail;
        break;
      case Event::Kind::failed:
        line = head + name + " exited " + std::to_string(e.exit) + " after " +
               std::to_string(int64_t(e.ms)) + " ms";
        break;
      case Event::Kind::done:
        line = "recover " + e.unit + ": done";
        break;
    }
    out << render::printable(line, false) << "\n" << std::flush;
  };
}

Observer recorder(nlohmann::json& steps, const std::string& root) {
  return [&steps, root](const Event& e) {
    using K = Event::Kind;
    if (e.kind == K::start || e.kind == K::done) return;
    std::vector<std::string> devs;
    for (const auto& d : e.step.devices) devs.push_back(d.str());
    static const char* const kResult[] = {"started", "skipped", "planned", "ok", "failed", "done"};
    nlohmann::json j = {{"step", e.step.name},
                        {"device", e.device.str()},
                        {"devices", e.kind == K::skip ? nlohmann::json::array({e.device.str()})
                                                      : nlohmann::json(devs)},
                        {"result", kResult[int(e.kind)]},
                        {"detail", render::nullable(e.detail)},
                        {"argv", step_argv(e.step, root)}};
    if (e.kind == K::ok || e.kind == K::failed) {
      j["exit"] = e.exit;
      j["ms"] = e.ms;
    }
    steps.push_back(std::move(j));
  };
}

}  // namespace pt::recover
