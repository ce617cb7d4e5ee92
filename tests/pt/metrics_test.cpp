#include "pt/metrics.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fixture.hpp"

using namespace pt;
using pt::test::Fixture;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST_CASE("metrics::render: every family with HELP and TYPE, label values escaped") {
  metrics::Inputs in;
  in.functions.push_back({"0000:01:00.0", "0x10de", "0x2484", "vfio-pci", "vfio-pci", false});
  in.functions.push_back({"0000:01:00.1", "0x10de", "0x228b", "", "", std::nullopt});
  in.functions.push_back({"0000:02:00.0", "0x1af4", "0x1050", "odd\"drv\\", "", true});
  in.journal_pending = true;
  in.counters.recover["ok"] = 3;
  in.counters.reset[{"flr", "ok"}] = 2;
  in.counters.reset[{"bus", "failed"}] = 1;
  in.counters.last_recover = 1764770000;
  const std::string t = metrics::render(in);
  CHECK(t ==
        "# HELP pt_device_info A PCI function pt manages: its driver now, and the driver pt's journal "
        "says pt put it on (empty when pt holds it nowhere).\n"
        "# TYPE pt_device_info gauge\n"
        "pt_device_info{bdf=\"0000:01:00.0\",vendor=\"0x10de\",device=\"0x2484\",driver=\"vfio-pci\","
        "expected_driver=\"vfio-pci\"} 1\n"
        "pt_device_info{bdf=\"0000:01:00.1\",vendor=\"0x10de\",device=\"0x228b\",driver=\"\","
        "expected_driver=\"\"} 1\n"
        "pt_device_info{bdf=\"0000:02:00.0\",vendor=\"0x1af4\",device=\"0x1050\",driver=\"odd\\\"drv\\\\\","
        "expected_driver=\"\"} 1\n"
        "# HELP pt_journal_pending 1 when pt-bind's journal holds an unfinished job (pt-bind rollback "
        "finishes it).\n"
        "# TYPE pt_journal_pending gauge\n"
        "pt_journal_pending 1\n"
        "# HELP pt_last_recover_timestamp_seconds When the last recovery pt ran since boot ended, in "
        "seconds since the epoch (0: none).\n"
        "# TYPE pt_last_recover_timestamp_seconds gauge\n"
        "pt_last_recover_timestamp_seconds 1764770000\n"
        "# HELP pt_recover_total Recoveries pt ran since boot, by result.\n"
        "# TYPE pt_recover_total counter\n"
        "pt_recover_total{result=\"ok\"} 3\n"
        "pt_recover_total{result=\"failed\"} 0\n"
        "# HELP pt_reset_total PCI resets pt performed since boot, by method and result.\n"
        "# TYPE pt_reset_total counter\n"
        "pt_reset_total{method=\"bus\",result=\"failed\"} 1\n"
        "pt_reset_total{method=\"flr\",result=\"ok\"} 2\n"
        "# HELP pt_display_healthy 1 when pt-drm check finds the display function healthy, 0 when "
        "not.\n"
        "# TYPE pt_display_healthy gauge\n"
        "pt_display_healthy{bdf=\"0000:01:00.0\"} 0\n"
        "pt_display_healthy{bdf=\"0000:02:00.0\"} 1\n");
}

TEST_CASE("metrics: the counters add up in ROOT/run/pt/metrics.json, from nothing") {
  Fixture fx;
  auto c = metrics::load(fx.root());
  REQUIRE(c);
  CHECK(*c == metrics::Counters{});
  REQUIRE(metrics::record_recover(fx.root(), "ok", 100));
  REQUIRE(metrics::record_recover(fx.root(), "failed", 200));
  REQUIRE(metrics::record_recover(fx.root(), "ok", 300));
  REQUIRE(metrics::record_resets(fx.root(), {{"flr", "ok"}, {"bus", "ok"}, {"flr", "ok"}}));
  REQUIRE(metrics::record_resets(fx.root(), {}));
  c = metrics::load(fx.root());
  REQUIRE(c);
  CHECK(c->recover == std::map<std::string, uint64_t>{{"failed", 1}, {"ok", 2}});
  CHECK(c->last_recover == 300);
  CHECK(c->reset.at({"flr", "ok"}) == 2);
  CHECK(c->reset.at({"bus", "ok"}) == 1);
  CHECK(c->reset.size() == 2);
  // The file and its lock, in pt's state directory, closed to others.
  const std::string file = fx.root().path(metrics::kCountersPath);
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(std::filesystem::exists(file + ".lock"));
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(file).parent_path()))
    names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"metrics.json", "metrics.json.lock"});
}

TEST_CASE("metrics: a counters file that is not pt's is an error naming it, and stays as it is") {
  Fixture fx;
  REQUIRE(metrics::record_recover(fx.root(), "ok", 1));
  const std::string file = fx.root().path(metrics::kCountersPath);
  std::ofstream(file) << "{\"recover\": {\"ok\": \"many\"}}";
  auto c = metrics::load(fx.root());
  REQUIRE_FALSE(c);
  CHECK(c.error().subject == metrics::kCountersPath);
  CHECK(c.error().message.find("remove it to start over") != std::string::npos);
  CHECK_FALSE(metrics::record_recover(fx.root(), "ok", 2));
  CHECK(slurp(file) == "{\"recover\": {\"ok\": \"many\"}}");
}

TEST_CASE("metrics::write_textfile: replaces the file whole, mode 0644; a missing directory names the package") {
  Fixture fx;
  const auto before = fx.snapshot();
  auto r = metrics::write_textfile(fx.root(), metrics::kTextfilePath, "a 1\n");
  REQUIRE_FALSE(r);
  CHECK(r.error().subject == "/var/lib/prometheus/node-exporter");
  CHECK(r.error().message.find("prometheus-node-exporter") != std::string::npos);
  CHECK(fx.snapshot() == before);

  const std::string dir = fx.root().path("/var/lib/prometheus/node-exporter");
  std::filesystem::create_directories(dir);
  const mode_t old = ::umask(077);
  REQUIRE(metrics::write_textfile(fx.root(), metrics::kTextfilePath, "a 1\n"));
  REQUIRE(metrics::write_textfile(fx.root(), metrics::kTextfilePath, "a 2\n"));
  ::umask(old);
  CHECK(slurp(dir + "/pt.prom") == "a 2\n");
  struct stat st {};
  REQUIRE(::stat((dir + "/pt.prom").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 1);
}
