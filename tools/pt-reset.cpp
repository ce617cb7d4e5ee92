// pt-reset: show which PCI resets a device supports and why; perform one and verify it.
#include "common.hpp"
#include "pt/reset_cmd.hpp"

#include <iostream>

int main(int argc, char** argv) {
  pt::reset::CliOptions o;
  CLI::App app{"Show, choose, perform and verify PCI function resets", "pt-reset"};
  app.fallthrough();
  pt::cli::add_common_options(app, o.common);
  pt::cli::add_help_footer(app, "every function of it",
                           {"pt-reset methods 01:00.0", "pt-reset 01:00.0",
                            "pt-reset --method bus 01:00", "pt-reset --dry-run --json 01:00.0"});
  app.add_option("devices", o.devices, "DEV... to reset");
  app.add_option("--method", o.method, "device_specific, acpi, flr, af_flr, pm, bus, slot or rescan")
      ->type_name("METHOD");
  app.add_flag("--force", o.force, "Reset a device a host driver holds, or the boot VGA with its console");
  auto* methods = app.add_subcommand("methods", "List every reset method of DEV with why it is or is not available");
  methods->add_option("devices", o.devices, "DEV...")->required();

  bool done = false;
  int rc = pt::cli::parse(app, argc, argv, done);
  if (done) return rc;
  o.command = app.got_subcommand(methods) ? "methods" : "reset";
  if (o.command == "reset" && o.devices.empty()) {
    std::cerr << "pt-reset: name at least one device (or use 'pt-reset methods DEV')\n" << app.help();
    return int(pt::Exit::usage);
  }
  pt::cli::install_progress("pt-reset", o.common);
  return pt::cli::finish("pt-reset", pt::reset::run(o, std::cout, pt::cli::verbose_observer("pt-reset", o.common)));
}
