// pt-reset's commands: methods (read-only) and the reset itself.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "pt/context.hpp"
#include "pt/error.hpp"
#include "pt/sysfs.hpp"

namespace pt::reset {

struct CliOptions {
  CommonOptions common;
  std::string command;  // "methods" or "reset"
  std::vector<std::string> devices;
  std::optional<std::string> method;
  bool force = false;
};

Result<Exit> run(const CliOptions& options, std::ostream& out, const ObservedWriter::Observer& on_write);
Result<Exit> run_in(const CliOptions& options, Context& ctx, std::ostream& out);

}  // namespace pt::reset
