#include "pt/recover.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "pt/lock.hpp"
#include "pt/render.hpp"
#include "pt/spawn.hpp"
#include "pt/sysfs.hpp"
#include "pt/try.hpp"

namespace pt::recover {

namespace {

RecoverStep step_named(const char* name, const std::string& reset_method) {
  RecoverStep s{name, {}};
  if (s.name == "reset" && !reset_method.empty() && reset_method != "auto")
    s.options["method"] = reset_method;
  return s;
}

std::string driver_of(const Root& root, const PciAddress& a) {
  return link_basename(root, "/sys/bus/pci/devices/" + a.str() + "/driver").value_or("");
}

}  // namespace

std::vector<std::string> step_argv(const RecoverStep& step, const PciAddress& dev,
                                   const std::string& tool_dir, const std::string& root) {
  // Each step's tool and its command word (none for pt-reset).
  static constexpr struct {
    const char* step;
    const char* tool;
    const char* verb;
  } kTools[] = {{"reset", "pt-reset", nullptr},       {"attach", "pt-bind", "attach"},
                {"drm-wait", "pt-drm", "wait"},       {"vgaarb", "pt-vgaarb", "restore"},
                {"console", "pt-console", "restore"}, {"drm-check", "pt-drm", "check"}};
  auto opt = [&](const char* key) {
    auto it = step.options.find(key);
    return it == step.options.end() ? std::string() : it->second;
  };
  std::vector<std::string> argv;
  for (const auto& t : kTools) {
    if (step.name != t.step) continue;
    argv.push_back(tool_dir.empty() ? std::string(t.tool) : tool_dir + "/" + t.tool);
    if (root != "/" && !root.empty()) argv.insert(argv.end(), {"--root", root});
    if (t.verb) argv.push_back(t.verb);
  }
  if (argv.empty()) return argv;
  if (step.name == "reset") {
    if (auto m = opt("method"); !m.empty()) argv.insert(argv.end(), {"--method", m});
    if (opt("force") == "true") argv.push_back("--force");
  }
  argv.push_back(dev.str());
  if (step.name == "drm-wait")
    if (auto t = opt("timeout"); !t.empty()) argv.insert(argv.end(), {"--timeout", t});
  return argv;
}

Result<std::vector<Command>> recipe(const Root& root, std::vector<PciAddress> functions,
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
  std::vector<Command> out;
  auto add = [&](const char* name, const PciAddress& dev) {
    out.push_back({name, dev, step_argv(step_named(name, reset_method), dev, "", "/")});
  };
  for (const char* name : kRecipe) {
    const std::string step = name;
    if (step == "reset") {
      for (const auto& g : gpus) add(name, g);
    } else if (step == "attach") {
      if (functions.empty()) continue;
      add(name, functions.front());
      for (size_t i = 1; i < functions.size(); ++i) out.back().argv.push_back(functions[i].str());
    }
  }
  // The display steps go GPU by GPU: each card settles before the next.
  for (const auto& g : gpus)
    for (const char* name : kRecipe) {
      const std::string step = name;
      if (step == "reset" || step == "attach") continue;
      if (step == "vgaarb" && std::find(vga.begin(), vga.end(), g) == vga.end()) continue;
      add(name, g);
    }
  return out;
}

Result<Exit> run(Context& ctx, const PciAddress& addr, const std::string& tool_dir,
                 std::ostream& out) {
  const auto conf = PT_TRY(load_conf(ctx.root));
  const DeviceConf* d = conf.find(addr);
  if (!d)
    return fail(addr.str(),
                "no [device.NAME] table in " + conf.path + " names it; add one with a recover list",
                ENOENT);
  if (d->recover.empty())
    return fail(addr.str(), "[device." + d->name + "] in " + conf.path + " lists no recover steps",
                ENOENT);
  const std::string root = ctx.root.is_real() ? "/" : ctx.root.dir();
  const std::string bdf = d->bdf.str();
  // One lock for the whole sequence, handed to each step through
  // PT_LOCK_FD, so no other pt command slips in between two steps.
  const auto lock = PT_TRY(lock_unless_dry_run(ctx.root, ctx.dry_run, ctx.lock_timeout));
  spawn::Options so;
  if (lock) {
    so.keep_fd = lock->fd();
    so.env.emplace_back(kLockFdEnv, std::to_string(lock->fd()));
  }
  for (const auto& step : d->recover) {
    const auto argv = step_argv(step, d->bdf, tool_dir, root);
    const std::string line = render::join(argv, " ");
    if (step.name == "reset") {
      // A reset belongs before the attach; once the host driver has the
      // device (udev starts us on its bind) resetting it would pull it away.
      const std::string drv = driver_of(ctx.root, d->bdf);
      if (drv != "vfio-pci") {
        out << "recover " << bdf << ": skip reset: the function is on "
            << (drv.empty() ? "no driver" : drv) << ", not vfio-pci\n";
        continue;
      }
    }
    if (ctx.dry_run) {
      out << "recover " << bdf << ": would run " << line << "\n";
      continue;
    }
    out << "recover " << bdf << ": " << step.name << ": " << line << "\n" << std::flush;
    const auto start = std::chrono::steady_clock::now();
    auto ran = spawn::exec(ctx.root, argv, so);
    if (!ran) return fail(argv[0], "cannot start the step", ran.error().err);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    const int rc = ran->code;
    out << "recover " << bdf << ": " << step.name << " exited " << rc << " after " << ms << " ms\n";
    if (rc == 127)
      return fail(argv[0], "the step's tool is missing; install the whole pt kit", ENOENT);
    if (rc != 0)
      return std::unexpected(Error{
          0, bdf, "recovery stopped at step '" + step.name + "' (exit " + std::to_string(rc) + ")",
          Exit(rc)});
  }
  out << "recover " << bdf << ": done\n";
  return Exit::ok;
}

}  // namespace pt::recover
