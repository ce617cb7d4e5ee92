#include "pt/lock.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "fixture.hpp"
#include "pt/journal.hpp"
#include "wait_events.hpp"

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

// ---- PT_LOCK_FD: a caller holds the lock across a sequence of tools.
namespace {

// Sets PT_LOCK_FD for the scope of a test; the tests run in one process.
struct LockFdEnv {
  explicit LockFdEnv(const std::string& value) { ::setenv(kLockFdEnv, value.c_str(), 1); }
  ~LockFdEnv() { ::unsetenv(kLockFdEnv); }
};

// What a hook does: open /run/pt/lock (no O_CLOEXEC: it is passed down) and flock it.
int caller_lock(const test::Fixture& fx, bool take = true) {
  REQUIRE(check_state_dir(fx.root(), true));
  int fd = ::open(fx.root().path(kLockPath).c_str(), O_RDWR | O_CREAT, 0600);
  REQUIRE(fd >= 0);
  if (take) REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  return fd;
}

// Whether a process that does not inherit the lock can take it now.
bool free_for_others(const Root& root) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::unsetenv(kLockFdEnv);
    ::_exit(Lock::acquire(root, 0ms) ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

TEST_CASE("PT_LOCK_FD: a tool runs under the caller's lock and leaves it held") {
  test::Fixture fx;
  int fd = caller_lock(fx);
  LockFdEnv env(std::to_string(fd));
  REQUIRE_FALSE(free_for_others(fx.root()));
  {
    auto start = std::chrono::steady_clock::now();
    auto lock = Lock::acquire(fx.root(), 5000ms);
    REQUIRE(lock);
    CHECK(lock->inherited());
    CHECK(std::chrono::steady_clock::now() - start < 1000ms);  // no wait for its own lock
  }
  // The tool is done; the caller still holds the lock and its descriptor.
  CHECK(::fcntl(fd, F_GETFD) >= 0);
  CHECK_FALSE(free_for_others(fx.root()));
  // Each tool of the sequence gets it again, as a child process would.
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(Lock::acquire(fx.root(), 0ms) ? 0 : 1);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(free_for_others(fx.root()));
  ::close(fd);
  CHECK(free_for_others(fx.root()));
}

TEST_CASE("PT_LOCK_FD: an empty value is unset; the tool takes its own lock") {
  test::Fixture fx;
  LockFdEnv env("");
  auto lock = Lock::acquire(fx.root(), 100ms);
  REQUIRE(lock);
  CHECK_FALSE(lock->inherited());
  CHECK_FALSE(free_for_others(fx.root()));
}

TEST_CASE("PT_LOCK_FD: malformed values are usage errors naming the variable") {
  test::Fixture fx;
  for (const char* v : {"abc", "-1", "3x", " 3", "99999999999", "0x3"}) {
    CAPTURE(v);
    LockFdEnv env(v);
    auto lock = Lock::acquire(fx.root(), 100ms);
    REQUIRE_FALSE(lock);
    CHECK(lock.error().exit == Exit::usage);
    CHECK(lock.error().subject == std::string("PT_LOCK_FD=") + v);
  }
  CHECK_FALSE(fx.exists(kLockPath));  // refused before anything was created
}

TEST_CASE("PT_LOCK_FD: a descriptor that is not open is refused") {
  test::Fixture fx;
  int fd = caller_lock(fx);
  ::close(fd);  // the caller forgot to keep it open across exec
  LockFdEnv env(std::to_string(fd));
  auto lock = Lock::acquire(fx.root(), 100ms);
  REQUIRE_FALSE(lock);
  CHECK(lock.error().exit == Exit::failed);
  CHECK(lock.error().err == EBADF);
  CHECK(lock.error().message.find("not an open descriptor") != std::string::npos);
}

TEST_CASE("PT_LOCK_FD: a descriptor on another file is refused, and its flock does not count") {
  test::Fixture fx;
  REQUIRE(check_state_dir(fx.root(), true));
  fx.write_file("/run/pt/other", "");
  int fd = ::open(fx.root().path("/run/pt/other").c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  fx.write_file(kLockPath, "");
  LockFdEnv env(std::to_string(fd));
  auto lock = Lock::acquire(fx.root(), 100ms);
  REQUIRE_FALSE(lock);
  CHECK(lock.error().message.find("is not open on /run/pt/lock") != std::string::npos);
  CHECK(free_for_others(fx.root()));
  ::close(fd);
}

TEST_CASE("PT_LOCK_FD: a replaced lock file is refused") {
  test::Fixture fx;
  int fd = caller_lock(fx);
  // Someone removed and recreated /run/pt/lock: the caller's flock guards nothing now.
  REQUIRE(::unlink(fx.root().path(kLockPath).c_str()) == 0);
  fx.write_file(kLockPath, "");
  LockFdEnv env(std::to_string(fd));
  auto lock = Lock::acquire(fx.root(), 100ms);
  REQUIRE_FALSE(lock);
  CHECK(lock.error().message.find("replaced") != std::string::npos);
  ::close(fd);
}

TEST_CASE("PT_LOCK_FD: a symbolic link in place of the lock file is refused") {
  test::Fixture fx;
  int fd = caller_lock(fx);
  const std::string real = fx.root().path(kLockPath);
  REQUIRE(::rename(real.c_str(), (real + ".real").c_str()) == 0);
  REQUIRE(::symlink("lock.real", real.c_str()) == 0);
  LockFdEnv env(std::to_string(fd));
  auto lock = Lock::acquire(fx.root(), 100ms);
  REQUIRE_FALSE(lock);
  CHECK(lock.error().subject == kLockPath);
  CHECK(lock.error().message.find("not a regular file") != std::string::npos);
  ::close(fd);
}

TEST_CASE("PT_LOCK_FD: a descriptor on the lock file that does not hold it is refused") {
  test::Fixture fx;
  int fd = caller_lock(fx, false);
  LockFdEnv env(std::to_string(fd));
  auto lock = Lock::acquire(fx.root(), 100ms);
  REQUIRE_FALSE(lock);
  CHECK(lock.error().message.find("does not hold its lock") != std::string::npos);
  // The check took nothing: the lock is free, and the descriptor still holds nothing.
  CHECK(free_for_others(fx.root()));
  int probe = ::open(fx.root().path(kLockPath).c_str(), O_RDONLY);
  CHECK(::flock(probe, LOCK_EX | LOCK_NB) == 0);
  ::close(probe);
  ::close(fd);
}

TEST_CASE("PT_LOCK_FD: a descriptor on the lock file while another process holds it is refused") {
  test::Fixture fx;
  int fd = caller_lock(fx, false);
  pid_t holder = hold_lock_in_child(fx.root(), 10s);
  LockFdEnv env(std::to_string(fd));
  auto start = std::chrono::steady_clock::now();
  auto lock = Lock::acquire(fx.root(), 5000ms);
  REQUIRE_FALSE(lock);
  CHECK(std::chrono::steady_clock::now() - start < 1000ms);  // refused, not waited for
  CHECK(lock.error().message.find("another process holds the lock") != std::string::npos);
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  ::close(fd);
}

TEST_CASE("PT_LOCK_FD: a descriptor holding a shared lock is refused, not converted") {
  // flock(2) turns a shared lock exclusive by dropping it first: another pt
  // could run in that gap, so pt must not try.
  test::Fixture fx;
  int fd = caller_lock(fx, false);
  REQUIRE(::flock(fd, LOCK_SH | LOCK_NB) == 0);
  LockFdEnv env(std::to_string(fd));
  auto lock = Lock::acquire(fx.root(), 100ms);
  REQUIRE_FALSE(lock);
  CHECK(lock.error().exit == Exit::failed);
  CHECK(lock.error().subject == "PT_LOCK_FD=" + std::to_string(fd));
  CHECK(lock.error().message.find("shared lock") != std::string::npos);
  // The caller's lock is as it was: still shared, so another shared lock
  // gets in and an exclusive one does not.
  int probe = ::open(fx.root().path(kLockPath).c_str(), O_RDONLY);
  CHECK(::flock(probe, LOCK_EX | LOCK_NB) != 0);
  CHECK(::flock(probe, LOCK_SH | LOCK_NB) == 0);
  ::close(probe);
  ::close(fd);
}

TEST_CASE("PT_LOCK_FD: a dry run neither needs nor checks it") {
  test::Fixture fx;
  LockFdEnv env("abc");
  auto l = lock_unless_dry_run(fx.root(), true, 100ms);
  REQUIRE(l);
  CHECK_FALSE(l->has_value());
}

TEST_CASE("a command waiting for the lock tells its observer who holds it, with growing times") {
  test::Fixture fx;
  pid_t holder = hold_lock_in_child(fx.root(), 10s);
  fx.add_flock(int(holder), kLockPath);
  std::vector<Wait> seen;
  auto busy = Lock::acquire(fx.root(), 700ms, [&](const Wait& w) { seen.push_back(w); });
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  REQUIRE_FALSE(busy);
  CHECK(busy.error().exit == Exit::busy);
  test::check_timed_out_wait(seen, "the pt lock (held by pid " + std::to_string(holder) + ")",
                             kLockPath, 700ms, 3);

  // Free at once: no wait to tell of. No /proc/locks line: the holder is not named.
  seen.clear();
  CHECK(Lock::acquire(fx.root(), 700ms, [&](const Wait& w) { seen.push_back(w); }));
  CHECK(seen.empty());
}

TEST_CASE(
    "lock_holder: the holder /proc/locks names for the file, not a waiter, not another file") {
  test::Fixture fx;
  pid_t holder = hold_lock_in_child(fx.root(), 10s);
  fx.write_file("/run/pt/other", "");
  const std::string path = fx.root().path(kLockPath);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  CHECK_FALSE(lock_holder(fx.root(), fd));  // no /proc/locks under the root
  fx.add_flock(4242, "/run/pt/other");
  CHECK_FALSE(lock_holder(fx.root(), fd));
  fx.add_flock(int(holder), kLockPath);
  CHECK(lock_holder(fx.root(), fd) == int(holder));
  ::close(fd);
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
}
