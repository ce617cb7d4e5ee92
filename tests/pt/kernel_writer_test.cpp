#include "pt/kernel_writer.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "fixture.hpp"
#include "pt/lock.hpp"
#include "wait_events.hpp"

using namespace pt;
using namespace std::chrono_literals;

TEST_CASE("the kernel writer writes under the root, blocking writes through a child") {
  test::Fixture fx;
  fx.write_file("/sys/attr", "old");
  KernelWriter w(fx.root(), 2000ms);
  REQUIRE(w.write("/sys/attr", "vfio-pci", WriteKind::attribute));
  CHECK(fx.read("/sys/attr") == "vfio-pci");
  REQUIRE(w.write("/sys/attr", "0000:01:00.0", WriteKind::blocking));
  CHECK(fx.read("/sys/attr") == "0000:01:00.0");

  auto missing = w.write("/sys/none", "1", WriteKind::blocking);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().err == ENOENT);
  CHECK(missing.error().subject == "/sys/none");
  CHECK(missing.error().exit == Exit::failed);
}

TEST_CASE("a write that blocks past the timeout is reported with path, value and exit 5") {
  test::Fixture fx;
  // Opening a FIFO for writing blocks until a reader comes: a stand-in for
  // an unbind stuck in a driver.
  const std::string fifo = fx.dir() + "/sys/stuck";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  KernelWriter w(fx.root(), 200ms);
  auto start = std::chrono::steady_clock::now();
  auto r = w.write("/sys/stuck", "0000:01:00.0", WriteKind::blocking);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::timeout);
  CHECK(r.error().err == 0);  // no system call failed; the message says what happened
  CHECK(r.error().subject == "/sys/stuck");
  CHECK(r.error().message.find("\"0000:01:00.0\"") != std::string::npos);
  CHECK(r.error().message.find("cannot be cancelled") != std::string::npos);
  CHECK(took >= 200ms);
  CHECK(took < 2s);
  // Release the abandoned writer so it does not outlive the test.
  int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  std::this_thread::sleep_for(50ms);
  char buf[64];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
  ::close(fd);
}

TEST_CASE("the observed writer reports each write with its outcome") {
  test::Fixture fx;
  fx.write_file("/sys/attr", "");
  KernelWriter k(fx.root(), 1000ms);
  std::vector<WriteEvent> seen;
  ObservedWriter w(k, [&](const WriteEvent& e) { seen.push_back(e); });
  REQUIRE(w.write("/sys/attr", "io+mem", WriteKind::attribute));
  REQUIRE_FALSE(w.write("/sys/missing", "x", WriteKind::attribute));
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].path == "/sys/attr");
  CHECK(seen[0].value == "io+mem");
  CHECK(seen[0].err == 0);
  CHECK(seen[1].err == ENOENT);
  CHECK(seen[1].failed);
  CHECK_FALSE(seen[1].timed_out);
}

TEST_CASE("an abandoned writer holds neither the caller's output nor the pt lock") {
  test::Fixture fx;
  const std::string fifo = fx.dir() + "/sys/stuck";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  int out[2];
  REQUIRE(::pipe(out) == 0);
  int report[2];  // the writer's pid, from the error's field
  REQUIRE(::pipe(report) == 0);
  // The caller, as under out=$(pt-bind ... 2>&1): its stdout and stderr are
  // the pipe, and it holds the lock while it writes.
  pid_t caller = ::fork();
  if (caller == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::close(out[0]);
    ::close(out[1]);
    ::close(report[0]);
    auto lock = Lock::acquire(fx.root(), 1000ms);
    if (!lock) ::_exit(2);
    KernelWriter w(fx.root(), 200ms);
    auto r = w.write("/sys/stuck", "0000:01:00.0", WriteKind::blocking);
    int pid = r ? 0 : r.error().writer;
    [[maybe_unused]] auto n = ::write(report[1], &pid, sizeof pid);
    ::_exit(r ? 1 : 0);
  }
  ::close(out[1]);
  ::close(report[1]);
  int writer = 0;
  REQUIRE(::read(report[0], &writer, sizeof writer) == ssize_t(sizeof writer));
  ::close(report[0]);
  int status = 0;
  REQUIRE(::waitpid(caller, &status, 0) == caller);
  CHECK(WEXITSTATUS(status) == 0);
  REQUIRE(writer > 0);
  CHECK(::kill(writer, 0) == 0);  // still stuck on the FIFO

  // The caller's pipe reaches its end although the writer still lives.
  pollfd p{out[0], POLLIN, 0};
  REQUIRE(::poll(&p, 1, 2000) == 1);
  char buf[256];
  while (::read(out[0], buf, sizeof buf) > 0) {
  }
  CHECK(::read(out[0], buf, sizeof buf) == 0);
  ::close(out[0]);
  // And the lock is free for the next run.
  auto next = Lock::acquire(fx.root(), 0ms);
  CHECK(next);
  CHECK(::kill(writer, 0) == 0);

  int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  std::this_thread::sleep_for(50ms);
  while (::read(fd, buf, sizeof buf) > 0) {
  }
  ::close(fd);
}

TEST_CASE("a blocking write tells its observer what it waits for, while it waits") {
  test::Fixture fx;
  const std::string abs = "/sys/bus/pci/drivers/nvidia/unbind";
  fx.write_file(abs, "");
  const std::string fifo = fx.dir() + abs;
  REQUIRE(::unlink(fifo.c_str()) == 0);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);  // blocks the writer, as nvidia does with a user
  std::vector<Wait> seen;
  KernelWriter w(fx.root(), 800ms, [&](const Wait& ev) { seen.push_back(ev); });
  auto r = w.write(abs, "0000:01:00.0", WriteKind::blocking);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::timeout);
  // Start, a tick about every 250 ms, end.
  test::check_timed_out_wait(seen, "nvidia to release 0000:01:00.0 (unbind)", abs, 800ms, 4);
  int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  std::this_thread::sleep_for(50ms);
  char buf[64];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
  ::close(fd);

  // A write that returns at once: a start and an ok end, which a printer
  // does not show (under 300 ms).
  seen.clear();
  fx.write_file("/sys/attr", "");
  REQUIRE(w.write("/sys/attr", "1", WriteKind::blocking));
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].phase == Wait::Phase::end);
  CHECK(seen[1].ok);
  CHECK(seen[1].elapsed < 300ms);
}

TEST_CASE("write_wait_what: what each blocking write waits for") {
  const std::string d = "0000:01:00.0";
  CHECK(write_wait_what("/sys/bus/pci/drivers/nvidia/unbind", d) ==
        "nvidia to release 0000:01:00.0 (unbind)");
  CHECK(write_wait_what("/sys/bus/pci/drivers/vfio-pci/bind", d) ==
        "vfio-pci to take 0000:01:00.0 (bind)");
  CHECK(write_wait_what("/sys/bus/pci/drivers_probe", d) ==
        "a driver to probe 0000:01:00.0 (drivers_probe)");
  CHECK(write_wait_what("/sys/bus/pci/devices/0000:01:00.0/reset", "1") ==
        "0000:01:00.0 to reset (reset)");
  CHECK(write_wait_what("/sys/bus/pci/devices/0000:01:00.0/remove", "1") ==
        "the kernel to remove 0000:01:00.0 (remove)");
  CHECK(write_wait_what("/sys/bus/pci/devices/0000:00:01.0/rescan", "1") ==
        "the kernel to rescan the PCI bus (rescan)");
  CHECK(write_wait_what("/sys/bus/pci/rescan", "1") == "the kernel to rescan the PCI bus (rescan)");
  CHECK(write_wait_what("/sys/bus/pci/drivers/a\x1b"
                        "b/unbind",
                        d) == "a\\x1bb to release 0000:01:00.0 (unbind)");
}
