#include "common.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "pt/journald.hpp"
#include "pt/render.hpp"

namespace pt::cli {

namespace {

// --timeout and --lock-timeout through pt::duration, the check pt.conf's
// timeouts get too, so nan, inf and 1e300 fail here with exit 2.
CLI::Validator duration_check(const std::string& name, bool zero_ok) {
  return CLI::Validator(
      [name, zero_ok](const std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != 0) return "'" + text + "' is not a number of seconds";
        auto d = duration(v, name, zero_ok);
        return d ? std::string() : d.error().message;
      },
      "");
}

}  // namespace

void add_common_options(CLI::App& app, CommonOptions& o) {
  // "pt-bind 0.1.0 (git 1a2b3c4)": which build this is, for bug reports.
  std::string version = app.get_name() + " " + PT_VERSION;
  if (std::string(PT_GIT_DESCRIBE).size()) version += " (git " + std::string(PT_GIT_DESCRIBE) + ")";
  app.set_version_flag("--version", version);
  o.tool = app.get_name();
  app.add_option("--root", o.root,
                 "Use DIR in place of / for /sys, /dev, /proc, /run, /etc and /lib/modules")
      ->type_name("DIR")
      // An empty DIR would silently mean the live system, even over PT_ROOT.
      ->check(CLI::Validator(
          [](const std::string& dir) -> std::string {
            return dir.empty() ? "DIR is empty; name a directory, or leave --root out to use /"
                               : std::string();
          },
          ""));
  app.add_flag("--json", o.json, "Print machine-readable JSON");
  app.add_flag("-v,--verbose", o.verbose, "Print every sysfs write with its timing on stderr");
  app.add_flag("--dry-run", o.dry_run,
               "Print the ordered plan and every write, and change nothing");
  app.add_option("--timeout", o.timeout, "Seconds each blocking write may take (default 10)")
      ->type_name("SECONDS")
      ->check(duration_check("--timeout", false));
  app.add_option("--lock-timeout", o.lock_timeout, "Seconds to wait for the pt lock (default 30)")
      ->type_name("SECONDS")
      ->check(duration_check("--lock-timeout", true));
}

CLI::App* add_recover_command(CLI::App& app, const std::string& description,
                              std::vector<std::string>& devices, bool& recipe,
                              std::string& reset_method) {
  auto* recover = app.add_subcommand("recover", description);
  recover->add_option("devices", devices, "DEV...")->required();
  recover->add_flag(
      "--recipe", recipe,
      "Print the recovery recipe of pt(7) for DEV..., one command a line, and run nothing");
  recover
      ->add_option("--reset-method", reset_method,
                   "The method of the recipe's resets (default bus; auto: pt-reset's choice)")
      ->type_name("METHOD");
  return recover;
}

void add_help_footer(CLI::App& app, const std::string& slot, const std::vector<std::string>& examples) {
  std::string text =
      "DEV is a PCI function or slot: 0000:01:00.0 (domain:bus:device.function), 01:00.0 "
      "(domain 0000) or 01:00 (the slot: " +
      slot + ").\n\nExamples:\n";
  for (const auto& e : examples) text += "  " + e + "\n";
  text +=
      "\nExit status (pt(7)): 0 ok, 1 failed and nothing changed, 2 usage, 3 failed and rolled "
      "back, 4 failed and not rolled back, 5 timed out, 6 degraded (pt-drm check), 75 busy (the pt "
      "lock is held).\nSee " +
      app.get_name() + "(8) and pt(7).";
  app.footer(text);
}

void install_progress(const std::string& tool, CommonOptions& o) {
  if (o.json || ::isatty(STDERR_FILENO) != 1) return;
  o.on_wait = render::progress_printer(tool, std::cerr);
}

ObservedWriter::Observer verbose_observer(const std::string& tool, const CommonOptions& o) {
  if (!o.verbose) return nullptr;
  return [tool](const WriteEvent& ev) {
    const char* why = ev.timed_out ? "timed out" : ev.err ? std::strerror(ev.err) : "";
    std::fprintf(stderr, "%s: write %s %s %.3f ms%s%s\n", tool.c_str(), ev.path.c_str(),
                 show_value(ev.value).c_str(), double(ev.elapsed.count()) / 1000.0,
                 ev.failed ? " failed: " : "", why);
    std::fflush(stderr);
  };
}

int finish(const std::string& tool, const Result<Exit>& result) {
  // A verdict or report that never arrived (>/dev/full, a full disk) must
  // not leave a bare exit status: say so. The status stays the one the
  // command earned, since what it did is done.
  std::cout.flush();
  if (!std::cout)
    std::cerr << tool << ": cannot write standard output; the command's report is lost\n";
  journald::command_end(tool, result ? *result : result.error().exit,
                        result ? std::string() : result.error().describe());
  if (result) return int(*result);
  std::cerr << tool << ": " << result.error().describe() << "\n";
  return int(result.error().exit);
}

int parse(CLI::App& app, int argc, char** argv, bool& done) {
  done = false;
  app.failure_message([](const CLI::App* a, const CLI::Error& e) {
    const std::string tool = a->get_name();
    return tool + ": " + e.what() + "\n" + tool + ": run '" + tool +
           " --help' for the commands, options and address forms\n";
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    done = true;
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    done = true;
    app.exit(e);
    return int(Exit::usage);
  }
  return 0;
}

}  // namespace pt::cli
