#include "pt/syslog.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include "fixture.hpp"
#include "log_sink.hpp"

using namespace pt;
using pt::test::Fixture;
using pt::test::LogSink;

TEST_CASE(
    "syslog::send: one datagram to ROOT's /dev/log, priority daemon, control characters as "
    "spaces") {
  Fixture fx;
  LogSink sink(fx);
  syslog::send(fx.root(), syslog::Level::info, "pt", "one\nline\twith\x1b[1mcontrol");
  syslog::send(fx.root(), syslog::Level::warning, "pt-bind", "failed");
  const auto recs = sink.drain();
  CHECK(recs ==
        std::vector<std::string>{"<30>pt: one line with [1mcontrol", "<28>pt-bind: failed"});
  // The pid is the sender's, as syslog(3) writes it.
  syslog::send(fx.root(), syslog::Level::info, "pt", "x");
  char buf[256];
  ssize_t n = ::recv(sink.fd(), buf, sizeof buf, 0);
  REQUIRE(n > 0);
  CHECK(std::string(buf, size_t(n)) == "<30>pt[" + std::to_string(::getpid()) + "]: x");
}

TEST_CASE("syslog::send: no logger at ROOT/dev/log loses the line and nothing else") {
  Fixture fx;
  const auto before = fx.snapshot();
  syslog::send(fx.root(), syslog::Level::info, "pt", "nobody listens");
  CHECK(fx.snapshot() == before);
}
