#include "pt/kernel_writer.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "fixture.hpp"

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
