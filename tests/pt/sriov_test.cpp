#include "pt/sriov.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "fixture.hpp"
#include "pt/bind_cmd.hpp"
#include "pt/conf_file.hpp"
#include "pt/sysfs.hpp"
#include "sriov_env.hpp"

using namespace pt;
using nlohmann::json;

namespace {

using test::nvme_pf;

// The Alder Lake-P iGPU from its published dump at 00:02.0 on i915, group 1.
void igpu_pf(test::Fixture& fx) {
  fx.add_driver("vfio-pci", "vfio_pci");
  fx.add_device(
      {.bdf = "0000:00:02.0",
       .vendor = 0x8086,
       .device = 0x46a6,
       .class_code = 0x030000,
       .driver = "i915",
       .group = 1,
       .caps = {.sriov =
                    test::FakeSriov{
                        .total_vfs = 7, .vf_device = 0x46a6, .vf_driver = "i915", .vf_group = 20},
                .raw = test::alder_lake_igpu_config()}});
}

Result<Exit> vfs(test::Fixture& fx, const std::string& dev, const std::string& n, std::string& out,
                 bool dry_run = false, bool json_out = false) {
  return test::run_vfs(fx, n, out, {.dev = dev, .dry_run = dry_run, .json = json_out});
}

json show(test::Fixture& fx, const std::string& dev) {
  bind::Options o;
  o.command = "show";
  o.devices = {dev};
  o.common.json = true;
  Context ctx = fx.context();
  std::ostringstream s;
  REQUIRE(bind::run_in(o, ctx, s));
  return json::parse(s.str());
}

size_t index_of(const test::FakeKernel& k, const std::string& path, const std::string& value) {
  for (size_t i = 0; i < k.log.size(); ++i)
    if (k.log[i].first == path && k.log[i].second == value) return i;
  return k.log.size();
}

const std::string kPf = "/sys/bus/pci/devices/0000:01:00.0";

}  // namespace

TEST_CASE("the SR-IOV capability of a real GPU PF decodes as its lspci -vvv shows it") {
  const auto bytes = test::alder_lake_igpu_config();
  ConfigSpace c(std::vector<uint8_t>(bytes.begin(), bytes.end()));
  auto cap = sriov::decode(c);
  REQUIRE(cap);
  CHECK(cap->initial_vfs == 7);
  CHECK(cap->total_vfs == 7);
  CHECK(cap->num_vfs == 0);
  CHECK(cap->first_vf_offset == 1);
  CHECK(cap->vf_stride == 1);
  CHECK(cap->vf_device == 0x46a6);
  CHECK_FALSE(cap->vf_enable());
  auto vfs = sriov::vf_addresses(PciAddress{0, 0, 2, 0}, *cap, 7);
  REQUIRE(vfs.size() == 7);
  CHECK(vfs.front().str() == "0000:00:02.1");
  CHECK(vfs.back().str() == "0000:00:02.7");
}

TEST_CASE("a GPU without SR-IOV has no capability, and a short read decodes nothing") {
  const auto fiji = test::radeon_fiji_config();
  CHECK_FALSE(sriov::decode(ConfigSpace(std::vector<uint8_t>(fiji.begin(), fiji.end()))));
  const auto igpu = test::alder_lake_igpu_config();
  CHECK_FALSE(sriov::decode(ConfigSpace(std::vector<uint8_t>(igpu.begin(), igpu.begin() + 256))));
}

TEST_CASE("VF routing IDs follow offset and stride across a bus") {
  sriov::Cap cap{.first_vf_offset = 0x80, .vf_stride = 2};
  auto vfs = sriov::vf_addresses(PciAddress{0, 0x3b, 0, 0}, cap, 3);
  REQUIRE(vfs.size() == 3);
  CHECK(vfs[0].str() == "0000:3b:10.0");
  CHECK(vfs[1].str() == "0000:3b:10.2");
  CHECK(vfs[2].str() == "0000:3b:10.4");
}

TEST_CASE("vfs N creates the VFs with autoprobe off, binds them to vfio-pci, journals the PF") {
  test::Fixture fx;
  nvme_pf(fx);
  std::string out;
  auto r = vfs(fx, "01:00.0", "2", out);
  REQUIRE_MESSAGE(r, r.error().describe());
  for (const char* vf : {"0000:01:00.1", "0000:01:00.2"}) {
    CHECK(fx.driver_of(vf) == "vfio-pci");
    CHECK(fx.override_of(vf) == "vfio-pci");
    CHECK(fx.read(std::string("/sys/bus/pci/devices/") + vf + "/physfn").empty());
    CHECK(fx.exists(std::string("/sys/bus/pci/devices/") + vf + "/physfn"));
  }
  CHECK(fx.read(kPf + "/sriov_numvfs") == "2");
  CHECK(fx.read(kPf + "/sriov_drivers_autoprobe") == "1");
  CHECK(fx.driver_of("0000:01:00.0") == "nvme");
  // Autoprobe went off before the VFs came, and back on after they were bound.
  auto& k = fx.kernel();
  const auto off = index_of(k, kPf + "/sriov_drivers_autoprobe", "0");
  const auto make = index_of(k, kPf + "/sriov_numvfs", "2");
  const auto on = index_of(k, kPf + "/sriov_drivers_autoprobe", "1");
  REQUIRE(on < k.log.size());
  CHECK(off < make);
  CHECK(make < on);
  CHECK(out.find("0000:01:00.1  VF of 0000:01:00.0 on vfio-pci") != std::string::npos);
  auto journal = load_journal(fx.root());
  REQUIRE(journal);
  REQUIRE(journal->sriov.count("0000:01:00.0"));
  const auto& rec = journal->sriov.at("0000:01:00.0");
  CHECK(rec.numvfs == 0);
  CHECK(rec.autoprobe == "1");
  CHECK(rec.count == 2);
  // No variant driver in modules.alias: "auto" put every VF on vfio-pci.
  CHECK(rec.to == "auto");
  CHECK(rec.drivers == std::map<std::string, std::string>{{"0000:01:00.1", "vfio-pci"},
                                                          {"0000:01:00.2", "vfio-pci"}});

  // The way back: the VFs go, the PF is as before, the record is dropped.
  r = vfs(fx, "01:00.0", "0", out);
  REQUIRE_MESSAGE(r, r.error().describe());
  CHECK_FALSE(fx.exists("/sys/bus/pci/devices/0000:01:00.1"));
  CHECK_FALSE(fx.exists("/sys/bus/pci/devices/0000:01:00.2"));
  CHECK_FALSE(fx.exists(kPf + "/virtfn0"));
  CHECK(fx.read(kPf + "/sriov_numvfs") == "0");
  CHECK(fx.read(kPf + "/sriov_drivers_autoprobe") == "1");
  journal = load_journal(fx.root());
  REQUIRE(journal);
  CHECK(journal->sriov.empty());
}

TEST_CASE("vfs changes a count through 0, and the way back restores the VFs from before") {
  test::Fixture fx;
  nvme_pf(fx);
  // Someone made one VF before, which nvme took.
  REQUIRE(fx.kernel().write(kPf + "/sriov_numvfs", "1", WriteKind::blocking));
  REQUIRE(fx.driver_of("0000:01:00.1") == "nvme");
  std::string out;
  auto r = vfs(fx, "01:00.0", "3", out);
  REQUIRE_MESSAGE(r, r.error().describe());
  CHECK(index_of(fx.kernel(), kPf + "/sriov_numvfs", "0") <
        index_of(fx.kernel(), kPf + "/sriov_numvfs", "3"));
  for (const char* vf : {"0000:01:00.1", "0000:01:00.2", "0000:01:00.3"})
    CHECK(fx.driver_of(vf) == "vfio-pci");
  r = vfs(fx, "01:00.0", "0", out);
  REQUIRE_MESSAGE(r, r.error().describe());
  CHECK(fx.read(kPf + "/sriov_numvfs") == "1");
  CHECK(fx.driver_of("0000:01:00.1") == "nvme");
  CHECK(fx.override_of("0000:01:00.1") == "(null)");
  CHECK_FALSE(fx.exists("/sys/bus/pci/devices/0000:01:00.2"));
  CHECK(out.find("its 1 VFs from before") != std::string::npos);
}

TEST_CASE("vfs on the real GPU PF's fixture binds every VF to vfio-pci, none to i915") {
  test::Fixture fx;
  igpu_pf(fx);
  auto j = show(fx, "00:02.0");
  REQUIRE(j["sriov"].is_object());
  CHECK(j["sriov"]["role"] == "pf");
  CHECK(j["sriov"]["total_vfs"] == 7);
  CHECK(j["sriov"]["num_vfs"] == 0);
  CHECK(j["sriov"]["vf_device"] == "46a6");
  CHECK(j["sriov"]["drivers_autoprobe"] == true);
  CHECK(j["sriov"]["capability"]["first_vf_offset"] == 1);
  CHECK(j["sriov"]["capability"]["vf_device"] == "46a6");
  // sysfs spells it as %x: "10" for QEMU's NVMe VF is shown as "0010".
  fx.write_file("/sys/bus/pci/devices/0000:00:02.0/sriov_vf_device", "10\n");
  CHECK(show(fx, "00:02.0")["sriov"]["vf_device"] == "0010");
  fx.write_file("/sys/bus/pci/devices/0000:00:02.0/sriov_vf_device", "46a6\n");
  std::string out;
  auto r = vfs(fx, "00:02.0", "3", out, false, true);
  REQUIRE_MESSAGE(r, r.error().describe());
  auto o = json::parse(out);
  CHECK(o["vfs"] == 3);
  REQUIRE(o["functions"].size() == 3);
  CHECK(o["functions"][0]["device"] == "0000:00:02.1");
  CHECK(o["functions"][2]["driver"] == "vfio-pci");
  for (const char* vf : {"0000:00:02.1", "0000:00:02.2", "0000:00:02.3"})
    CHECK(fx.driver_of(vf) == "vfio-pci");
  auto v = show(fx, "00:02.2");
  CHECK(v["sriov"]["role"] == "vf");
  CHECK(v["sriov"]["physfn"] == "0000:00:02.0");
  CHECK(v["iommu_group"] == 21);
  j = show(fx, "00:02.0");
  CHECK(j["sriov"]["num_vfs"] == 3);
  CHECK(j["sriov"]["vfs"] == json::array({"0000:00:02.1", "0000:00:02.2", "0000:00:02.3"}));
}

TEST_CASE("vfs refuses what is no PF, a count above sriov_totalvfs and a PF without driver") {
  test::Fixture fx;
  nvme_pf(fx);
  test::Fixture::gpu_on_root_bus(fx);
  const auto before = fx.snapshot();
  std::string out;
  auto r = vfs(fx, "00:02.0", "1", out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().message.find("no SR-IOV physical function") != std::string::npos);
  r = vfs(fx, "01:00.0", "5", out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().message.find("at most 4 VFs") != std::string::npos);
  r = vfs(fx, "01:00.0", "two", out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  // A --to driver that neither is registered nor has a module: refused
  // before the journal or the PF is touched, as detach --to refuses it.
  r = test::run_vfs(fx, "2", out, {.to = "no-such-driver"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(r.error().subject == "no-such-driver");
  CHECK(r.error().message.find("no PCI driver and no kernel module of that name") !=
        std::string::npos);
  CHECK(fx.kernel().log.empty());
  CHECK(fx.snapshot() == before);

  // A VF named instead of its PF.
  REQUIRE(vfs(fx, "01:00.0", "1", out));
  r = vfs(fx, "01:00.1", "1", out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().message.find("virtual function of 0000:01:00.0") != std::string::npos);
  REQUIRE(vfs(fx, "01:00.0", "0", out));

  // No driver on the PF: nothing to ask for VFs.
  REQUIRE(
      fx.kernel().write("/sys/bus/pci/drivers/nvme/unbind", "0000:01:00.0", WriteKind::blocking));
  const auto unbound = fx.snapshot();
  const auto writes = fx.kernel().log.size();
  r = vfs(fx, "01:00.0", "2", out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(r.error().message.find("has no driver") != std::string::npos);
  CHECK(fx.kernel().log.size() == writes);
  CHECK(fx.snapshot() == unbound);
}

TEST_CASE("vfs refuses to change VFs while a VM holds one's /dev/vfio group") {
  test::Fixture fx;
  nvme_pf(fx);
  std::string out;
  REQUIRE(vfs(fx, "01:00.0", "2", out));
  fx.write_file("/dev/vfio/11", "");
  fx.add_holder(4242, "qemu-system-x86", "/dev/vfio/11");
  const auto before = fx.snapshot();
  const auto writes = fx.kernel().log.size();
  for (const char* n : {"0", "1"}) {
    auto r = vfs(fx, "01:00.0", n, out);
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::failed);
    CHECK(r.error().err == EBUSY);
    CHECK(r.error().subject == "0000:01:00.2");
    CHECK(r.error().message.find("in use: pid 4242 (qemu-system-x86)") != std::string::npos);
  }
  CHECK(fx.kernel().log.size() == writes);
  CHECK(fx.snapshot() == before);
  CHECK(fx.driver_of("0000:01:00.2") == "vfio-pci");
}

TEST_CASE("a PF driver without sriov_configure: vfs rolls back autoprobe and the journal") {
  test::Fixture fx;
  nvme_pf(fx);
  fx.device("0000:01:00.0").caps.sriov->configurable = false;
  std::string out;
  auto r = vfs(fx, "01:00.0", "2", out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(r.error().err == ENOENT);
  CHECK(fx.read(kPf + "/sriov_drivers_autoprobe") == "1");
  CHECK(fx.read(kPf + "/sriov_numvfs") == "0");
  auto journal = load_journal(fx.root());
  REQUIRE(journal);
  CHECK(journal->sriov.empty());
}

TEST_CASE("a VF that will not bind to vfio-pci: every VF goes again") {
  test::Fixture fx;
  nvme_pf(fx);
  fx.refuse("vfio-pci", "0000:01:00.2");
  std::string out;
  auto r = vfs(fx, "01:00.0", "2", out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(r.error().subject == "0000:01:00.2");
  CHECK_FALSE(fx.exists("/sys/bus/pci/devices/0000:01:00.1"));
  CHECK(fx.read(kPf + "/sriov_numvfs") == "0");
  CHECK(fx.read(kPf + "/sriov_drivers_autoprobe") == "1");
  auto journal = load_journal(fx.root());
  REQUIRE(journal);
  CHECK(journal->sriov.empty());
}

TEST_CASE("vfs --dry-run prints the plan and writes nothing") {
  test::Fixture fx;
  nvme_pf(fx);
  const auto before = fx.snapshot();
  std::string out;
  auto r = vfs(fx, "01:00.0", "2", out, true);
  REQUIRE_MESSAGE(r, r.error().describe());
  CHECK(out.find("dry run: vfs 0000:01:00.0 2") != std::string::npos);
  CHECK(out.find("write " + kPf + "/sriov_drivers_autoprobe 0") != std::string::npos);
  CHECK_MESSAGE(out.find("bind 0000:01:00.2 to vfio-pci") != std::string::npos, out);
  CHECK(fx.kernel().log.empty());
  CHECK(fx.snapshot() == before);
  r = vfs(fx, "01:00.0", "2", out, true, true);
  REQUIRE(r);
  auto j = json::parse(out);
  CHECK(j["dry_run"] == true);
  CHECK(j["vfs"] == 2);
  CHECK(j["steps"].size() >= 5);
}

TEST_CASE("pt-bind boot makes the VFs pt.conf's vfs asks for, after its claims") {
  test::Fixture fx;
  nvme_pf(fx);
  fx.write_file("/etc/pt/pt.conf", "[device.nv]\nbdf = \"0000:01:00.0\"\nvfs = 2\n");
  ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
  bind::Options o;
  o.command = "boot";
  {
    o.common.dry_run = true;
    Context ctx = fx.context(true);
    std::ostringstream s;
    auto r = bind::run_in(o, ctx, s);
    REQUIRE_MESSAGE(r, r.error().describe());
    CHECK(s.str().find("vfs: write " + kPf + "/sriov_numvfs 2") != std::string::npos);
    CHECK(fx.kernel().log.empty());
  }
  o.common.dry_run = false;
  Context ctx = fx.context();
  std::ostringstream s;
  auto r = bind::run_in(o, ctx, s);
  REQUIRE_MESSAGE(r, r.error().describe());
  CHECK(*r == Exit::ok);
  CHECK(s.str().find("vfs: 0000:01:00.2 VF of 0000:01:00.0 on vfio-pci") != std::string::npos);
  CHECK(fx.driver_of("0000:01:00.1") == "vfio-pci");
  CHECK(fx.driver_of("0000:01:00.2") == "vfio-pci");
  CHECK(fx.read(kPf + "/sriov_drivers_autoprobe") == "1");
  auto journal = load_journal(fx.root());
  REQUIRE(journal);
  CHECK(journal->sriov.at("0000:01:00.0").count == 2);
}

TEST_CASE("pt.conf's vfs must be a count") {
  CHECK(parse_conf("[device.a]\nbdf = \"0000:01:00.0\"\nvfs = 3\n", "pt.conf")->devices.at(0).vfs ==
        3);
  for (const char* bad : {"vfs = -1", "vfs = \"4\"", "vfs = 70000", "vfs = 1.5"}) {
    auto c =
        parse_conf(std::string("[device.a]\nbdf = \"0000:01:00.0\"\n") + bad + "\n", "pt.conf");
    REQUIRE_FALSE(c);
    CHECK(c.error().exit == Exit::usage);
    CHECK(c.error().message.find("number of SR-IOV VFs") != std::string::npos);
  }
}

TEST_CASE("pt-bind boot skips a PF whose driver is not loaded yet, and names it") {
  test::Fixture fx;
  nvme_pf(fx);
  REQUIRE(
      fx.kernel().write("/sys/bus/pci/drivers/nvme/unbind", "0000:01:00.0", WriteKind::blocking));
  fx.write_file("/etc/pt/pt.conf", "[device.nv]\nbdf = \"0000:01:00.0\"\nvfs = 2\n");
  ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
  const auto writes = fx.kernel().log.size();
  bind::Options o;
  o.command = "boot";
  Context ctx = fx.context();
  std::ostringstream s;
  auto r = bind::run_in(o, ctx, s);
  REQUIRE_MESSAGE(r, r.error().describe());
  CHECK(*r == Exit::failed);
  CHECK(s.str().find("vfs: 0000:01:00.0 has no driver yet") != std::string::npos);
  CHECK(fx.kernel().log.size() == writes);
  CHECK(fx.read(kPf + "/sriov_numvfs") == "0");
}
