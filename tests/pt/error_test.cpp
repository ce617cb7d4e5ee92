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

TEST_CASE("control characters in a subject or message are shown, not sent to the terminal") {
  Error e{0, "pid 7 (\x1b[31mx\x7f)", "holds it\r\nnext line", Exit::failed};
  CHECK(e.describe() == "pid 7 (\\x1b[31mx\\x7f): holds it\\x0d\nnext line");
  CHECK(printable("a\tb\n") == "a\\x09b\\x0a");
  CHECK(printable("a\tb\n", true) == "a\\x09b\n");
  CHECK(printable("\xff\xfe") == "\xff\xfe");  // bytes, not control characters: as they are
}
