#include "pt/sriov_variant.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "fixture.hpp"
#include "pt/bind_cmd.hpp"
#include "pt/journal.hpp"
#include "sriov_env.hpp"

using namespace pt;
using nlohmann::json;

namespace {

using test::nvme_pf;

// modules.alias as depmod writes it on a kernel with vfio-pci's catch-all
// (vfio_pci.c's PCI_DRIVER_OVERRIDE_DEVICE_VFIO(PCI_ANY_ID, PCI_ANY_ID)) and
// the variant driver double of tests/vm/doubles, whose driver name differs
// from its module's.
void variant_modules(test::Fixture& fx) {
  auto& m = fx.modules();
  m.aliases = {{"vfio_pci:v*d*sv*sd*bc*sc*i*", "vfio_pci"},
               {"vfio_pci:v00001B36d00000010sv*sd*bc*sc*i*", "ptd_vfio_variant"},
               {"vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i*", "mlx5_vfio_pci"}};
  m.module_drivers = {{"ptd_vfio_variant", "ptd-vfio-variant"}};
}

Result<Exit> vfs(test::Fixture& fx, const std::string& n, std::string& out,
                 const std::string& to = "auto", bool dry_run = false, bool json_out = false) {
  return test::run_vfs(fx, n, out, {.to = to, .dry_run = dry_run, .json = json_out});
}

size_t index_of(const test::FakeKernel& k, const std::string& path, const std::string& value) {
  for (size_t i = 0; i < k.log.size(); ++i)
    if (k.log[i].first == path && k.log[i].second == value) return i;
  return k.log.size();
}

const std::string kPf = "/sys/bus/pci/devices/0000:01:00.0";
const std::string kAlias = "vfio_pci:v00001B36d00000010sv*sd*bc01sc08i02";

}  // namespace

TEST_CASE("a variant driver's alias is the function's modalias with vfio_pci: for pci:") {
  CHECK(sriov::variant_alias("pci:v000015B3d0000101Esv000015B3sd00000047bc02sc00i00\n") ==
        "vfio_pci:v000015B3d0000101Esv000015B3sd00000047bc02sc00i00");
  CHECK(sriov::variant_alias("").empty());
  CHECK(sriov::variant_alias("platform:efi-framebuffer").empty());
  CHECK(sriov::variant_alias("pci:v0000 1B36").empty());
}

TEST_CASE("choose_driver: one variant, none, two, and a driver named with --to") {
  test::Fixture fx;
  variant_modules(fx);
  const std::string nvme = "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02\n";
  auto one = sriov::choose_driver(fx.root(), &fx.modules(), "auto", nvme);
  CHECK(one.module == "ptd_vfio_variant");
  CHECK(one.driver.empty());  // not loaded yet
  CHECK(one.why ==
        "modules.alias: vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02 -> "
        "ptd_vfio_variant");
  CHECK(one.warning.empty());
  // Loaded, it names the driver the module registered, not the module.
  REQUIRE(sriov::load_driver(fx.root(), fx.modules(), one));
  CHECK(one.driver == "ptd-vfio-variant");
  CHECK(fx.exists("/sys/module/ptd_vfio_variant/drivers/pci:ptd-vfio-variant"));
  auto again = sriov::choose_driver(fx.root(), &fx.modules(), "auto", nvme);
  CHECK(again.driver == "ptd-vfio-variant");

  // Only vfio-pci's own catch-all matches: no variant.
  auto none = sriov::choose_driver(fx.root(), &fx.modules(), "auto",
                                   "pci:v00008086d000010EDsv*sd*bc02sc00i00");
  CHECK(none.driver == "vfio-pci");
  CHECK(none.module.empty());
  CHECK(none.why ==
        "modules.alias: no variant driver for vfio_pci:v00008086d000010EDsv*sd*bc02sc00i00");

  fx.modules().aliases.push_back({"vfio_pci:v00001B36d*sv*sd*bc01sc*i*", "other_vfio_pci"});
  auto two = sriov::choose_driver(fx.root(), &fx.modules(), "auto", nvme);
  CHECK(two.driver == "vfio-pci");
  CHECK(two.module.empty());
  CHECK(two.warning.find("names 2 variant drivers") != std::string::npos);
  CHECK(two.warning.find("ptd_vfio_variant, other_vfio_pci") != std::string::npos);

  auto named = sriov::choose_driver(fx.root(), &fx.modules(), "vfio-pci", nvme);
  CHECK(named.driver == "vfio-pci");
  CHECK(named.why == "--to vfio-pci");
  CHECK(fx.modules().loaded == std::vector<std::string>{"ptd_vfio_variant"});

  // Without a module index there is nothing to look up.
  auto no_index = sriov::choose_driver(fx.root(), nullptr, "auto", nvme);
  CHECK(no_index.driver == "vfio-pci");
}

TEST_CASE(
    "vfs binds the VFs to the variant driver modules.alias names, journals it, and goes back") {
  test::Fixture fx;
  nvme_pf(fx);
  variant_modules(fx);
  std::string out;
  auto r = vfs(fx, "2", out);
  REQUIRE_MESSAGE(r, r.error().describe());
  CHECK(fx.modules().loaded == std::vector<std::string>{"ptd_vfio_variant"});
  auto& k = fx.kernel();
  for (const char* vf : {"0000:01:00.1", "0000:01:00.2"}) {
    const std::string dev = std::string("/sys/bus/pci/devices/") + vf;
    CHECK(fx.driver_of(vf) == "ptd-vfio-variant");
    CHECK(fx.override_of(vf) == "ptd-vfio-variant");
    // The override first, then the probe that binds by it.
    const auto ov = index_of(k, dev + "/driver_override", "ptd-vfio-variant");
    const auto probe = index_of(k, "/sys/bus/pci/drivers_probe", vf);
    REQUIRE(probe < k.log.size());
    CHECK(ov < probe);
  }
  CHECK(out.find("0000:01:00.1  VF of 0000:01:00.0 on ptd-vfio-variant") != std::string::npos);
  CHECK(out.find("warning") == std::string::npos);
  auto journal = load_journal(fx.root());
  REQUIRE(journal);
  REQUIRE(journal->sriov.count("0000:01:00.0"));
  const auto& rec = journal->sriov.at("0000:01:00.0");
  CHECK(rec.to == "auto");
  CHECK(rec.drivers == std::map<std::string, std::string>{{"0000:01:00.1", "ptd-vfio-variant"},
                                                          {"0000:01:00.2", "ptd-vfio-variant"}});
  auto text = json::parse(fx.read("/run/pt/journal.json"));
  CHECK(text["sriov"]["0000:01:00.0"]["drivers"]["0000:01:00.2"] == "ptd-vfio-variant");

  r = vfs(fx, "2", out);
  REQUIRE(r);
  CHECK_MESSAGE(out.find("already has 2 VFs on ptd-vfio-variant") != std::string::npos, out);

  // The way back unbinds them from the variant driver and removes them.
  k.log.clear();
  r = vfs(fx, "0", out);
  REQUIRE_MESSAGE(r, r.error().describe());
  CHECK(index_of(k, "/sys/bus/pci/drivers/ptd-vfio-variant/unbind", "0000:01:00.1") < k.log.size());
  CHECK(index_of(k, "/sys/bus/pci/devices/0000:01:00.1/driver_override", "") < k.log.size());
  CHECK_FALSE(fx.exists("/sys/bus/pci/devices/0000:01:00.1"));
  CHECK_FALSE(fx.exists("/sys/bus/pci/devices/0000:01:00.2"));
  CHECK(fx.read(kPf + "/sriov_numvfs") == "0");
  CHECK(fx.read(kPf + "/sriov_drivers_autoprobe") == "1");
  journal = load_journal(fx.root());
  REQUIRE(journal);
  CHECK(journal->sriov.empty());
}

TEST_CASE("vfs without a variant, with two, and with --to vfio-pci binds to vfio-pci") {
  test::Fixture fx;
  nvme_pf(fx);
  std::string out;

  SUBCASE("no variant: only vfio-pci's catch-all") {
    fx.modules().aliases = {{"vfio_pci:v*d*sv*sd*bc*sc*i*", "vfio_pci"}};
    auto r = vfs(fx, "2", out);
    REQUIRE_MESSAGE(r, r.error().describe());
    CHECK(out.find("warning") == std::string::npos);
  }
  SUBCASE("two variants: none is chosen, and it says so") {
    variant_modules(fx);
    fx.modules().aliases.push_back({"vfio_pci:v00001B36d*sv*sd*bc01sc*i*", "other_vfio_pci"});
    fx.modules().module_drivers["other_vfio_pci"] = "other_vfio_pci";
    auto r = vfs(fx, "2", out);
    REQUIRE_MESSAGE(r, r.error().describe());
    CHECK_MESSAGE(out.find("warning: modules.alias names 2 variant drivers for " + kAlias +
                           " (ptd_vfio_variant, other_vfio_pci); using vfio-pci (name one with "
                           "--to)\n") != std::string::npos,
                  out);
  }
  SUBCASE("--to vfio-pci: the variant is not looked at") {
    variant_modules(fx);
    auto r = vfs(fx, "2", out, "vfio-pci");
    REQUIRE_MESSAGE(r, r.error().describe());
    REQUIRE(load_journal(fx.root()));
    CHECK(load_journal(fx.root())->sriov.at("0000:01:00.0").to == "vfio-pci");
  }
  CHECK(fx.modules().loaded.empty());
  for (const char* vf : {"0000:01:00.1", "0000:01:00.2"}) {
    CHECK(fx.driver_of(vf) == "vfio-pci");
    CHECK(fx.override_of(vf) == "vfio-pci");
  }
  auto journal = load_journal(fx.root());
  REQUIRE(journal);
  CHECK(journal->sriov.at("0000:01:00.0").drivers.at("0000:01:00.2") == "vfio-pci");
}

TEST_CASE("vfs --dry-run names the variant driver and why, and writes nothing") {
  test::Fixture fx;
  nvme_pf(fx);
  variant_modules(fx);
  const auto before = fx.snapshot();
  std::string out;
  auto r = vfs(fx, "2", out, "auto", true);
  REQUIRE_MESSAGE(r, r.error().describe());
  CHECK_MESSAGE(
      out.find("  load module ptd_vfio_variant (modprobe ptd_vfio_variant)\n") != std::string::npos,
      out);
  // The PF's modalias with the VF device ID: the fixture's PF has sv*sd*.
  CHECK_MESSAGE(out.find("  bind 0000:01:00.2 to ptd_vfio_variant (driver_override, drivers_probe; "
                         "modules.alias: " +
                         kAlias + " -> ptd_vfio_variant)\n") != std::string::npos,
                out);
  r = vfs(fx, "2", out, "auto", true, true);
  REQUIRE(r);
  auto j = json::parse(out);
  CHECK(j["to"] == "auto");
  REQUIRE(j["functions"].size() == 2);
  CHECK(j["functions"][0]["device"] == "0000:01:00.1");
  CHECK(j["functions"][0]["driver"] == "ptd_vfio_variant");
  CHECK(j["functions"][0]["module"] == "ptd_vfio_variant");
  CHECK(j["functions"][0]["why"] == "modules.alias: " + kAlias + " -> ptd_vfio_variant");
  CHECK(j["warnings"].empty());
  CHECK(fx.kernel().log.empty());
  CHECK(fx.modules().loaded.empty());
  CHECK(fx.snapshot() == before);
}

TEST_CASE("a VF the variant driver refuses: every VF goes again, the journal as before") {
  test::Fixture fx;
  nvme_pf(fx);
  variant_modules(fx);
  fx.refuse("ptd-vfio-variant", "0000:01:00.2");
  std::string out;
  auto r = vfs(fx, "2", out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(r.error().subject == "0000:01:00.2");
  CHECK(r.error().message.find("did not bind to ptd-vfio-variant") != std::string::npos);
  CHECK_FALSE(fx.exists("/sys/bus/pci/devices/0000:01:00.1"));
  CHECK_FALSE(fx.exists("/sys/bus/pci/devices/0000:01:00.2"));
  CHECK(fx.read(kPf + "/sriov_numvfs") == "0");
  CHECK(fx.read(kPf + "/sriov_drivers_autoprobe") == "1");
  // The VF bound first was unbound from the variant on the way back.
  CHECK(index_of(fx.kernel(), "/sys/bus/pci/drivers/ptd-vfio-variant/unbind", "0000:01:00.1") <
        fx.kernel().log.size());
  auto journal = load_journal(fx.root());
  REQUIRE(journal);
  CHECK(journal->sriov.empty());
}

TEST_CASE("a variant module that cannot be loaded: the VFs go again") {
  test::Fixture fx;
  nvme_pf(fx);
  variant_modules(fx);
  fx.modules().fail_with = ENOEXEC;
  std::string out;
  auto r = vfs(fx, "2", out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(r.error().subject == "ptd_vfio_variant");
  CHECK_FALSE(fx.exists("/sys/bus/pci/devices/0000:01:00.1"));
  CHECK(fx.read(kPf + "/sriov_numvfs") == "0");
  auto journal = load_journal(fx.root());
  REQUIRE(journal);
  CHECK(journal->sriov.empty());
}
