// pt-bind: move PCI functions between host drivers and vfio-pci.
#include <iostream>

#include "common.hpp"
#include "pt/bind_cmd.hpp"

int main(int argc, char** argv) {
  pt::bind::Options o;
  CLI::App app{"Move a GPU and its companion functions between host drivers and vfio-pci",
               "pt-bind"};
  app.fallthrough();
  app.require_subcommand(1);
  pt::cli::add_common_options(app, o.common);
  pt::cli::add_help_footer(app, "every function of it",
                           {"pt-bind list --class display", "pt-bind show 01:00.0",
                            "pt-bind --dry-run detach 01:00", "pt-bind detach 01:00",
                            "pt-bind attach 01:00"});

  auto* list =
      app.add_subcommand("list", "List PCI devices with driver, IOMMU group and companions");
  list->add_option("--class", o.device_class, "display, audio or all (default all)")
      ->type_name("CLASS");
  std::string single;  // show, set and unset take one DEV
  auto* show =
      app.add_subcommand("show", "Show one device (or slot): group, override, modules, holders");
  show->add_option("device", single, "DEV")->required();
  auto* detach = app.add_subcommand("detach", "Move devices and their group to vfio-pci (or --to)");
  detach->add_option("devices", o.devices, "DEV...")->required();
  detach->add_option("--to", o.to, "Target driver (default vfio-pci)")->type_name("DRIVER");
  detach->add_flag("--force", o.force, "Unbind even when processes hold a device");
  detach->add_flag("--force-group", o.force_group,
                   "Also move group members bound to unrelated host drivers");
  detach->add_option("--rebar", o.rebar, "Resize a Resizable BAR while unbound, e.g. 0=8G (repeatable)")
      ->type_name("BAR=SIZE");
  auto* attach =
      app.add_subcommand("attach", "Return devices to the drivers recorded in the journal");
  attach->add_option("devices", o.devices, "DEV...")->required();
  attach->add_flag("--force", o.force, "Unbind even when processes hold a device");
  auto* set = app.add_subcommand("set", "Bind DEV to DRIVER through driver_override");
  set->add_option("device", single, "DEV")->required();
  set->add_option("driver", o.driver, "DRIVER")->required();
  set->add_flag("--force", o.force, "Unbind even when processes hold a device");
  auto* unset = app.add_subcommand("unset", "Clear driver_override and let the kernel choose");
  unset->add_option("device", single, "DEV")->required();
  unset->add_flag("--force", o.force, "Unbind even when processes hold a device");

  auto* vfs = app.add_subcommand("vfs",
                                 "Create N SR-IOV VFs of the PF DEV bound to vfio-pci or its "
                                 "variant (or --to); 0 removes them");
  vfs->add_option("device", single, "DEV (the PF)")->required();
  vfs->add_option("count", o.count, "N")->required();
  vfs->add_option("--to", o.vf_to,
                  "Driver for the VFs; auto (default): the VFIO variant driver modules.alias "
                  "names, else vfio-pci")
      ->type_name("DRIVER|auto");

  auto* boot =
      app.add_subcommand("boot", "Claim the functions pt.conf marks boot = \"vfio\" for vfio-pci");
  boot->add_flag("--force", o.force, "Unbind even when processes hold a device");
  auto* check = app.add_subcommand(
      "boot-check", "Say whether the initramfs holds pt, pt.conf and vfio-pci, and is current");
  check
      ->add_option("--initramfs", o.initramfs,
                   "The image to inspect (default: the running kernel's)")
      ->type_name("FILE");
  auto* exp = app.add_subcommand(
      "export", "Print DEV's entry for Proxmox's pci.cfg, KubeVirt or Nova (FORMAT)");
  exp->add_option("format", o.format, "proxmox, kubevirt or nova")->required();
  exp->add_option("device", single, "DEV (a slot: all its functions)")->required();
  exp->add_option("--name", o.name, "Mapping id, resource name or alias (default: derived)")
      ->type_name("NAME");
  exp->add_option("--node", o.node, "proxmox: the node (default: this host's name)")
      ->type_name("HOST");
  app.add_subcommand("udev-rules", "Print the udev rules generated from pt.conf");
  auto* match =
      app.add_subcommand("udev-match", "Print pt.conf's udev properties of DEV (for udev rules)");
  match->add_option("device", single, "DEV")->required();
  pt::cli::add_recover_command(app,
                               "Recover DEV... in one run: pt.conf's recover steps, else pt(7)'s "
                               "recipe (--recipe: print it)",
                               o.devices, o.recipe, o.reset_method);

  bool done = false;
  int rc = pt::cli::parse(app, argc, argv, done);
  if (done) return rc;
  o.command = app.get_subcommands().front()->get_name();
  if (!single.empty()) o.devices = {single};
  pt::cli::install_progress("pt-bind", o.common);
  return pt::cli::finish(
      "pt-bind", pt::bind::run(o, std::cout, pt::cli::verbose_observer("pt-bind", o.common)));
}
