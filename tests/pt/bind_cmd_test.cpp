#include "pt/bind_cmd.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <filesystem>
#include <map>
#include <sstream>

#include "fixture.hpp"

using namespace pt;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {
Result<Exit> run(test::Fixture& fx, bind::Options o, std::string& out) {
  Context ctx = fx.context(o.common.dry_run);
  std::ostringstream s;
  auto r = bind::run_in(o, ctx, s);
  out = s.str();
  return r;
}
}  // namespace

TEST_CASE("list --json has the documented schema") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  bind::Options o;
  o.command = "list";
  o.common.json = true;
  std::string out;
  REQUIRE(run(fx, o, out));
  auto j = json::parse(out);
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 3);
  const auto& gpu = j[1];
  CHECK(gpu["device"] == "0000:01:00.0");
  CHECK(gpu["vendor"] == "10de");
  CHECK(gpu["device_id"] == "2484");
  CHECK(gpu["class"] == "0300");
  CHECK(gpu["class_name"] == "VGA compatible controller");
  CHECK(gpu["driver"] == "nvidia");
  CHECK(gpu["iommu_group"] == 1);
  CHECK(gpu["boot_vga"] == true);
  CHECK(gpu["reset_methods"] == json::array({"flr", "bus"}));
  CHECK(gpu["companions"] == json::array({"0000:01:00.1"}));
  CHECK(j[2]["boot_vga"].is_null());
  CHECK(j[0]["iommu_group"].is_null());
}

TEST_CASE("list --class filters display and audio functions") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  bind::Options o;
  o.command = "list";
  o.common.json = true;
  o.device_class = "audio";
  std::string out;
  REQUIRE(run(fx, o, out));
  auto j = json::parse(out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["device"] == "0000:01:00.1");
  o.device_class = "sound";
  auto bad = run(fx, o, out);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().exit == Exit::usage);
}

TEST_CASE("show gives group, slot, override, module, holders and journal") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  fx.add_holder(4242, "Xorg", "/dev/dri/card0");
  bind::Options o;
  o.command = "show";
  o.devices = {"01:00.0"};
  o.common.json = true;
  std::string out;
  REQUIRE(run(fx, o, out));
  auto j = json::parse(out);
  CHECK(j["group_members"] == json::array({"0000:01:00.0", "0000:01:00.1"}));
  CHECK(j["slot_functions"] == json::array({"0000:01:00.0", "0000:01:00.1"}));
  CHECK(j["driver_module"] == "nvidia");
  CHECK(j["driver_override"].is_null());
  CHECK(j["parent"] == "0000:00:01.0");
  REQUIRE(j["holders"].size() == 1);
  CHECK(j["holders"][0]["pid"] == 4242);
  CHECK(j["holders"][0]["command"] == "Xorg");
  CHECK(j["journal"].is_null());

  o.common.json = false;
  REQUIRE(run(fx, o, out));
  CHECK(out.find("holders:          pid 4242 (Xorg) holds /dev/dri/card0") != std::string::npos);
  CHECK(out.find("iommu group:      1: 0000:01:00.0 0000:01:00.1") != std::string::npos);
}

TEST_CASE("show lists the kernel's own users of a function: mounts, swaps, interfaces up") {
  test::Fixture fx;
  test::Fixture::kernel_held(fx);
  fx.add_mount("254:1", "/dev/vda1", "/srv", "ext4");
  fx.add_swap("/dev/vda2");
  bind::Options o;
  o.command = "show";
  o.devices = {"00:04.0"};
  o.common.json = true;
  std::string out;
  REQUIRE(run(fx, o, out));
  auto j = json::parse(out);
  REQUIRE(j["kernel_users"].size() == 2);
  CHECK(j["kernel_users"][0] == json{{"kind", "mount"},
                                     {"device", "/dev/vda1"},
                                     {"via", nullptr},
                                     {"target", "/srv"},
                                     {"fstype", "ext4"}});
  CHECK(j["kernel_users"][1] == json{{"kind", "swap"}, {"device", "/dev/vda2"}, {"via", nullptr}});
  o.devices = {"00:05.0"};
  REQUIRE(run(fx, o, out));
  j = json::parse(out);
  CHECK(j["kernel_users"] ==
        json::array(
            {json{{"kind", "net"}, {"device", "eth0"}, {"via", nullptr}, {"operstate", "up"}}}));

  o.common.json = false;
  o.devices = {"00:04.0"};
  REQUIRE(run(fx, o, out));
  CHECK(
      out.find(
          "kernel users:     backs /dev/vda1 mounted on /srv (ext4), backs swap on /dev/vda2\n") !=
      std::string::npos);
  o.devices = {"01:00.0"};
  REQUIRE(run(fx, o, out));
  CHECK(out.find("kernel users:     none\n") != std::string::npos);
}

TEST_CASE("detach --json reports each function's move") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  bind::Options o;
  o.command = "detach";
  o.devices = {"01:00"};
  o.common.json = true;
  std::string out;
  REQUIRE(run(fx, o, out));
  auto j = json::parse(out);
  CHECK(j["op"] == "detach");
  REQUIRE(j["functions"].size() == 2);
  CHECK(j["functions"][0]["device"] == "0000:01:00.1");
  CHECK(j["functions"][0]["from"] == "snd_hda_intel");
  CHECK(j["functions"][0]["to"] == "vfio-pci");
  CHECK(j["functions"][0]["result"] == "moved");
}

TEST_CASE("list and show carry vendor and device names, null when pci.ids lacks them") {
  test::Fixture fx;
  test::Fixture::group_with_unrelated(fx);
  bind::Options o;
  o.command = "list";
  o.common.json = true;
  std::string out;
  REQUIRE(run(fx, o, out));
  auto j = json::parse(out);
  std::map<std::string, json> by;
  for (const auto& d : j) by[d["device"].get<std::string>()] = d;
  REQUIRE(by.count("0000:01:00.0"));
  REQUIRE(by.count("0000:01:00.2"));
  CHECK(by["0000:01:00.0"]["vendor_name"] == "NVIDIA Corporation");
  CHECK(by["0000:01:00.0"]["device_name"] == "GA104 [GeForce RTX 3070]");
  CHECK(by["0000:01:00.2"]["vendor_name"] == "NVIDIA Corporation");
  CHECK(by["0000:01:00.2"]["device_name"].is_null());

  o.common.json = false;
  REQUIRE(run(fx, o, out));
  CHECK(out.find("COMPANIONS     NAME\n") != std::string::npos);
  CHECK(out.find(" NVIDIA Corporation GA104 [GeForce RTX 3070]\n") != std::string::npos);
  CHECK(out.find(" NVIDIA Corporation Device 1ada\n") != std::string::npos);
  CHECK(out.find("note:") == std::string::npos);  // IOMMU groups and vfio-pci (below) are there

  o.command = "show";
  o.devices = {"01:00.1"};
  REQUIRE(run(fx, o, out));
  CHECK(out.starts_with(
      "0000:01:00.1  10de:228b  Audio device: NVIDIA Corporation GA104 High Definition Audio "
      "Controller\n"));
  o.common.json = true;
  REQUIRE(run(fx, o, out));
  j = json::parse(out);
  CHECK(j["vendor_name"] == "NVIDIA Corporation");
  CHECK(j["device_name"] == "GA104 High Definition Audio Controller");
}

TEST_CASE("list names what keeps the machine from passthrough: no IOMMU, no vfio-pci") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  fx.no_iommu();
  fx.modules().available.erase("vfio-pci");
  std::filesystem::remove_all(fx.dir() + "/sys/bus/pci/drivers/vfio-pci");
  bind::Options o;
  o.command = "list";
  std::string out;
  REQUIRE(run(fx, o, out));
  CHECK(out.find("\nnote: no IOMMU: add intel_iommu=on (or amd_iommu=on) to the kernel command line") !=
        std::string::npos);
  CHECK(out.find("\nnote: vfio-pci is not available: ") != std::string::npos);
  // JSON keeps its array; iommu_group null says the same.
  o.common.json = true;
  REQUIRE(run(fx, o, out));
  auto j = json::parse(out);
  REQUIRE(j.is_array());
  CHECK(j[1]["iommu_group"].is_null());
  // With vfio-pci known the second note goes.
  fx.modules().available.insert("vfio-pci");
  o.common.json = false;
  REQUIRE(run(fx, o, out));
  CHECK(out.find("note: no IOMMU") != std::string::npos);
  CHECK(out.find("vfio-pci is not available") == std::string::npos);
}

namespace {
bind::Options show_of(const std::string& dev, bool json_out) {
  bind::Options o;
  o.command = "show";
  o.devices = {dev};
  o.common.json = json_out;
  return o;
}
}  // namespace

TEST_CASE("show decodes a real GPU's ATS and ARI and warns of the root port without ACS") {
  test::Fixture fx;
  fx.add_bridge("0000:00:01.0", "", test::FakeCaps{});  // no ACS
  fx.add_device(test::FakeDevice{.bdf = "0000:01:00.0",
                                 .vendor = 0x1002,
                                 .device = 0x7300,
                                 .parent = "0000:00:01.0",
                                 .group = 1,
                                 .caps = {.raw = test::radeon_fiji_config()}});
  std::string out;
  REQUIRE(run(fx, show_of("01:00.0", true), out));
  auto j = json::parse(out);
  CHECK(j["config_size"] == 4096);
  CHECK(j["capabilities_error"].is_null());
  CHECK(j["acs"] == json{{"present", false}});
  CHECK(j["ats"] == json{{"present", true}, {"enabled", true}});
  CHECK(j["ari"] == json{{"present", true}});
  // pciutils tests/cap-rebar: ReBAR at 0x200, BAR 0 at 256M of 256M..4G.
  CHECK(j["rebar"] == json::array({{{"bar", 0},
                                    {"current", "256M"},
                                    {"current_mib", 256},
                                    {"supported", {"256M", "512M", "1G", "2G", "4G"}}}}));
  CHECK(j["acs_path"] == json::array({{{"bridge", "0000:00:01.0"},
                                       {"problem", "root port without ACS"},
                                       {"unknown", false}}}));

  REQUIRE(run(fx, show_of("01:00.0", false), out));
  CHECK(out.find("  acs:              none\n"
                 "  ats:              present, enabled\n"
                 "  ari:              present\n"
                 "  resizable bars:   BAR 0 256M (supports 256M 512M 1G 2G 4G)\n"
                 "  warning: 0000:00:01.0 is a root port without ACS: the functions below it can "
                 "reach each other without the IOMMU, which is why the IOMMU group is large "
                 "(unless a kernel quirk vouches for it)\n") != std::string::npos);
}

TEST_CASE("show gives ACS capability and control bits; isolating ports give no warning") {
  test::Fixture fx;
  fx.add_bridge("0000:00:01.0");
  fx.add_device(test::FakeDevice{
      .bdf = "0000:01:00.0",
      .parent = "0000:00:01.0",
      .group = 1,
      .caps = {.acs = std::pair<uint16_t, uint16_t>{0x005f, 0x001d}, .ats = true, .ari = true}});
  std::string out;
  REQUIRE(run(fx, show_of("01:00.0", true), out));
  auto j = json::parse(out);
  CHECK(j["acs"] == json{{"present", true},
                         {"capability",
                          {{"sv", true},
                           {"tb", true},
                           {"rr", true},
                           {"cr", true},
                           {"uf", true},
                           {"ec", false},
                           {"dt", true}}},
                         {"control",
                          {{"sv", true},
                           {"tb", false},
                           {"rr", true},
                           {"cr", true},
                           {"uf", true},
                           {"ec", false},
                           {"dt", false}}}});
  CHECK(j["ats"] == json{{"present", true}, {"enabled", false}});
  CHECK(j["acs_path"] == json::array());
  REQUIRE(run(fx, show_of("01:00.0", false), out));
  CHECK(out.find("  acs:              capability SV+ TB+ RR+ CR+ UF+ EC- DT+; control SV+ TB- RR+ "
                 "CR+ UF+ EC- DT-\n"
                 "  ats:              present, disabled\n"
                 "  ari:              present\n") != std::string::npos);
  CHECK(out.find("warning") == std::string::npos);
}

TEST_CASE("show of a config space read short or all ones decides nothing from the missing bytes") {
  const std::string fiji = test::radeon_fiji_config();
  struct Case {
    std::string raw;
    size_t size;
    std::string why;
  };
  for (const auto& c :
       {Case{fiji.substr(0, 64), 64,
             "capabilities unreadable: config space is 64 bytes (run as root)"},
        Case{fiji.substr(0, 256), 256,
             "extended capabilities unreadable: config space is 256 bytes (no extended config "
             "access)"},
        Case{std::string(4096, '\xff'), 4096,
             "config space reads all ones: the device is powered off or gone"}}) {
    CAPTURE(c.size);
    test::Fixture fx;
    fx.add_bridge("0000:00:01.0");
    fx.add_device(test::FakeDevice{.bdf = "0000:01:00.0",
                                   .vendor = 0x1002,
                                   .device = 0x7300,
                                   .parent = "0000:00:01.0",
                                   .group = 1,
                                   .caps = {.raw = c.raw}});
    std::string out;
    REQUIRE(run(fx, show_of("01:00.0", true), out));
    auto j = json::parse(out);
    CHECK(j["config_size"] == c.size);
    CHECK(j["capabilities_error"] == c.why);
    CHECK(j["acs"].is_null());
    CHECK(j["ats"].is_null());
    CHECK(j["ari"].is_null());
    CHECK(j["acs_path"] == json::array());  // the root port itself reads in full
    REQUIRE(run(fx, show_of("01:00.0", false), out));
    CHECK(out.find("  capabilities:     " + c.why + "\n") != std::string::npos);
    for (const char* verdict : {"  acs:", "  ats:", "  ari:"})
      CHECK(out.find(verdict) == std::string::npos);
  }
}

TEST_CASE("show of a function whose header cannot be read still shows the rest, and says why") {
  test::Fixture fx;
  fx.add_bridge("0000:00:01.0");
  fx.add_device(test::FakeDevice{.bdf = "0000:01:00.0",
                                 .parent = "0000:00:01.0",
                                 .group = 1,
                                 .caps = {.raw = std::string(32, '\0')}});
  std::string out;
  REQUIRE(run(fx, show_of("01:00.0", true), out));
  auto j = json::parse(out);
  CHECK(j["config_size"].is_null());
  CHECK(j["capabilities_error"] ==
        "config space unreadable: not even its 64-byte header could be read (libpci: cannot read "
        "config space); "
        "check that the device is still there with pt-bind list");
  CHECK(j["acs"].is_null());
  CHECK(j["group_members"] == json::array({"0000:01:00.0"}));
}
