#include "pt/spawn.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "fixture.hpp"

using namespace pt;
using namespace std::chrono_literals;

TEST_CASE("call returns the child's exit status and what it wrote") {
  auto r = spawn::call(
      Root{},
      [](int out) {
        const char msg[] = "from the child";
        return ::write(out, msg, sizeof msg - 1) == sizeof msg - 1 ? 7 : 1;
      },
      {.timeout = 5s, .capture = true});
  REQUIRE(r);
  CHECK(r->finished);
  CHECK(r->code == 7);
  CHECK(r->out == "from the child");
}

TEST_CASE("a child past its timeout is abandoned, still running, with its wait channel") {
  auto start = std::chrono::steady_clock::now();
  auto r = spawn::call(Root{}, [](int) { ::pause(); return 0; }, {.timeout = 100ms});
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(r);
  CHECK_FALSE(r->finished);
  CHECK_FALSE(r->killed);
  CHECK(took >= 100ms);
  CHECK(took < 3s);
  CHECK_FALSE(r->wchan.empty());
  // Abandoned means alive: signal 0 reaches it.
  CHECK(::kill(r->pid, 0) == 0);
  ::kill(r->pid, SIGKILL);
  int st = 0;
  CHECK(::waitpid(r->pid, &st, 0) == r->pid);
}

TEST_CASE("OnTimeout::kill kills and reaps the child") {
  auto r = spawn::call(Root{}, [](int) { ::pause(); return 0; },
                       {.timeout = 50ms, .on_timeout = spawn::OnTimeout::kill});
  REQUIRE(r);
  CHECK_FALSE(r->finished);
  CHECK(r->killed);
  CHECK(::kill(r->pid, 0) != 0);  // reaped: the pid is gone
}

TEST_CASE("exec runs a program with extra environment and captures stdout") {
  auto r = spawn::exec(Root{}, {"/bin/sh", "-c", "printf '%s' \"$PT_SPAWN_TEST\"; exit 3"},
                       {.timeout = 5s, .capture = true, .env = {{"PT_SPAWN_TEST", "hello"}}});
  REQUIRE(r);
  CHECK(r->finished);
  CHECK(r->code == 3);
  CHECK(r->out == "hello");
}

TEST_CASE("exec runs the child in cwd; a cwd that cannot be entered is exit 126") {
  test::Fixture fx;
  fx.write_file("/scratch/file", "");
  const std::string scratch = std::filesystem::canonical(fx.root().path("/scratch"));
  auto r = spawn::exec(Root{}, {"/bin/pwd"}, {.timeout = 5s, .capture = true, .cwd = scratch});
  REQUIRE(r);
  CHECK(r->code == 0);
  CHECK(r->out == scratch + "\n");
  auto bad = spawn::exec(Root{}, {"/bin/pwd"},
                         {.timeout = 5s, .capture = true, .cwd = fx.root().path("/none")});
  REQUIRE(bad);
  CHECK(bad->code == 126);
  CHECK(bad->out.empty());
}

TEST_CASE("exec of a missing program is exit 127, a signal is 128 + its number") {
  auto missing = spawn::exec(Root{}, {"/no/such/program"}, {});
  REQUIRE(missing);
  CHECK(missing->code == 127);
  auto killed = spawn::exec(Root{}, {"/bin/sh", "-c", "kill -TERM $$"}, {});
  REQUIRE(killed);
  CHECK(killed->code == 128 + SIGTERM);
}

TEST_CASE("the child keeps only keep_fd of the inherited descriptors") {
  int a = ::open("/dev/null", O_RDONLY);  // not close-on-exec: would leak without close_fds
  int keep = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(a >= 0);
  REQUIRE(keep >= 0);
  const std::string script = "test -e /proc/self/fd/" + std::to_string(keep) + " || exit 1; test -e /proc/self/fd/" +
                             std::to_string(a) + " && exit 2; exit 0";
  auto r = spawn::exec(Root{}, {"/bin/sh", "-c", script}, {.keep_fd = keep});
  REQUIRE(r);
  CHECK(r->code == 0);
  ::close(a);
  ::close(keep);
}

TEST_CASE("seconds_text prints seconds the way messages do") {
  CHECK(spawn::seconds_text(1500ms) == "1.5");
  CHECK(spawn::seconds_text(10000ms) == "10");
}

TEST_CASE("a function child holds none of the caller's stdio, so a capturing shell is not kept waiting") {
  // The caller's stdout is a pipe, as in out=$(pt-bind ...): it must see end
  // of file while an abandoned child still runs.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  int saved = ::dup(1);
  REQUIRE(::dup2(fds[1], 1) == 1);
  ::close(fds[1]);
  auto r = spawn::call(Root{}, [](int) { ::pause(); return 0; }, {.timeout = 50ms});
  ::dup2(saved, 1);
  ::close(saved);
  REQUIRE(r);
  CHECK_FALSE(r->finished);
  char c;
  CHECK(::read(fds[0], &c, 1) == 0);  // end of file: nobody else holds the write end
  ::close(fds[0]);
  ::kill(r->pid, SIGKILL);
  int st = 0;
  ::waitpid(r->pid, &st, 0);
}

TEST_CASE("wait_channel: wchan, else the first stack frame past the scheduler, else unknown") {
  test::Fixture fx;
  fx.write_file("/proc/41/wchan", "nv_pci_remove");
  fx.write_file("/proc/42/wchan", "0");
  fx.write_file("/proc/42/stack",
                "[<0>] __schedule+0x2d1/0x890\n[<0>] schedule+0x5b/0xd0\n"
                "[<0>] wait_for_partner+0x55/0xa0\n[<0>] fifo_open+0x1b5/0x300\n");
  fx.write_file("/proc/43/wchan", "0");
  CHECK(spawn::wait_channel(fx.root(), 41) ==
        std::pair<std::string, std::string>{"nv_pci_remove", "/proc/41/wchan"});
  CHECK(spawn::wait_channel(fx.root(), 42) ==
        std::pair<std::string, std::string>{"wait_for_partner", "/proc/42/stack"});
  CHECK(spawn::wait_channel(fx.root(), 43).first == "unknown");
}

TEST_CASE("a function child's stderr reaches ours through a relay, and an abandoned one holds none of it") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  int saved = ::dup(2);
  REQUIRE(::dup2(fds[1], 2) == 2);
  ::close(fds[1]);
  auto said = spawn::call(
      Root{}, [](int) { return ::write(2, "pt-fault: failing\n", 18) == 18 ? 0 : 1; },
      {.timeout = 5s});
  auto stuck = spawn::call(Root{}, [](int) { ::pause(); return 0; }, {.timeout = 50ms});
  ::dup2(saved, 2);
  ::close(saved);
  REQUIRE(said);
  CHECK(said->code == 0);
  REQUIRE(stuck);
  CHECK_FALSE(stuck->finished);
  std::string got;
  char buf[64];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, size_t(n));
  CHECK(got == "pt-fault: failing\n");  // and then end of file, though the stuck child lives
  ::close(fds[0]);
  ::kill(stuck->pid, SIGKILL);
  int st = 0;
  ::waitpid(stuck->pid, &st, 0);
}
