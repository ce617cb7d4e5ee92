// pt's commands: status, snapshot, diff (the whole state of a GPU's slot and
// group, saved and compared) and recover (pt-bind recover: recover::plan and recover::run).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "pt/context.hpp"
#include "pt/drm.hpp"
#include "pt/error.hpp"
#include "pt/sysfs.hpp"

namespace pt::state {

struct Options {
  CommonOptions common;
  std::string command;               // status, snapshot, diff, recover, metrics
  std::string device;                // status, snapshot: DEV
  std::string output;                // snapshot -o FILE; metrics -o FILE ("-": stdout)
  std::vector<std::string> files;    // diff A [B]
  std::vector<std::string> devices;  // recover DEV...
  bool recipe = false;               // recover --recipe
  std::string reset_method = "bus";  // recover --reset-method
};

// Opens the system (or --root tree) with a bounded DRM backend and runs the
// command. status, snapshot and diff never write to the system.
Result<Exit> run(const Options& options, std::ostream& out,
                 const ObservedWriter::Observer& on_write);

// The same on a prepared context and backend (unit tests: a fixture tree, a
// simulated arbiter, the root backend).
Result<Exit> run_in(const Options& options, Context& ctx, drm::Backend& backend, std::ostream& out);

}  // namespace pt::state
