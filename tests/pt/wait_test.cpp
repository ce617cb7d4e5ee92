#include "pt/wait.hpp"

#include <doctest/doctest.h>

#include <thread>
#include <vector>

using namespace pt;
using namespace std::chrono_literals;

TEST_CASE("WaitReport: a start, ticks no more often than kWaitTick, one end") {
  std::vector<Wait> seen;
  WaitObserver obs = [&](const Wait& w) { seen.push_back(w); };
  {
    WaitReport r(obs, "the thing", "/sys/x", 2000ms);
    for (int i = 0; i < 70; ++i) {
      r.tick();
      std::this_thread::sleep_for(10ms);
    }
    r.end(true);
    r.end(false);  // a second end is not reported
  }                // nor is the destructor's
  REQUIRE(seen.size() >= 3);
  CHECK(seen.front().phase == Wait::Phase::start);
  CHECK(seen.front().elapsed == 0ms);
  CHECK(seen.front().what == "the thing");
  CHECK(seen.front().subject == "/sys/x");
  CHECK(seen.front().limit == 2000ms);
  CHECK(seen.back().phase == Wait::Phase::end);
  CHECK(seen.back().ok);
  CHECK(seen.back().elapsed >= 700ms);
  // ~700 ms of ticks every 10 ms: two reports, not seventy.
  CHECK(seen.size() <= 5);
  for (size_t i = 1; i < seen.size(); ++i) {
    CHECK(seen[i].elapsed > seen[i - 1].elapsed);
    if (i + 1 < seen.size()) {
      CHECK(seen[i].phase == Wait::Phase::tick);
      CHECK(seen[i].elapsed - seen[i - 1].elapsed >= kWaitTick);
    }
  }
}

TEST_CASE("WaitReport: destroyed unended, it ends not ok; without an observer, nothing") {
  std::vector<Wait> seen;
  WaitObserver obs = [&](const Wait& w) { seen.push_back(w); };
  { WaitReport r(obs, "x", "y", 0ms); }
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].phase == Wait::Phase::end);
  CHECK_FALSE(seen[1].ok);
  WaitObserver none;
  WaitReport r(none, "x", "y", 0ms);
  r.tick();
  r.end(true);  // nothing to call: must not crash
}
