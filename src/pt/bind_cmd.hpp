// pt-bind's commands: the layer between the CLI and the bind engine.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "pt/context.hpp"
#include "pt/error.hpp"
#include "pt/pci.hpp"
#include "pt/sysfs.hpp"

namespace pt::bind {

struct Options {
  CommonOptions common;
  std::string command;  // list, show, detach, attach, set, unset, boot, ..., recover
  std::vector<std::string> devices;
  std::string device_class = "all";  // list: display, audio, all
  std::string to = "vfio-pci";
  std::string driver;  // set
  bool force = false;
  bool force_group = false;
  std::vector<std::string> rebar;    // detach: BAR=SIZE resizes ("0=8G")
  std::string initramfs;             // boot-check: the image, default the running kernel's
  bool recipe = false;               // recover: print the built-in recipe instead
  std::string reset_method = "bus";  // recipe: pt-reset's --method, "auto" for its own choice
  std::string format;                // export: proxmox, kubevirt or nova
  std::string name;                  // export: mapping id, resource name or alias
  std::string node;                  // export proxmox: the node, default the host name
  std::string count;                 // vfs: the number of VFs, as typed
  std::string vf_to = "auto";        // vfs: --to, "auto" for the variant modules.alias names
};

// Opens the system (or --root tree) and runs the command. Normal output goes
// to OUT; every sysfs write is passed to ON_WRITE when -v is given.
Result<Exit> run(const Options& options, std::ostream& out,
                 const ObservedWriter::Observer& on_write);

// The same on a prepared context; tests pass a fixture tree and a simulated kernel.
Result<Exit> run_in(const Options& options, Context& ctx, std::ostream& out);

// A plan (dry run) and an outcome as detach, attach, set, unset and boot
// print them, text or JSON.
struct Plan;
struct Outcome;
void print_plan(const Plan& plan, bool json_out, std::ostream& out);
void print_outcome(const std::string& op, const Outcome& oc, bool json_out, std::ostream& out);

}  // namespace pt::bind
