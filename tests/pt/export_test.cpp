#include "pt/export.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <sstream>

#include "fixture.hpp"
#include "pt/bind_cmd.hpp"

using namespace pt;

namespace {

// The GPU and its audio as a board vendor ships them: a subsystem ID that is
// not the chip vendor's, which Proxmox checks before it passes a mapping.
void gpu_board(test::Fixture& fx) {
  test::Fixture::gpu_with_audio(fx);
  fx.write_file("/sys/bus/pci/devices/0000:01:00.0/subsystem_vendor", "0x1458\n");
  fx.write_file("/sys/bus/pci/devices/0000:01:00.0/subsystem_device", "0x403b\n");
  fx.write_file("/proc/sys/kernel/hostname", "pve1\n");
}

Result<std::string> export_of(test::Fixture& fx, const std::string& dev,
                              const exporter::Request& r) {
  auto spec = parse_device_spec(dev);
  REQUIRE(spec);
  auto fs = exporter::read_functions(fx.root(), *spec);
  if (!fs) return std::unexpected(fs.error());
  return exporter::render(*fs, r);
}

Result<Exit> run_export(test::Fixture& fx, bind::Options o, std::string& out) {
  o.command = "export";
  Context ctx = fx.context();
  std::ostringstream s;
  auto r = bind::run_in(o, ctx, s);
  out = s.str();
  return r;
}

}  // namespace

TEST_CASE("read_functions: a slot's functions with IDs, subsystem and group from sysfs") {
  test::Fixture fx;
  gpu_board(fx);
  auto fs = exporter::read_functions(fx.root(), *parse_device_spec("01:00"));
  REQUIRE(fs);
  REQUIRE(fs->size() == 2);
  CHECK((*fs)[0].addr.str() == "0000:01:00.0");
  CHECK((*fs)[0].vendor == 0x10de);
  CHECK((*fs)[0].device == 0x2484);
  CHECK((*fs)[0].subsystem_vendor == 0x1458);
  CHECK((*fs)[0].subsystem_device == 0x403b);
  CHECK((*fs)[0].iommu_group == 1);
  CHECK_FALSE((*fs)[0].physical_function);
  CHECK((*fs)[1].addr.str() == "0000:01:00.1");
  CHECK((*fs)[1].device == 0x228b);

  auto one = exporter::read_functions(fx.root(), *parse_device_spec("01:00.1"));
  REQUIRE(one);
  REQUIRE(one->size() == 1);
  CHECK(one->front().addr.str() == "0000:01:00.1");

  auto none = exporter::read_functions(fx.root(), *parse_device_spec("05:00.0"));
  REQUIRE_FALSE(none);
  CHECK(none.error().err == ENODEV);
  CHECK(none.error().subject == "05:00.0");
}

TEST_CASE("proxmox: the slot maps as one multifunction path with function 0's IDs") {
  test::Fixture fx;
  gpu_board(fx);
  auto text = export_of(fx, "01:00", {.format = exporter::Format::proxmox, .node = "pve1"});
  REQUIRE(text);
  CHECK(*text ==
        "# Proxmox VE: /etc/pve/mapping/pci.cfg (Datacenter > Resource Mappings). Add a map\n"
        "# line for each node, then use hostpci0: mapping=pci-0000-01-00 in the VM.\n"
        "pci-0000-01-00\n"
        "\tmap id=10de:2484,iommugroup=1,node=pve1,path=0000:01:00,subsystem-id=1458:403b\n");
  auto fn = export_of(fx, "01:00.1",
                      {.format = exporter::Format::proxmox, .name = "gpu-audio", .node = "pve2"});
  REQUIRE(fn);
  CHECK(fn->find("no IOMMU group") == std::string::npos);
  CHECK(fn->ends_with(
      "gpu-audio\n\tmap "
      "id=10de:228b,iommugroup=1,node=pve2,path=0000:01:00.1,subsystem-id=10de:0000\n"));
}

TEST_CASE(
    "proxmox: a function in no IOMMU group gets the map line and a note to enable the IOMMU") {
  test::Fixture fx;
  gpu_board(fx);
  std::filesystem::remove(fx.root().path("/sys/bus/pci/devices/0000:01:00.0/iommu_group"));
  auto text = export_of(fx, "01:00.0", {.format = exporter::Format::proxmox, .node = "pve1"});
  REQUIRE(text);
  CHECK(text->find("# 0000:01:00.0 is in no IOMMU group: enable the IOMMU (intel_iommu=on or "
                   "amd_iommu=on)\n# before a VM can use it.\n") != std::string::npos);
  CHECK(text->ends_with(
      "pci-0000-01-00-0\n\tmap id=10de:2484,node=pve1,path=0000:01:00.0,subsystem-id=1458:403b\n"));
}

TEST_CASE("kubevirt: one pciHostDevices entry per distinct ID, resource names per function") {
  test::Fixture fx;
  gpu_board(fx);
  auto text = export_of(fx, "01:00", {.format = exporter::Format::kubevirt});
  REQUIRE(text);
  CHECK(text->find("permittedHostDevices:\n  pciHostDevices:\n"
                   "  - pciVendorSelector: \"10DE:2484\"\n"
                   "    resourceName: \"nvidia.com/pci_10de_2484_2484\"\n"
                   "  - pciVendorSelector: \"10DE:228B\"\n"
                   "    resourceName: \"nvidia.com/pci_10de_2484_228b\"\n") != std::string::npos);
  auto gpu =
      export_of(fx, "01:00.0", {.format = exporter::Format::kubevirt, .name = "nvidia.com/GA104"});
  REQUIRE(gpu);
  CHECK(
      gpu->ends_with("  - pciVendorSelector: \"10DE:2484\"\n"
                     "    resourceName: \"nvidia.com/GA104\"\n"));
}

TEST_CASE("nova: a device_spec per function with managed no, an alias per ID with its type") {
  test::Fixture fx;
  gpu_board(fx);
  auto text = export_of(fx, "01:00", {.format = exporter::Format::nova, .name = "gpu"});
  REQUIRE(text);
  CHECK(text->find("[pci]\n"
                   "device_spec = "
                   "{\"address\":\"0000:01:00.0\",\"vendor_id\":\"10de\",\"product_id\":\"2484\","
                   "\"managed\":\"no\"}\n"
                   "device_spec = "
                   "{\"address\":\"0000:01:00.1\",\"vendor_id\":\"10de\",\"product_id\":\"228b\","
                   "\"managed\":\"no\"}\n"
                   "alias = {\"name\":\"gpu-2484\",\"vendor_id\":\"10de\",\"product_id\":\"2484\","
                   "\"device_type\":\"type-PCI\"}\n"
                   "alias = {\"name\":\"gpu-228b\",\"vendor_id\":\"10de\",\"product_id\":\"228b\","
                   "\"device_type\":\"type-PCI\"}\n") != std::string::npos);

  // An SR-IOV physical function and one of its virtual functions.
  fx.write_file("/sys/bus/pci/devices/0000:01:00.0/sriov_totalvfs", "16\n");
  auto pf = export_of(fx, "01:00.0", {.format = exporter::Format::nova});
  REQUIRE(pf);
  CHECK(pf->find("\"name\":\"pci-10de-2484\"") != std::string::npos);
  CHECK(pf->find("\"device_type\":\"type-PF\"") != std::string::npos);
  std::filesystem::create_symlink("../0000:01:00.0",
                                  fx.root().path("/sys/bus/pci/devices/0000:01:00.1/physfn"));
  auto vf = export_of(fx, "01:00.1", {.format = exporter::Format::nova});
  REQUIRE(vf);
  CHECK(vf->find("\"device_type\":\"type-VF\"") != std::string::npos);
}

TEST_CASE("a name or node the engine would refuse is a usage error that names it") {
  test::Fixture fx;
  gpu_board(fx);
  struct Case {
    exporter::Format format;
    std::string name, node, subject;
  };
  for (const auto& c :
       {Case{exporter::Format::proxmox, "1gpu", "pve1", "--name 1gpu"},
        Case{exporter::Format::proxmox, "gpu 0", "pve1", "--name gpu 0"},
        Case{exporter::Format::proxmox, "gpu", "pve 1", "--node pve 1"},
        Case{exporter::Format::kubevirt, "rtx3090", "", "--name rtx3090"},
        Case{exporter::Format::kubevirt, "nvidia.com/-x", "", "--name nvidia.com/-x"},
        Case{exporter::Format::nova, "gpu:1", "", "--name gpu:1"}}) {
    CAPTURE(c.subject);
    auto r = export_of(fx, "01:00", {.format = c.format, .name = c.name, .node = c.node});
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::usage);
    CHECK(r.error().subject == c.subject);
  }
  auto bad = exporter::parse_format("libvirt");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().exit == Exit::usage);
  CHECK(bad.error().subject == "libvirt");
  CHECK(bad.error().message.find("proxmox, kubevirt or nova") != std::string::npos);
}

TEST_CASE("pt-bind export prints the entry, takes the node from the host name, writes nothing") {
  test::Fixture fx;
  gpu_board(fx);
  const auto before = fx.snapshot();
  bind::Options o;
  o.format = "proxmox";
  o.devices = {"01:00.0"};
  o.name = "gpu";
  std::string out;
  auto r = run_export(fx, o, out);
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  CHECK(out.ends_with(
      "gpu\n\tmap id=10de:2484,iommugroup=1,node=pve1,path=0000:01:00.0,subsystem-id=1458:403b\n"));
  CHECK(fx.snapshot() == before);

  // No host name under the root and no --node: an error that says what to do.
  std::filesystem::remove(fx.root().path("/proc/sys/kernel/hostname"));
  const auto without_name = fx.snapshot();
  r = run_export(fx, o, out);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("--node") != std::string::npos);
  o.node = "pve3";
  r = run_export(fx, o, out);
  REQUIRE(r);
  CHECK(out.find("node=pve3,") != std::string::npos);

  o.format = "xen";
  r = run_export(fx, o, out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(fx.snapshot() == without_name);
}
