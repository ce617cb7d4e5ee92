// `pt-bind recover DEV...` and `pt recover DEV...`: one command behind both
// tools, so their options, output and exit codes cannot drift apart.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "pt/context.hpp"
#include "pt/drm.hpp"
#include "pt/error.hpp"

namespace pt::recover {

struct CommandOptions {
  std::vector<std::string> devices;  // DEV... as typed
  std::string reset_method;          // the built-in recipe's reset ("auto": pt-reset's choice)
  bool json = false;
  bool recipe = false;  // print the built-in recipe's command lines, run nothing
  // The system log's identifier ("pt-bind", "pt") for the state at each step.
  std::string tag;
  // pt recover: the state of each DEV's slot before and after, compared
  // field by field, printed after the steps (JSON: "changes"). BACKEND
  // (bounded) reads the displays for it.
  drm::Backend* state_backend = nullptr;
};

// Plans the recovery (recover::plan), runs it under one lock (recover::run)
// with a line per step on OUT (on a terminal with the time since the start;
// JSON: the step records), and logs the state at each step to the system
// log (state_logger; not in a dry run, which changes nothing). The exit
// status is the failed step's. With RECIPE it prints pt(7)'s recipe for the
// functions, one command line each (JSON: step, device, argv), instead.
Result<Exit> command(const CommandOptions& options, Context& ctx, std::ostream& out);

}  // namespace pt::recover
