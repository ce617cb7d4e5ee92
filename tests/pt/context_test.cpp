#include "pt/context.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

using namespace pt;
using namespace std::chrono_literals;

TEST_CASE("a duration is finite, positive (or 0 where allowed) and at most a day") {
  CHECK(duration(10, "--timeout", false).value() == 10000ms);
  CHECK(duration(2.5, "--timeout", false).value() == 2500ms);
  CHECK(duration(0.0001, "--timeout", false).value() == 1ms);  // under 1 ms waits 1 ms, not 0
  CHECK(duration(86400, "--timeout", false).value() == 86400000ms);
  CHECK(duration(0, "--lock-timeout", true).value() == 0ms);
  for (double bad :
       {std::nan(""), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity(), -1.0, 0.0, 1e300, 9.3e15, 9.2e15, 86400.5}) {
    CAPTURE(bad);
    auto r = duration(bad, "--timeout", false);
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::usage);
    CHECK(r.error().subject == "--timeout");
    CHECK(r.error().message.find("give a number of seconds from 0.001 to 86400") !=
          std::string::npos);
    CHECK(r.error().message.size() < 120);  // no 309-digit bound
  }
  CHECK(duration(1e300, "--timeout", false).error().message.rfind("'1e+300' is out of range", 0) ==
        0);
  CHECK(duration(std::nan(""), "x", true).error().message.rfind("'nan' is not a number", 0) == 0);
  CHECK(duration(-1, "--lock-timeout", true).error().message ==
        "'-1' is out of range; give a number of seconds from 0 to 86400");
}
