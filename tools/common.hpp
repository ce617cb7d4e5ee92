// Flags and error reporting shared by every pt tool (pt(7)).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "pt/context.hpp"
#include "pt/error.hpp"
#include "pt/sysfs.hpp"

namespace pt::cli {

// --root, --json, -v, --dry-run, --timeout, --lock-timeout.
void add_common_options(CLI::App& app, CommonOptions& options);

// The --help footer every tool shows: the address forms DEV takes (SLOT
// says what this tool makes of a slot), EXAMPLES (one command a line) and
// the exit statuses of pt(7).
void add_help_footer(CLI::App& app, const std::string& slot, const std::vector<std::string>& examples);

// The recover subcommand pt-bind and pt share (recover::command): DEV...,
// --recipe and --reset-method, into DEVICES, RECIPE and RESET_METHOD.
CLI::App* add_recover_command(CLI::App& app, const std::string& description,
                              std::vector<std::string>& devices, bool& recipe,
                              std::string& reset_method);

// On a terminal (stderr is one) and without --json, installs the progress
// printer (render::progress_printer) as OPTIONS.on_wait: a line on stderr
// while a wait lasts. Elsewhere nothing, so pipes and logs stay as they are.
void install_progress(const std::string& tool, CommonOptions& options);

// Prints each sysfs write with its timing on stderr, for -v.
ObservedWriter::Observer verbose_observer(const std::string& tool, const CommonOptions& options);

// Turns a command's result into the exit status, reporting an error once.
int finish(const std::string& tool, const Result<Exit>& result);

// Parses ARGV, mapping CLI11's errors onto exit 2 (usage): the message is
// prefixed with the tool's name, as the tools' own are, and points at --help.
int parse(CLI::App& app, int argc, char** argv, bool& done);

}  // namespace pt::cli
