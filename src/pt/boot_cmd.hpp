// pt-bind's commands that follow pt.conf and the recipe of pt(7): boot,
// boot-check, udev-rules, udev-match, recover (and recover --recipe).
#pragma once

#include <optional>
#include <ostream>

#include "pt/bind_cmd.hpp"

namespace pt::bind {

// Runs O.command when it is one of them; nullopt for any other command.
std::optional<Result<Exit>> run_conf_command(const Options& o, Context& ctx, std::ostream& out);

}  // namespace pt::bind
