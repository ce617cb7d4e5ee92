#include "pt/pci.hpp"

#include <filesystem>
#include <map>

#include <doctest/doctest.h>

#include "fixture.hpp"

using namespace pt;

TEST_CASE("scan reads a GPU with its audio function behind a root port") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  auto all = scan_devices(fx.root());
  REQUIRE(all);
  REQUIRE(all->size() == 3);
  const Device& port = (*all)[0];
  const Device& gpu = (*all)[1];
  const Device& audio = (*all)[2];
  CHECK(port.is_bridge());
  CHECK(gpu.addr.str() == "0000:01:00.0");
  CHECK(gpu.vendor == 0x10de);
  CHECK(gpu.device == 0x2484);
  CHECK(gpu.is_display());
  CHECK(gpu.class_name == "VGA compatible controller");
  CHECK(gpu.driver == "nvidia");
  CHECK(gpu.iommu_group == 1);
  CHECK(gpu.boot_vga == true);
  CHECK(gpu.reset_methods == std::vector<std::string>{"flr", "bus"});
  REQUIRE(gpu.parent);
  CHECK(gpu.parent->str() == "0000:00:01.0");
  CHECK(audio.is_audio());
  CHECK(audio.driver == "snd_hda_intel");
  CHECK_FALSE(audio.boot_vga);
  CHECK(group_members(fx.root(), 1) == std::vector<PciAddress>{gpu.addr, audio.addr});
}

TEST_CASE("a GPU on a root bus has no parent, and a 5.10 kernel has no reset_method") {
  test::Fixture fx;
  test::Fixture::gpu_on_root_bus(fx);
  fx.write_file("/sys/devices/pci0000:00/0000:00:02.0/driver_override", "vfio-pci\n");
  std::filesystem::remove(fx.dir() + "/sys/devices/pci0000:00/0000:00:02.0/reset_method");
  auto d = read_device(fx.root(), PciAddress{0, 0, 2, 0});
  REQUIRE(d);
  CHECK_FALSE(d->parent);
  CHECK_FALSE(d->reset_methods);
  CHECK(d->driver_override == "vfio-pci");
}

TEST_CASE("a missing device is an error that names it") {
  test::Fixture fx;
  auto d = read_device(fx.root(), PciAddress{0, 5, 0, 0});
  REQUIRE_FALSE(d);
  CHECK(d.error().subject == "0000:05:00.0");
  CHECK(d.error().err == ENODEV);
}

TEST_CASE("config space is read through libpci under the root") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  auto c = read_config(fx.root(), PciAddress{0, 1, 0, 0}, 64);
  REQUIRE(c);
  CHECK((*c)[0] == 0xde);
  CHECK((*c)[1] == 0x10);
  CHECK((*c)[0x0b] == 0x03);
  CHECK(((*c)[0x0e] & 0x80) == 0x80);  // multifunction: the audio function shares the slot
}

TEST_CASE("the benchmark shape has 256 devices") {
  test::Fixture fx;
  test::Fixture::many_devices(fx, 256);
  auto all = scan_devices(fx.root());
  REQUIRE(all);
  CHECK(all->size() == 256);
}

TEST_CASE("a broken tree is an error, not an exit from inside libpci") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  std::filesystem::remove(fx.dir() + "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/vendor");
  auto all = scan_devices(fx.root());
  REQUIRE_FALSE(all);
  CHECK(all.error().message.find("libpci") != std::string::npos);
}

TEST_CASE("an iommu_group link no kernel would make is no group, never group -1") {
  for (const std::string name : {"-1", "99999999999999999999", "4294967295", "1x"}) {
    CAPTURE(name);
    test::Fixture fx;
    test::Fixture::gpu_with_audio(fx);
    const std::string link = fx.root().path("/sys/bus/pci/devices/0000:01:00.0/iommu_group");
    std::filesystem::remove(link);
    std::filesystem::create_symlink("../../../../kernel/iommu_groups/" + name, link);
    auto all = scan_devices(fx.root());
    REQUIRE(all);
    CHECK_FALSE((*all)[1].iommu_group);
    CHECK((*all)[2].iommu_group == 1);
  }
}

TEST_CASE("a function whose directory vanished is left out of a scan; the others are read") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  const std::string link = fx.dir() + "/sys/bus/pci/devices/0000:01:00.1";
  std::filesystem::remove_all(std::filesystem::canonical(link));
  REQUIRE(std::filesystem::is_symlink(link));
  auto all = scan_devices(fx.root());
  REQUIRE_MESSAGE(all, (all ? "" : all.error().describe()));
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].addr.str() == "0000:00:01.0");
  CHECK((*all)[1].addr.str() == "0000:01:00.0");
  CHECK((*all)[1].driver == "nvidia");
  auto near = scan_near(fx.root(), {*parse_device_spec("01:00.0")});
  REQUIRE(near);
  CHECK(near->size() == 1);
  auto gone = read_device(fx.root(), *parse_sysfs_name("0000:01:00.1"));
  REQUIRE_FALSE(gone);
  CHECK(gone.error().message.find("no such PCI device") != std::string::npos);
}

TEST_CASE("vendor and device names come from the tree's pci.ids") {
  test::Fixture fx;
  test::Fixture::group_with_unrelated(fx);
  CHECK(pci_ids_path(fx.root()) == fx.dir() + "/usr/share/misc/pci.ids");
  auto all = scan_devices(fx.root());
  REQUIRE(all);
  std::map<std::string, const Device*> by;
  for (const auto& d : *all) by[d.addr.str()] = &d;
  const Device& gpu = *by.at("0000:01:00.0");
  CHECK(gpu.vendor_name == "NVIDIA Corporation");
  CHECK(gpu.device_name == "GA104 [GeForce RTX 3070]");
  CHECK(name_string(gpu) == "NVIDIA Corporation GA104 [GeForce RTX 3070]");
  const Device& audio = *by.at("0000:01:00.1");
  CHECK(audio.device_name == "GA104 High Definition Audio Controller");
  CHECK(audio.class_name == "Audio device");
  // 10de:1ada has no device line: the vendor alone, as lspci shows it.
  const Device& usb = *by.at("0000:01:00.2");
  CHECK(usb.vendor_name == "NVIDIA Corporation");
  CHECK(usb.device_name.empty());
  CHECK(name_string(usb) == "NVIDIA Corporation Device 1ada");
  CHECK(usb.class_name == "USB controller");
  const Device& nic = *by.at("0000:02:00.0");
  CHECK(nic.vendor_name == "Intel Corporation");
  CHECK(nic.device_name == "82574L Gigabit Network Connection");
  CHECK(by.at("0000:00:01.0")->device_name == "200 Series PCH PCI Express Root Port");
  CHECK(by.at("0000:00:01.0")->class_name == "PCI bridge");
}

TEST_CASE("without the tree's pci.ids there are no names, never the host's") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  std::filesystem::remove(fx.dir() + "/usr/share/misc/pci.ids");
  auto all = scan_devices(fx.root());
  REQUIRE(all);
  for (const auto& d : *all) {
    CHECK(d.vendor_name.empty());
    CHECK(d.device_name.empty());
    CHECK(d.class_name.empty());
    CHECK(name_string(d).empty());
  }
}

TEST_CASE("a scan without names reads no pci.ids; unknown IDs and odd lines are skipped") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  auto bare = scan_devices(fx.root(), ScanOptions{.names = false});
  REQUIRE(bare);
  CHECK((*bare)[1].vendor_name.empty());
  CHECK((*bare)[1].class_name.empty());
  // CRLF line ends, a truncated line and a vendor whose device list holds
  // the same ID under another vendor: only 10de's 2484 names the GPU.
  fx.write_file("/usr/share/misc/pci.ids",
                "# ids\r\n1002  AMD\r\n\t2484  not this one\r\n10de  NVIDIA Corporation\r\n"
                "\t2484  GA104\r\n\t\t10de 2484  subsystem\r\nzz\n\t22\nC 03  Display controller\n"
                "\t00  VGA compatible controller\n\t\t00  VGA controller\nC 04  Multimedia");
  auto all = scan_devices(fx.root());
  REQUIRE(all);
  const Device& gpu = (*all)[1];
  CHECK(gpu.vendor_name == "NVIDIA Corporation");
  CHECK(gpu.device_name == "GA104");
  CHECK(gpu.class_name == "VGA compatible controller");
  // 0403 has no subclass line: the base class name.
  CHECK((*all)[2].class_name == "Multimedia");
  CHECK((*all)[2].device_name.empty());
}

TEST_CASE("a missing device has the kit's one wording") {
  test::Fixture fx;
  auto d = read_device(fx.root(), PciAddress{0, 5, 0, 0});
  REQUIRE_FALSE(d);
  CHECK(d.error().message == "no such PCI device; list devices with 'pt-bind list'");
  CHECK(no_such_device("'05:00'").error().describe().starts_with(
      "'05:00': no such PCI device; list devices with 'pt-bind list'"));
}
