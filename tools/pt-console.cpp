// pt-console: find the consoles and framebuffers on a GPU, free them before a
// detach and put back exactly what was freed afterwards; switch VTs.
#include <iostream>

#include "common.hpp"
#include "pt/console_cmd.hpp"

int main(int argc, char** argv) {
  pt::console::CliOptions o;
  CLI::App app{"Release and restore the consoles and framebuffers of a GPU", "pt-console"};
  app.fallthrough();
  app.require_subcommand(1);
  pt::cli::add_common_options(app, o.common);
  pt::cli::add_help_footer(app, "refused: name the GPU function, 01:00.0",
                           {"pt-console list", "pt-console release 01:00.0",
                            "pt-console restore 01:00.0", "pt-console vt 2"});
  auto* list = app.add_subcommand(
      "list", "Show vtconsoles, framebuffers, firmware framebuffers and the active VT");
  auto* release = app.add_subcommand(
      "release", "Free the fbcon binding and firmware framebuffer of DEV; journal it");
  release->add_option("device", o.target, "DEV, the GPU function (01:00.0)")->required();
  auto* restore =
      app.add_subcommand("restore", "Re-bind what release recorded for DEV, in reverse order");
  restore->add_option("device", o.target, "DEV")->required();
  auto* bind =
      app.add_subcommand("bind", "Bind a vtconsole (by name) or a firmware framebuffer device");
  bind->add_option("name", o.target, "NAME")->required();
  bind->add_option("--driver", o.driver,
                   "Platform driver for a firmware framebuffer (default: its usual one)")
      ->type_name("DRIVER");
  auto* unbind =
      app.add_subcommand("unbind", "Unbind a vtconsole (by name) or a firmware framebuffer device");
  unbind->add_option("name", o.target, "NAME")->required();
  auto* vt =
      app.add_subcommand("vt", "Switch to virtual terminal N and wait for it (up to --timeout)");
  vt->add_option("n", o.target, "N, 1 to 63")->required();

  bool done = false;
  int rc = pt::cli::parse(app, argc, argv, done);
  if (done) return rc;
  for (auto* sub : {list, release, restore, bind, unbind, vt})
    if (app.got_subcommand(sub)) o.command = sub->get_name();
  pt::cli::install_progress("pt-console", o.common);
  return pt::cli::finish(
      "pt-console",
      pt::console::run(o, std::cout, pt::cli::verbose_observer("pt-console", o.common)));
}
