// pt-drm's commands: list, show, probe, wait, check.
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "pt/context.hpp"
#include "pt/drm.hpp"
#include "pt/error.hpp"
#include "pt/sysfs.hpp"

namespace pt::drm {

struct Options {
  CommonOptions common;
  std::string command;    // list, show, probe, wait, check
  std::string device;     // DEV (not for list)
  std::string connector;  // show DEV [CONNECTOR], probe --connector NAME
  // -v: wait reports each look (when, what it saw, how long the KMS read
  // took); main prints these on stderr.
  std::function<void(const std::string&)> trace;
};

// Opens the system (or --root tree) with its backend and runs the command.
Result<Exit> run(const Options& options, std::ostream& out,
                 const ObservedWriter::Observer& on_write);

// The same on a prepared context and backend; unit tests pass a fixture tree,
// its simulated kernel and an in-memory backend.
Result<Exit> run_in(const Options& options, Context& ctx, Backend& backend, std::ostream& out);

}  // namespace pt::drm
