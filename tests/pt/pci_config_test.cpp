#include "pt/pci_config.hpp"

#include <doctest/doctest.h>

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
