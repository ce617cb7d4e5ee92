// pt (status, snapshot, diff, recover) as a user runs it, on fixture trees.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fixture.hpp"
#include "run_tool.hpp"

using pt::test::Fixture;

namespace {
pt::test::Run pt_(const std::string& args) {
  return pt::test::run_tool("pt", args);
}

struct Tree {
  Fixture fx;
  std::string dir;
  Tree() {
    Fixture::gpu_with_display(fx);
    fx.add_fbcon(true);
    dir = "/tmp/pt-tool-snap-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
  }
  ~Tree() { std::filesystem::remove_all(dir); }
  std::string root() const { return "--root " + fx.dir() + " "; }
};
}  // namespace

TEST_CASE("pt status: text and --json") {
  Tree t;
  auto r = pt_(t.root() + "status 01:00");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("0000:01:00.0  10de:2484  VGA compatible controller (0300)  NVIDIA Corporation "
                   "GA104 [GeForce RTX 3070]\n") != std::string::npos);
  CHECK(r.out.find("0000:01:00.1  10de:228b  Audio device (0403)  NVIDIA Corporation GA104 High "
                   "Definition Audio Controller\n") != std::string::npos);
  CHECK(r.out.find("nvidia") != std::string::npos);
  CHECK(r.out.find("0000:01:00.1") != std::string::npos);
  CHECK(r.out.find("card0") != std::string::npos);
  CHECK(r.out.find("frame buffer device bound") != std::string::npos);

  r = pt_(t.root() + "--json status 0000:01:00.0");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["device"] == "0000:01:00.0");
  REQUIRE(j["functions"].size() == 2);
  const auto& g = j["functions"][0];
  CHECK(g["bdf"] == "0000:01:00.0");
  CHECK(g["driver"] == "nvidia");
  CHECK(g["driver_override"].is_null());
  CHECK(g["vendor_name"] == "NVIDIA Corporation");
  CHECK(g["device_name"] == "GA104 [GeForce RTX 3070]");
  CHECK(g["class_name"] == "VGA compatible controller");
  CHECK(g["iommu_group"] == 1);
  CHECK(g["command"]["value"] == "0x0007");
  CHECK(g["command"]["bits"] == nlohmann::json({"io", "mem", "master"}));
  CHECK(g["drm"]["card"] == "card0");
  CHECK(g["reset_methods"]["kernel"] == nlohmann::json({"flr", "bus"}));
  // Under --root the arbiter file is no device: said, not guessed.
  CHECK(g["vga"].is_null());
  CHECK(g["vga_error"].is_string());
  CHECK(j["functions"][1]["driver"] == "snd_hda_intel");
  CHECK_FALSE(j.contains("format"));
  CHECK(j["warnings"] == nlohmann::json::array());
  CHECK(pt_(t.root() + "status 01:00").out.find("warning:") == std::string::npos);
}

TEST_CASE("pt status: warnings last, one line each, text and --json") {
  Tree t;
  const auto clean = pt_(t.root() + "status 01:00");
  REQUIRE(clean.status == 0);
  // The root port loses its ACS capability; the audio function reads as
  // a user reads it (64 bytes); the machine loses vfio-pci.
  {
    std::fstream f(t.fx.dir() + "/sys/bus/pci/devices/0000:00:01.0/config",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0x100);
    f.write("\0\0\0\0", 4);
  }
  std::filesystem::resize_file(t.fx.dir() + "/sys/bus/pci/devices/0000:01:00.1/config", 64);
  std::filesystem::remove_all(t.fx.dir() + "/sys/bus/pci/drivers/vfio-pci");
  auto r = pt_(t.root() + "status 01:00");
  REQUIRE(r.status == 0);
  const std::string acs =
      "warning: 0000:01:00.0: 0000:00:01.0 is a root port without ACS: the functions below it can "
      "reach each other without the IOMMU, which is why the IOMMU group is large (unless a kernel "
      "quirk vouches for it)\n";
  const std::string tail =
      "warning: vfio-pci is not available: no such driver is registered and no kernel module of "
      "that name is installed; install the kernel's vfio-pci module (check with 'modinfo "
      "vfio-pci')\n" +
      acs +
      "warning: 0000:01:00.1: capabilities unreadable: config space is 64 bytes (run as root)\n";
  REQUIRE(r.out.size() > tail.size());
  CHECK(r.out.substr(r.out.size() - tail.size()) == tail);
  // The warnings are the last lines, after the journal's.
  CHECK(r.out.find("warning:") == r.out.find("warning: vfio-pci"));
  CHECK(r.out.find("journal: no job in flight\nwarning: ") != std::string::npos);

  r = pt_(t.root() + "--json status 01:00");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["warnings"].size() == 3);
  CHECK(j["warnings"][0]["kind"] == "no-vfio-pci");
  CHECK(j["warnings"][0]["device"].is_null());
  CHECK(j["warnings"][1]["kind"] == "acs");
  CHECK(j["warnings"][1]["device"] == "0000:01:00.0");
  CHECK(j["warnings"][2] == nlohmann::json({{"kind", "config-unreadable"},
                                            {"device", "0000:01:00.1"},
                                            {"message",
                                             "capabilities unreadable: config space is "
                                             "64 bytes (run as root)"}}));
}

TEST_CASE("pt status: usage and missing devices") {
  Tree t;
  auto r = pt_(t.root() + "status 09:00");
  CHECK(r.status == 1);
  CHECK(r.out.find("09:00") != std::string::npos);
  r = pt_(t.root() + "status nonsense");
  CHECK(r.status == 2);
  r = pt_(t.root() + "status");
  CHECK(r.status == 2);
  // CLI11's errors as the other tools give them: the tool's name, a pointer to --help.
  CHECK(r.out.starts_with("pt: "));
  CHECK(r.out.find("device is required") != std::string::npos);
  CHECK(r.out.find("pt: run 'pt --help' for the commands, options and address forms\n") !=
        std::string::npos);
  r = pt_(t.root() + "frobnicate 01:00");
  CHECK(r.status == 2);
  CHECK(r.out.starts_with("pt: "));
  CHECK(r.out.find("pt: run 'pt --help'") != std::string::npos);
  r = pt_(t.root() + "status --frob 01:00");
  CHECK(r.status == 2);
  CHECK(r.out.starts_with("pt: "));
  pt::test::check_empty_root_refused("pt", t.fx.dir(), "status 01:00");
}

TEST_CASE("pt snapshot and diff: the same tree is exit 0, a change is exit 1 naming the field") {
  Tree t;
  const std::string a = t.dir + "/a.json", b = t.dir + "/b.json";
  auto r = pt_(t.root() + "snapshot 01:00 -o " + a);
  REQUIRE(r.status == 0);
  auto doc = nlohmann::json::parse(std::ifstream(a));
  CHECK(doc["format"] == 1);
  CHECK(doc["functions"].size() == 2);
  CHECK_FALSE(std::filesystem::exists(a + ".tmp"));

  r = pt_(t.root() + "diff " + a);  // against now
  CHECK(r.status == 0);
  CHECK(r.out == "no change\n");

  // An override left set on the audio function.
  t.fx.write_file("/sys/bus/pci/devices/0000:01:00.1/driver_override", "vfio-pci\n");
  r = pt_(t.root() + "diff " + a);
  CHECK(r.status == 1);
  CHECK(r.out == "0000:01:00.1 driver_override: (none) -> vfio-pci\n");

  REQUIRE(pt_(t.root() + "snapshot 01:00.0 --output " + b).status == 0);
  r = pt_(t.root() + "--json diff " + a + " " + b);
  CHECK(r.status == 1);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["same"] == false);
  REQUIRE(j["changes"].size() == 1);
  CHECK(j["changes"][0]["function"] == "0000:01:00.1");
  CHECK(j["changes"][0]["field"] == "driver_override");
  CHECK(j["changes"][0]["before"] == "(none)");
  CHECK(j["changes"][0]["after"] == "vfio-pci");
  r = pt_(t.root() + "diff " + b + " " + b);
  CHECK(r.status == 0);
}

TEST_CASE("pt diff: a file that is not a snapshot is exit 2; snapshot needs -o") {
  Tree t;
  const std::string bad = t.dir + "/bad.json";
  std::ofstream(bad) << "{\"format\": 1}";
  auto r = pt_(t.root() + "diff " + bad);
  CHECK(r.status == 2);
  CHECK(r.out.find(bad) != std::string::npos);
  CHECK(r.out.find("not a pt snapshot") != std::string::npos);
  r = pt_(t.root() + "diff " + t.dir + "/missing.json");
  CHECK(r.status == 2);
  r = pt_(t.root() + "diff a b c");
  CHECK(r.status == 2);
  r = pt_(t.root() + "snapshot 01:00");
  CHECK(r.status == 2);
  r = pt_(t.root() + "snapshot 01:00 -o " + t.dir + "/no/such/dir/s.json");
  CHECK(r.status == 1);
}

TEST_CASE("pt recover is pt-bind recover") {
  Tree t;
  t.fx.write_file("/etc/pt/pt.conf", pt::test::kGuestClaim);
  ::chmod((t.fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
  auto mine = pt_(t.root() + "recover --recipe 01:00");
  auto theirs = pt::test::run_tool("pt-bind", t.root() + "recover --recipe 01:00");
  REQUIRE(mine.status == 0);
  CHECK(mine.out == theirs.out);
  CHECK(mine.out.find("pt-reset") != std::string::npos);
  auto dry = pt_(t.root() + "--dry-run recover 0000:01:00.0");
  auto dry_bind = pt::test::run_tool("pt-bind", t.root() + "--dry-run recover 0000:01:00.0");
  CHECK(dry.status == dry_bind.status);
  CHECK(dry.out == dry_bind.out);
  // The same run as pt-bind's (recover::plan, recover::run): a slot, --json,
  // --reset-method without --recipe.
  dry = pt_(t.root() + "--json --dry-run recover --reset-method flr 01:00");
  dry_bind =
      pt::test::run_tool("pt-bind", t.root() + "--json --dry-run recover --reset-method flr 01:00");
  REQUIRE(dry.status == 0);
  CHECK(dry.out == dry_bind.out);
  auto j = nlohmann::json::parse(dry.out);
  CHECK(j["op"] == "recover");
  CHECK(j["dry_run"] == true);
  CHECK_FALSE(j["steps"].empty());
  auto bad = pt_(t.root() + "recover --reset-method warm 01:00.0");
  CHECK(bad.status == 2);
  CHECK(bad.out ==
        "pt: --reset-method 'warm': is not a reset method; use one of "
        "device_specific, acpi, flr, af_flr, pm, bus, slot, rescan or auto\n");
  CHECK(pt_(t.root() + "recover").status == 2);
}

TEST_CASE("pt recover without pt.conf runs pt(7)'s recipe, as pt-bind recover does") {
  Tree t;
  const auto before = t.fx.snapshot();
  auto mine = pt_(t.root() + "--json --dry-run recover 01:00");
  auto theirs = pt::test::run_tool("pt-bind", t.root() + "--json --dry-run recover 01:00");
  REQUIRE(mine.status == 0);
  CHECK(mine.out == theirs.out);
  auto j = nlohmann::json::parse(mine.out);
  REQUIRE(j["steps"].size() == 6);
  CHECK(j["steps"][0]["step"] == "reset");
  CHECK(j["steps"][1]["step"] == "attach");
  CHECK(j["steps"][5]["step"] == "drm-check");
  CHECK(t.fx.snapshot() == before);
}

TEST_CASE("pt metrics: pt.conf's functions in the text format, to stdout or replacing the .prom file") {
  Tree t;
  t.fx.write_file("/etc/pt/pt.conf", pt::test::kGuestClaim);
  ::chmod((t.fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
  auto r = pt_(t.root() + "metrics -o -");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("pt_device_info{bdf=\"0000:01:00.0\",vendor=\"0x10de\",device=\"0x2484\","
                   "driver=\"nvidia\",expected_driver=\"\"} 1\n") != std::string::npos);
  CHECK(r.out.find("pt_device_info{bdf=\"0000:01:00.1\",vendor=\"0x10de\",device=\"0x228b\",") !=
        std::string::npos);
  CHECK(r.out.find("\npt_journal_pending 0\n") != std::string::npos);
  CHECK(r.out.find("\npt_recover_total{result=\"ok\"} 0\n") != std::string::npos);
  CHECK(r.out.find("\npt_last_recover_timestamp_seconds 0\n") != std::string::npos);
  CHECK(r.out.find("\npt_display_healthy{bdf=\"0000:01:00.0\"} ") != std::string::npos);
  CHECK(r.out.find("pt_display_healthy{bdf=\"0000:01:00.1\"}") == std::string::npos);

  // The default file: its directory comes with prometheus-node-exporter.
  const std::string prom = t.fx.dir() + "/var/lib/prometheus/node-exporter/pt.prom";
  auto missing = pt_(t.root() + "metrics");
  CHECK(missing.status == 1);
  CHECK(missing.out.find("pt: /var/lib/prometheus/node-exporter: no such directory; install "
                         "prometheus-node-exporter") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(prom));
  std::filesystem::create_directories(std::filesystem::path(prom).parent_path());
  auto wrote = pt_(t.root() + "metrics");
  REQUIRE(wrote.status == 0);
  CHECK(wrote.out.empty());
  std::ifstream in(prom);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == r.out);
}
