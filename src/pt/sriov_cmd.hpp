// pt-bind vfs and the SR-IOV lines of pt-bind show.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>

#include "pt/bind_cmd.hpp"

namespace pt::bind {

// Runs O.command when it is "vfs"; nullopt for any other command.
std::optional<Result<Exit>> run_sriov_command(const Options& o, Context& ctx, std::ostream& out);

// show's "sriov" member (null for a function that is neither PF nor VF) and
// its text lines.
void show_sriov(const Root& root, const PciAddress& addr, nlohmann::json& j, std::string& text);

}  // namespace pt::bind
