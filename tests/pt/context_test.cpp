#include "pt/context.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

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

TEST_CASE("wait_until tells its observer of a wait that does not hold at once, and of its end") {
  using namespace std::chrono_literals;
  std::vector<pt::Wait> seen;
  pt::WaitObserver obs = [&](const pt::Wait& w) { seen.push_back(w); };
  CHECK(pt::wait_until([] { return true; }, 1000ms, obs, "nothing", "x"));
  CHECK(seen.empty());  // over at once: not a wait

  const auto until = std::chrono::steady_clock::now() + 600ms;
  CHECK(pt::wait_until([&] { return std::chrono::steady_clock::now() >= until; }, 5000ms, obs,
                       "the clock", "x"));
  REQUIRE(seen.size() >= 3);
  CHECK(seen.front().phase == pt::Wait::Phase::start);
  CHECK(seen.front().what == "the clock");
  CHECK(seen.front().limit == 5000ms);
  CHECK(seen[1].phase == pt::Wait::Phase::tick);
  CHECK(seen.back().phase == pt::Wait::Phase::end);
  CHECK(seen.back().ok);
  CHECK(seen.back().elapsed >= 550ms);
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i].elapsed > seen[i - 1].elapsed);

  seen.clear();
  CHECK_FALSE(pt::wait_until([] { return false; }, 300ms, obs, "never", "x"));
  REQUIRE(seen.size() >= 2);
  CHECK(seen.back().phase == pt::Wait::Phase::end);
  CHECK_FALSE(seen.back().ok);
  CHECK(seen.back().elapsed >= 300ms);
}
