// pt-vgaarb: the kernel's VGA arbiter: decodes, ownership, locks, and the
// decodes=none a passthrough cycle can leave behind.
#include <cstring>
#include <iostream>

#include "common.hpp"
#include "pt/vgaarb_cmd.hpp"

int main(int argc, char** argv) {
  pt::vgaarb::Options o;
  // lock DEV [STATE] -- CMD...: everything after the first "--" is CMD, untouched by option
  // parsing.
  int cli_argc = argc;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      cli_argc = i;
      o.argv.assign(argv + i + 1, argv + argc);
      break;
    }
  CLI::App app{"Show and repair the kernel's VGA arbitration (/dev/vga_arbiter) of GPUs",
               "pt-vgaarb"};
  app.fallthrough();
  app.require_subcommand(1);
  pt::cli::add_common_options(app, o.common);
  pt::cli::add_help_footer(app, "its VGA function",
                           {"pt-vgaarb list", "pt-vgaarb show 01:00.0",
                            "pt-vgaarb decodes 01:00.0 io+mem", "pt-vgaarb restore 01:00.0",
                            "pt-vgaarb lock 01:00.0 io+mem -- CMD..."});
  auto* list = app.add_subcommand(
      "list", "One row per VGA device: decodes, owns, locks, boot_vga, driver, IO/MEM");
  auto* show = app.add_subcommand(
      "show", "One device, with its upstream bridges and the kernel's vgaarb messages");
  show->add_option("device", o.device, "DEV")->required();
  auto* decodes =
      app.add_subcommand("decodes", "Set which legacy VGA resources DEV decodes, and read back");
  decodes->add_option("device", o.device, "DEV")->required();
  decodes->add_option("state", o.state, "none, io, mem or io+mem")->required();
  auto* restore = app.add_subcommand(
      "restore", "Put back decodes as pt-bind recorded it (else io+mem), verified");
  restore->add_option("device", o.device, "DEV")->required();
  auto* lock = app.add_subcommand(
      "lock", "Hold DEV's VGA lock while CMD runs: lock DEV [io|mem|io+mem] -- CMD...");
  lock->add_option("device", o.device, "DEV")->required();
  lock->add_option("state", o.state, "io, mem or io+mem (default io+mem)");
  (void)list;

  bool done = false;
  int rc = pt::cli::parse(app, cli_argc, argv, done);
  if (done) return rc;
  o.command = app.get_subcommands().front()->get_name();
  if (o.command != "lock" && cli_argc != argc) {
    std::cerr << "pt-vgaarb: '--' and a command belong to 'lock' only\n";
    return int(pt::Exit::usage);
  }
  if (o.command == "lock" && o.argv.empty()) {
    std::cerr << "pt-vgaarb: lock needs a command: pt-vgaarb lock DEV [io|mem|io+mem] -- CMD...\n";
    return int(pt::Exit::usage);
  }
  pt::cli::install_progress("pt-vgaarb", o.common);
  return pt::cli::finish(
      "pt-vgaarb", pt::vgaarb::run(o, std::cout, pt::cli::verbose_observer("pt-vgaarb", o.common)));
}
