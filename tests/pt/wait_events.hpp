// The shape every wait that outlasts its limit reports to Context::on_wait:
// one start naming WHAT on SUBJECT with LIMIT, ticks with rising elapsed
// times, and a failed end no earlier than the limit.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "pt/wait.hpp"

namespace pt::test {

inline void check_timed_out_wait(const std::vector<Wait>& seen, const std::string& what,
                                 const std::string& subject, std::chrono::milliseconds limit,
                                 size_t at_least) {
  REQUIRE(seen.size() >= at_least);
  CHECK(seen.front().phase == Wait::Phase::start);
  CHECK(seen.front().what == what);
  CHECK(seen.front().subject == subject);
  CHECK(seen.front().limit == limit);
  for (size_t i = 1; i + 1 < seen.size(); ++i) CHECK(seen[i].phase == Wait::Phase::tick);
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i].elapsed > seen[i - 1].elapsed);
  CHECK(seen.back().phase == Wait::Phase::end);
  CHECK_FALSE(seen.back().ok);
  CHECK(seen.back().elapsed >= limit);
}

}  // namespace pt::test
