#include "pt/lock.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "fixture.hpp"

using namespace pt;
using namespace std::chrono_literals;

namespace {
// Holds the lock in a child process for HOLD, signalling through a pipe once held.
pid_t hold_lock_in_child(const Root& root, std::chrono::milliseconds hold) {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    auto lock = Lock::acquire(root, 1000ms);
    char c = lock ? 1 : 0;
    (void)!::write(p[1], &c, 1);
    std::this_thread::sleep_for(hold);
    ::_exit(lock ? 0 : 1);
  }
  char c = 0;
  REQUIRE(::read(p[0], &c, 1) == 1);
  REQUIRE(c == 1);
  ::close(p[0]);
  ::close(p[1]);
  return pid;
}
}  // namespace

TEST_CASE("a second process waits for the lock, then gives up with exit 75") {
  test::Fixture fx;
  pid_t holder = hold_lock_in_child(fx.root(), 400ms);
  auto start = std::chrono::steady_clock::now();
  auto busy = Lock::acquire(fx.root(), 100ms);
  REQUIRE_FALSE(busy);
  CHECK(busy.error().exit == Exit::busy);
  CHECK(std::chrono::steady_clock::now() - start >= 100ms);
  auto waited = Lock::acquire(fx.root(), 5000ms);
  CHECK(waited);
  CHECK(std::chrono::steady_clock::now() - start >= 350ms);
  int status = 0;
  ::waitpid(holder, &status, 0);
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("the lock is released when its holder dies") {
  test::Fixture fx;
  pid_t holder = hold_lock_in_child(fx.root(), 10s);
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  CHECK(Lock::acquire(fx.root(), 200ms));
}
