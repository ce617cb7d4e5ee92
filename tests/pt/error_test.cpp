#include "pt/error.hpp"

#include <doctest/doctest.h>

#include <cerrno>

using namespace pt;

TEST_CASE("an error's errno text belongs to its first line") {
  Error e{EIO, "/sys/x", "writing failed.\nState now:\n  a", Exit::not_rolled_back};
  CHECK(e.describe() == "/sys/x: writing failed. (Input/output error)\nState now:\n  a");
}

TEST_CASE("an error without errno is its subject and message") {
  Error e{0, "'zz:00.0'", "not a PCI device", Exit::usage};
  CHECK(e.describe() == "'zz:00.0': not a PCI device");
}
