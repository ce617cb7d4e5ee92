// pt-drm: is a GPU's display up, which connector is lit, is the card ready.
// Read-only: it never takes DRM master and never sets a mode.
#include <iostream>

#include "common.hpp"
#include "pt/drm_cmd.hpp"

int main(int argc, char** argv) {
  pt::drm::Options o;
  CLI::App app{"DRM/KMS health of a GPU: connectors, CRTCs, readiness, reprobe", "pt-drm"};
  app.fallthrough();
  app.require_subcommand(1);
  pt::cli::add_common_options(app, o.common);
  // Only probe writes: the other commands refuse the options of a write.
  app.get_option("--dry-run")->description("probe only: print the writes and change nothing");
  app.get_option("--lock-timeout")
      ->description("probe only: seconds to wait for the pt lock (default 30)");
  pt::cli::add_help_footer(app, "function 0",
                           {"pt-drm list", "pt-drm show 01:00.0", "pt-drm wait 01:00.0 --timeout 15",
                            "pt-drm check 01:00.0", "pt-drm probe 01:00.0"});

  app.add_subcommand("list", "List DRM devices: nodes, PCI device, driver, KMS, connectors");
  auto* show =
      app.add_subcommand("show", "Show connectors, CRTCs, planes, DRM master and fbcon of DEV");
  show->add_option("device", o.device, "DEV")->required();
  show->add_option("connector", o.connector, "Only this CONNECTOR (e.g. HDMI-A-1)");
  auto* probe = app.add_subcommand("probe", "Force connector re-detection and report what changed");
  probe->add_option("device", o.device, "DEV")->required();
  probe->add_option("--connector", o.connector, "Probe only this connector")->type_name("NAME");
  auto* wait = app.add_subcommand(
      "wait", "Block until DEV's DRM card exists and its KMS state reads (--timeout)");
  wait->add_option("device", o.device, "DEV")->required();
  auto* check =
      app.add_subcommand("check", "Health verdict: 0 healthy, 6 degraded, 1 no DRM device");
  check->add_option("device", o.device, "DEV")->required();

  bool done = false;
  int rc = pt::cli::parse(app, argc, argv, done);
  if (done) return rc;
  o.command = app.get_subcommands().front()->get_name();
  for (const char* name : {"--dry-run", "--lock-timeout"})
    if (o.command != "probe" && app.get_option(name)->count() > 0) {
      std::cerr << "pt-drm: " << name << " applies to probe only; " << o.command
                << " writes nothing\npt-drm: run 'pt-drm --help' for the commands, options and "
                   "address forms\n";
      return int(pt::Exit::usage);
    }
  if (o.common.verbose)
    o.trace = [](const std::string& line) { std::cerr << "pt-drm: " << line << std::endl; };
  // -v prints a line for each look of wait, which a line rewritten in place would garble.
  if (!o.common.verbose) pt::cli::install_progress("pt-drm", o.common);
  return pt::cli::finish("pt-drm",
                         pt::drm::run(o, std::cout, pt::cli::verbose_observer("pt-drm", o.common)));
}
