// pt-console's commands: list, release, restore, bind, unbind, vt.
#pragma once

#include <ostream>
#include <string>

#include "pt/context.hpp"
#include "pt/error.hpp"
#include "pt/sysfs.hpp"

namespace pt::console {

struct CliOptions {
  CommonOptions common;
  std::string command;  // list, release, restore, bind, unbind, vt
  std::string target;   // DEV, NAME or N
  std::string driver;   // bind: the platform driver for a firmware framebuffer
};

Result<Exit> run(const CliOptions& options, std::ostream& out,
                 const ObservedWriter::Observer& on_write);
// The same on a prepared context; tests pass a fixture tree and a simulated kernel.
Result<Exit> run_in(const CliOptions& options, Context& ctx, std::ostream& out);

}  // namespace pt::console
