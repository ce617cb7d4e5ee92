// pt: the kit's front command. status, snapshot and diff show the whole state
// of a GPU's slot and IOMMU group and compare it over time; recover is
// pt-bind recover (recover::plan and recover::run). The five tools stay as
// they are.
#include <iostream>

#include "common.hpp"
#include "pt/state_cmd.hpp"

int main(int argc, char** argv) {
  pt::state::Options o;
  CLI::App app{"The state of a GPU and its group: status, snapshot, diff; recover", "pt"};
  app.fallthrough();
  app.require_subcommand(1);
  pt::cli::add_common_options(app, o.common);
  pt::cli::add_help_footer(
      app, "every function of it",
      {"pt status 01:00", "pt snapshot 01:00 -o before.json", "pt diff before.json",
       "pt --dry-run recover 01:00", "pt recover --recipe 01:00", "pt metrics -o -"});

  auto* status =
      app.add_subcommand("status",
                         "Show every function of DEV's slot and IOMMU group: drivers, power, link, "
                         "arbiter, consoles, DRM, holders, journal");
  status->add_option("device", o.device, "DEV")->required();
  auto* snapshot =
      app.add_subcommand("snapshot", "Save what status shows of DEV to FILE, for pt diff");
  snapshot->add_option("device", o.device, "DEV")->required();
  snapshot->add_option("-o,--output", o.output, "The snapshot file to write")
      ->type_name("FILE")
      ->required();
  auto* diff = app.add_subcommand(
      "diff", "Compare snapshot A with B (or with now), field by field: 0 same, 1 differs");
  diff->add_option("snapshots", o.files,
                   "FILE...: snapshot A, and B to compare it with (default: now)")
      ->required()
      ->expected(1, 2);
  auto* metrics = app.add_subcommand(
      "metrics",
      "Write Prometheus metrics of the functions pt manages, its journal and its recoveries and "
      "resets, for node_exporter's textfile collector");
  metrics->add_option("-o,--output", o.output,
                      "The file to replace (default "
                      "/var/lib/prometheus/node-exporter/pt.prom); - for standard output")
      ->type_name("FILE");
  pt::cli::add_recover_command(
      app,
      "Recover DEV... in one run, as pt-bind recover: pt.conf's recover steps, else pt(7)'s "
      "recipe (--recipe: print it)",
      o.devices, o.recipe, o.reset_method);

  bool done = false;
  int rc = pt::cli::parse(app, argc, argv, done);
  if (done) return rc;
  o.command = app.get_subcommands().front()->get_name();
  pt::cli::install_progress("pt", o.common);
  return pt::cli::finish("pt",
                         pt::state::run(o, std::cout, pt::cli::verbose_observer("pt", o.common)));
}
