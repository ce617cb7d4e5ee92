#include "pt/sysfs.hpp"

#include <doctest/doctest.h>

#include "fixture.hpp"

using namespace pt;

TEST_CASE("reads strip the trailing newline and report missing files") {
  test::Fixture fx;
  fx.write_file("/sys/x", "flr pm bus\n");
  CHECK(read_file(fx.dir() + "/sys/x").value() == "flr pm bus");
  auto missing = read_file(fx.dir() + "/sys/none");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().err == ENOENT);
  CHECK(missing.error().subject == fx.dir() + "/sys/none");
}

TEST_CASE("values are shown quoted with newlines visible") {
  CHECK(show_value("\n") == "\"\\n\"");
  CHECK(show_value("vfio-pci") == "\"vfio-pci\"");
}
