// Prometheus metrics for node_exporter's textfile collector: which functions
// pt manages and where they are, whether a journal holds an unfinished job,
// and counters of the recoveries and resets pt performed since boot.
//
// The counters live in ROOT/run/pt/metrics.json, which recover::run and
// reset::perform update (record_*); `pt metrics` renders them with the
// functions' live state into the text format and writes the .prom file
// atomically, as the collector requires. /run starts empty at boot, and so
// do the counters: Prometheus takes a counter reset in its stride.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt::metrics {

inline constexpr const char* kCountersPath = "/run/pt/metrics.json";
inline constexpr const char* kTextfilePath = "/var/lib/prometheus/node-exporter/pt.prom";

struct Counters {
  std::map<std::string, uint64_t> recover;                             // result -> count
  std::map<std::pair<std::string, std::string>, uint64_t> reset;       // (method, result) -> count
  std::optional<int64_t> last_recover;                                 // seconds since the epoch
  bool operator==(const Counters&) const = default;
};

// A missing file is all zeros. A file that does not parse is an Error naming
// it (it is pt's own; remove it to start the counts over).
Result<Counters> load(const Root& root);

// Adds one recovery (RESULT "ok" or "failed") at NOW, or one reset per
// (METHOD, RESULT). Read, add, replace atomically, under an flock of the
// file's own lock so that concurrent pt runs add up. Best effort for the
// callers: counting never fails a recovery, so they ignore the Status.
Status record_recover(const Root& root, const std::string& result, int64_t now);
Status record_resets(const Root& root, const std::vector<std::pair<std::string, std::string>>& resets);

// One function as the metrics show it.
struct Function {
  std::string bdf;               // "0000:01:00.0"
  std::string vendor, device;    // "0x10de"
  std::string driver;            // "" unbound
  std::string expected_driver;   // where pt's journal says pt put it; "" when pt holds it nowhere
  std::optional<bool> display_healthy;  // display functions: pt-drm check's verdict is healthy
};

struct Inputs {
  std::vector<Function> functions;
  bool journal_pending = false;  // the journal holds an unfinished job
  Counters counters;
};

// The text exposition format (version 0.0.4): HELP and TYPE for every
// family, label values escaped, families in a fixed order.
std::string render(const Inputs& inputs);

// Writes TEXT to PATH under ROOT as the textfile collector needs: a
// temporary file in the same directory, then rename, so a scrape never sees
// half a file. Mode 0644. A missing directory is an Error that says which
// package makes it.
Status write_textfile(const Root& root, const std::string& path, const std::string& text);

}  // namespace pt::metrics
