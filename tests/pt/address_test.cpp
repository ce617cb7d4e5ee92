#include "pt/address.hpp"

#include <doctest/doctest.h>

using namespace pt;

TEST_CASE("device specs accept the three documented forms") {
  auto full = parse_device_spec("0000:3b:00.0");
  REQUIRE(full);
  CHECK(full->domain == 0);
  CHECK(full->bus == 0x3b);
  CHECK(full->dev == 0);
  CHECK(full->func == 0);

  auto short_form = parse_device_spec("3b:00.1");
  REQUIRE(short_form);
  CHECK(short_form->bus == 0x3b);
  CHECK(short_form->func == 1);

  auto slot = parse_device_spec("3b:00");
  REQUIRE(slot);
  CHECK_FALSE(slot->func.has_value());
  CHECK(slot->matches(PciAddress{0, 0x3b, 0, 0}));
  CHECK(slot->matches(PciAddress{0, 0x3b, 0, 7}));
  CHECK_FALSE(slot->matches(PciAddress{0, 0x3b, 1, 0}));
  CHECK_FALSE(slot->matches(PciAddress{1, 0x3b, 0, 0}));

  auto vmd = parse_device_spec("10000:e1:00.0");
  REQUIRE(vmd);
  CHECK(vmd->domain == 0x10000);
}

TEST_CASE("malformed device specs are usage errors that quote the input") {
  for (const char* bad : {"zz:00.0", "1:2:3:4", "3b:20.0", "3b:00.8", "3b", "", "3b:00.", "3b:00.0x", "100:00.0",
                          "0000:3b:00:0", "-1:00.0"}) {
    CAPTURE(bad);
    auto r = parse_device_spec(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::usage);
    CHECK(r.error().subject == "'" + std::string(bad) + "'");
    CHECK(r.error().message.find("0000:3b:00.0") != std::string::npos);
  }
}

TEST_CASE("sysfs names need the full form") {
  CHECK(parse_sysfs_name("0000:01:00.1") == PciAddress{0, 1, 0, 1});
  CHECK_FALSE(parse_sysfs_name("01:00.1"));
  CHECK_FALSE(parse_sysfs_name("pci0000:00"));
  CHECK(PciAddress{0, 0x3b, 0x1f, 7}.str() == "0000:3b:1f.7");
}
