#include "pt/pci_config.hpp"

#include <doctest/doctest.h>

#include <fstream>

#include "fixture.hpp"

using namespace pt;

namespace {
ConfigSpace config_of(const test::FakeCaps& caps, bool bridge_too = false) {
  test::Fixture fx;
  fx.add_driver("vfio-pci", "vfio_pci");
  fx.add_bridge("0000:00:01.0");
  fx.add_device(test::FakeDevice{.bdf = "0000:01:00.0", .parent = "0000:00:01.0", .driver = "vfio-pci", .group = 1,
                                 .caps = caps});
  auto c = load_config(fx.root(), bridge_too ? PciAddress{0, 0, 1, 0} : PciAddress{0, 1, 0, 0});
  REQUIRE(c);
  return *c;
}
}  // namespace

TEST_CASE("capabilities are found by walking the list") {
  auto c = config_of({});
  CHECK(c.present());
  CHECK(c.vendor() == 0x10de);
  CHECK(c.find(reg::kCapPm) == 0x40);
  CHECK(c.find(reg::kCapExp) == 0x50);
  CHECK_FALSE(c.find(reg::kCapAf));
  CHECK(c.u32(reg::kBar0) == 0xf0000000u);
}

TEST_CASE("FLR, AF FLR, NoSoftRst and power state are decoded") {
  auto flr = config_of({.flr = true});
  CHECK(flr.flr());
  CHECK_FALSE(flr.af_flr());
  CHECK(flr.no_soft_reset() == false);
  CHECK(flr.power_state() == 0);

  auto plain = config_of({.no_soft_reset = true, .flr = false, .af = true, .af_flr = true});
  CHECK_FALSE(plain.flr());
  CHECK(plain.has_af());
  CHECK(plain.af_flr());
  CHECK(plain.no_soft_reset() == true);

  auto conventional = config_of({.pm = false, .pcie = false});
  CHECK_FALSE(conventional.is_pcie());
  CHECK_FALSE(conventional.no_soft_reset());
  CHECK_FALSE(conventional.find(reg::kCapPm));

  auto d3 = config_of({.power_state = 3});
  CHECK(d3.power_state() == 3);
}

TEST_CASE("a root port reports its link") {
  auto port = config_of({}, true);
  CHECK(port.header_type() == 1);
  CHECK(port.link_active() == true);
  CHECK_FALSE(config_of({}).link_active());  // an endpoint cannot report it
}

TEST_CASE("a looping capability list ends") {
  std::vector<uint8_t> b(256, 0);
  b[0x06] = 0x10;
  b[0x34] = 0x40;
  b[0x40] = 0x05;
  b[0x41] = 0x40;  // points at itself
  ConfigSpace c(b);
  CHECK_FALSE(c.find(reg::kCapExp));
}

namespace {
// A function at 01:00.0 whose config file holds RAW, below root port 00:01.0.
ConfigSpace config_raw(const std::string& raw) {
  test::Fixture fx;
  fx.add_bridge("0000:00:01.0");
  fx.add_device(
      test::FakeDevice{.bdf = "0000:01:00.0", .parent = "0000:00:01.0", .caps = {.raw = raw}});
  auto c = load_config(fx.root(), PciAddress{0, 1, 0, 0}, 4096);
  REQUIRE(c);
  return *c;
}
}  // namespace

TEST_CASE("a real GPU's 4096 bytes (Radeon R9 Fury): PM, PCIe, ATS, ARI, no ACS") {
  auto c = config_raw(test::radeon_fiji_config());
  CHECK(c.size() == 4096);
  CHECK(c.vendor() == 0x1002);
  CHECK(c.device() == 0x7300);
  CHECK_FALSE(c.caps_unreadable());
  CHECK_FALSE(c.ext_caps_unreadable());
  CHECK(c.find(reg::kCapPm) == 0x50);
  CHECK(c.find(reg::kCapExp) == 0x58);
  CHECK(c.port_type() == 1);  // legacy endpoint, as lspci decodes it
  CHECK_FALSE(c.flr());
  CHECK(c.no_soft_reset() == true);
  CHECK(c.find_ext(reg::kExtCapAts) == 0x2b0);
  CHECK(c.find_ext(reg::kExtCapAri) == 0x328);
  auto iso = c.isolation();
  CHECK_FALSE(iso.acs);
  CHECK(iso.ats);
  CHECK(iso.ats_enabled);
  CHECK(iso.ari);
}

TEST_CASE("the same GPU read short: 64 bytes decode no capability, 256 no extended one") {
  const std::string full = test::radeon_fiji_config();
  auto header = config_raw(full.substr(0, 64));
  CHECK(header.size() == 64);
  CHECK(header.vendor() == 0x1002);
  CHECK(header.caps_unreadable() ==
        "capabilities unreadable: config space is 64 bytes (run as root)");
  CHECK(header.ext_caps_unreadable() == header.caps_unreadable());

  auto standard = config_raw(full.substr(0, 256));
  CHECK(standard.size() == 256);
  CHECK_FALSE(standard.caps_unreadable());
  CHECK(standard.is_pcie());
  CHECK(standard.no_soft_reset() == true);
  CHECK(standard.ext_caps_unreadable() ==
        "extended capabilities unreadable: config space is 256 bytes (no extended config access)");
  CHECK_FALSE(standard.find_ext(reg::kExtCapAts));
}

TEST_CASE("config space of all ones is a function powered off or gone, not decoded") {
  auto c = config_raw(std::string(4096, '\xff'));
  CHECK_FALSE(c.present());
  CHECK(c.caps_unreadable() == "config space reads all ones: the device is powered off or gone");
  CHECK(c.ext_caps_unreadable() == c.caps_unreadable());
}

TEST_CASE("an SR-IOV VF's IDs read all ones by the specification: still present, still decoded") {
  // A VF of the Radeon's config space: vendor and device ID 0xffff, the
  // command, status and class registers and the capabilities as they are.
  std::string vf = test::radeon_fiji_config();
  vf[0] = vf[1] = vf[2] = vf[3] = '\xff';
  auto c = config_raw(vf);
  CHECK(c.vendor() == 0xffff);
  CHECK(c.present());
  CHECK_FALSE(c.caps_unreadable());
  CHECK(c.is_pcie());
  CHECK(c.find_ext(reg::kExtCapAts));
  // The IDs and the command/status register all ones, the class not: still an answer.
  std::string half(4096, '\xff');
  half[8] = 0x00;
  CHECK(config_raw(half).present());
}

TEST_CASE("fewer than 64 bytes is an error, not a config space") {
  test::Fixture fx;
  fx.add_device(test::FakeDevice{.bdf = "0000:00:02.0", .caps = {.raw = std::string(32, '\0')}});
  auto c = load_config(fx.root(), PciAddress{0, 0, 2, 0}, 4096);
  REQUIRE_FALSE(c);
  CHECK(c.error().err == EIO);
  CHECK(c.error().subject == "0000:00:02.0");
  CHECK(c.error().message ==
        "config space unreadable: not even its 64-byte header could be read (libpci: cannot read "
        "config "
        "space); check that the device is still there with pt-bind list");
}

TEST_CASE("a conventional PCI function has no extended capabilities to miss") {
  auto c = config_raw(std::string(256, '\0').replace(0, 2, "\x86\x80"));
  CHECK_FALSE(c.caps_unreadable());
  CHECK_FALSE(c.ext_caps_unreadable());
  CHECK_FALSE(c.isolation().acs);
}

TEST_CASE("ACS bits are named in lspci's order") {
  CHECK(acs_bits(0x001d) == "SV+ TB- RR+ CR+ UF+ EC- DT-");
  CHECK(acs_bits(0x007f) == "SV+ TB+ RR+ CR+ UF+ EC+ DT+");
}

TEST_CASE("ACS on the path to the root: the kernel's walk over the sysfs parents") {
  auto gaps_for = [](const std::optional<test::FakeCaps>& root_port,
                     const std::optional<test::FakeCaps>& down) {
    test::Fixture fx;
    fx.add_bridge("0000:00:01.0", "", root_port);
    fx.add_bridge("0000:01:00.0", "0000:00:01.0", down);
    fx.add_device(test::FakeDevice{.bdf = "0000:02:00.0", .parent = "0000:01:00.0"});
    return acs_gaps(fx.root(), PciAddress{0, 2, 0, 0});
  };
  using Caps = std::optional<test::FakeCaps>;
  // The fixture's default ports have SV RR CR UF on.
  CHECK(gaps_for(std::nullopt, std::nullopt).empty());

  auto none = gaps_for(test::FakeCaps{}, std::nullopt);
  REQUIRE(none.size() == 1);
  CHECK(none[0].bridge == PciAddress{0, 0, 1, 0});
  CHECK(none[0].problem == "root port without ACS");
  CHECK_FALSE(none[0].unknown);
  CHECK(acs_gap_warning(none[0]) ==
        "0000:00:01.0 is a root port without ACS: the functions below it can reach each other "
        "without the IOMMU, which is why the IOMMU group is large (unless a kernel quirk vouches "
        "for it)");

  // Request and completion redirect and upstream forwarding off on the switch.
  auto off = gaps_for(std::nullopt,
                      Caps(test::FakeCaps{.acs = std::pair<uint16_t, uint16_t>{0x001f, 0x0001}}));
  REQUIRE(off.size() == 1);
  CHECK(off[0].bridge == PciAddress{0, 1, 0, 0});
  CHECK(off[0].problem == "downstream port with ACS RR- CR- UF- (disabled)");

  // A control the port does not implement is hard-wired: no gap.
  CHECK(gaps_for(Caps(test::FakeCaps{.acs = std::pair<uint16_t, uint16_t>{0x0001, 0x0001}}),
                 std::nullopt)
            .empty());

  // Both ports bad: both named, nearest first.
  auto both = gaps_for(test::FakeCaps{}, test::FakeCaps{});
  REQUIRE(both.size() == 2);
  CHECK(both[0].bridge == PciAddress{0, 1, 0, 0});
  CHECK(both[1].bridge == PciAddress{0, 0, 1, 0});
}

TEST_CASE("ACS of a bridge read short is unknown, not missing") {
  test::Fixture fx;
  fx.add_bridge("0000:00:01.0");
  fx.add_device(test::FakeDevice{.bdf = "0000:01:00.0", .parent = "0000:00:01.0"});
  // The bridge's generated space cut to 256 and to 64 bytes.
  const std::string path = fx.dir() + "/sys/bus/pci/devices/0000:00:01.0/config";
  std::string full = read_file(path).value();
  for (size_t size : {size_t(256), size_t(64)}) {
    {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f << full.substr(0, size);
    }
    auto gaps = acs_gaps(fx.root(), PciAddress{0, 1, 0, 0});
    REQUIRE(gaps.size() == 1);
    CHECK(gaps[0].unknown);
    CHECK(gaps[0].problem ==
          (size == 256
               ? "ACS unknown: extended capabilities unreadable: config space is 256 bytes (no "
                 "extended "
                 "config access)"
               : "ACS unknown: capabilities unreadable: config space is 64 bytes (run as root)"));
    CHECK(gaps[0].problem.find("no ACS") == std::string::npos);
    CHECK(acs_gap_warning(gaps[0]) ==
          "0000:00:01.0: " + gaps[0].problem);  // no claim about the group
  }
}

TEST_CASE("a conventional PCI bridge on the path shares its bus") {
  test::Fixture fx;
  std::string bridge(4096, '\0');
  bridge.replace(0, 4, "\x86\x80\x4e\x24", 4);
  bridge[0x0b] = 0x06;
  bridge[0x0a] = 0x04;
  bridge[0x0e] = 0x01;
  fx.add_bridge("0000:00:1e.0", "", test::FakeCaps{.raw = bridge});
  fx.add_device(
      test::FakeDevice{.bdf = "0000:05:00.0", .parent = "0000:00:1e.0", .caps = {.pcie = false}});
  auto gaps = acs_gaps(fx.root(), PciAddress{0, 5, 0, 0});
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].problem == "conventional PCI bridge, whose functions share one bus");
}
