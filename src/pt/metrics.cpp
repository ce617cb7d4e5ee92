#include "pt/metrics.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "pt/journal.hpp"

namespace pt::metrics {

namespace {

using nlohmann::json;

Result<Counters> parse(const std::string& text, const std::string& shown) {
  auto bad = [&](const std::string& why) {
    return fail(shown, why + "; it is pt's own count since boot: remove it to start over");
  };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  Counters c;
  try {
    if (j.contains("recover"))
      for (const auto& [k, v] : j.at("recover").items()) c.recover[k] = v.get<uint64_t>();
    if (j.contains("reset"))
      for (const auto& e : j.at("reset"))
        c.reset[{e.at("method").get<std::string>(), e.at("result").get<std::string>()}] =
            e.at("count").get<uint64_t>();
    if (j.contains("last_recover")) c.last_recover = j.at("last_recover").get<int64_t>();
  } catch (const json::exception& e) {
    return bad(std::string("unexpected content (") + e.what() + ")");
  }
  return c;
}

std::string to_text(const Counters& c) {
  json j = json::object();
  j["recover"] = json::object();
  for (const auto& [k, v] : c.recover) j["recover"][k] = v;
  j["reset"] = json::array();
  for (const auto& [k, v] : c.reset)
    j["reset"].push_back({{"method", k.first}, {"result", k.second}, {"count", v}});
  if (c.last_recover) j["last_recover"] = *c.last_recover;
  return j.dump(2) + "\n";
}

Result<std::string> slurp(const std::string& path, const std::string& shown) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return std::string();
    return fail(shown, "cannot read it", errno);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes TEXT to PATH through PATH.tmp and rename, MODE.
Status replace(const std::string& path, const std::string& shown, const std::string& text, mode_t mode) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return fail(shown, "cannot create " + tmp, errno);
  ::fchmod(fd, mode);  // not narrowed by the umask: the collector reads it as another user
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return fail(shown, "cannot write " + tmp, e);
    }
    off += size_t(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return fail(shown, "cannot replace it", e);
  }
  return {};
}

// Read, change, replace the counters under their own flock.
Status update(const Root& root, const std::function<void(Counters&)>& change) {
  if (auto d = check_state_dir(root, true); !d) return d;
  const std::string path = root.path(kCountersPath);
  const std::string lock_path = path + ".lock";
  int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0) return fail(lock_path, "cannot open the counters' lock", errno);
  while (::flock(lock, LOCK_EX) != 0 && errno == EINTR) {
  }
  auto text = slurp(path, kCountersPath);
  Status result;
  if (!text) {
    result = std::unexpected(text.error());
  } else {
    auto c = text->empty() ? Result<Counters>(Counters{}) : parse(*text, kCountersPath);
    if (!c) {
      result = std::unexpected(c.error());
    } else {
      change(*c);
      result = replace(path, kCountersPath, to_text(*c), 0600);
    }
  }
  ::close(lock);
  return result;
}

// A label value in the text format: backslash, double quote and newline escaped.
std::string label(std::string_view v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\') out += "\\\\";
    else if (ch == '"') out += "\\\"";
    else if (ch == '\n') out += "\\n";
    else out += ch;
  }
  return out;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

Result<Counters> load(const Root& root) {
  auto text = slurp(root.path(kCountersPath), kCountersPath);
  if (!text) return std::unexpected(text.error());
  if (text->empty()) return Counters{};
  return parse(*text, kCountersPath);
}

Status record_recover(const Root& root, const std::string& result, int64_t now) {
  return update(root, [&](Counters& c) {
    ++c.recover[result];
    c.last_recover = now;
  });
}

Status record_resets(const Root& root, const std::vector<std::pair<std::string, std::string>>& resets) {
  if (resets.empty()) return {};
  return update(root, [&](Counters& c) {
    for (const auto& r : resets) ++c.reset[r];
  });
}

std::string render(const Inputs& in) {
  std::string out;
  family(out, "pt_device_info", "gauge",
         "A PCI function pt manages: its driver now, and the driver pt's journal says pt put it on "
         "(empty when pt holds it nowhere).");
  for (const auto& f : in.functions)
    out += "pt_device_info{bdf=\"" + label(f.bdf) + "\",vendor=\"" + label(f.vendor) + "\",device=\"" +
           label(f.device) + "\",driver=\"" + label(f.driver) + "\",expected_driver=\"" +
           label(f.expected_driver) + "\"} 1\n";
  family(out, "pt_journal_pending", "gauge",
         "1 when pt-bind's journal holds an unfinished job (pt-bind rollback finishes it).");
  out += std::string("pt_journal_pending ") + (in.journal_pending ? "1" : "0") + "\n";
  family(out, "pt_last_recover_timestamp_seconds", "gauge",
         "When the last recovery pt ran since boot ended, in seconds since the epoch (0: none).");
  out += "pt_last_recover_timestamp_seconds " + std::to_string(in.counters.last_recover.value_or(0)) + "\n";
  family(out, "pt_recover_total", "counter", "Recoveries pt ran since boot, by result.");
  // Both results always, so a rate() over them starts at 0.
  for (const char* r : {"ok", "failed"}) {
    auto it = in.counters.recover.find(r);
    out += std::string("pt_recover_total{result=\"") + r + "\"} " +
           std::to_string(it == in.counters.recover.end() ? 0 : it->second) + "\n";
  }
  family(out, "pt_reset_total", "counter", "PCI resets pt performed since boot, by method and result.");
  for (const auto& [k, v] : in.counters.reset)
    out += "pt_reset_total{method=\"" + label(k.first) + "\",result=\"" + label(k.second) + "\"} " +
           std::to_string(v) + "\n";
  family(out, "pt_display_healthy", "gauge",
         "1 when pt-drm check finds the display function healthy, 0 when not.");
  for (const auto& f : in.functions)
    if (f.display_healthy)
      out += "pt_display_healthy{bdf=\"" + label(f.bdf) + "\"} " + (*f.display_healthy ? "1" : "0") + "\n";
  return out;
}

Status write_textfile(const Root& root, const std::string& path, const std::string& text) {
  const std::string full = root.path(path);
  const auto dir = std::filesystem::path(full).parent_path();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return fail(std::filesystem::path(path).parent_path().string(),
                "no such directory; install prometheus-node-exporter (its textfile collector reads "
                "/var/lib/prometheus/node-exporter) or name another file with --output",
                ENOENT);
  return replace(full, path, text, 0644);
}

}  // namespace pt::metrics
