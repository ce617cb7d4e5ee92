// pt-vgaarb's commands: list, show, decodes, restore, lock.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "pt/context.hpp"
#include "pt/error.hpp"
#include "pt/sysfs.hpp"

namespace pt::vgaarb {

struct Options {
  CommonOptions common;
  std::string command;  // list, show, decodes, restore, lock
  std::string device;
  std::string state;              // decodes: the new value; lock: what to lock (empty: io+mem)
  std::vector<std::string> argv;  // lock: the command to run
};

// Opens the system (or --root tree) and runs the command. For lock, the
// result is CMD's status as flock(1) reports it: its exit code, or 128+N
// when signal N killed it.
Result<Exit> run(const Options& options, std::ostream& out,
                 const ObservedWriter::Observer& on_write);

// The same on a prepared context; tests pass a fixture tree and a fake arbiter.
Result<Exit> run_in(const Options& options, Context& ctx, std::ostream& out);

}  // namespace pt::vgaarb
