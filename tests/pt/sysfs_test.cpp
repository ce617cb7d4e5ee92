#include "pt/sysfs.hpp"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "fixture.hpp"

using namespace pt;
using namespace std::string_literals;

TEST_CASE("reads strip the trailing newline and report missing files") {
  test::Fixture fx;
  fx.write_file("/sys/x", "flr pm bus\n");
  CHECK(read_file(fx.dir() + "/sys/x").value() == "flr pm bus");
  auto missing = read_file(fx.dir() + "/sys/none");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().err == ENOENT);
  CHECK(missing.error().subject == fx.dir() + "/sys/none");
}

TEST_CASE("values are shown quoted with newlines visible") {
  CHECK(show_value("\n") == "\"\\n\"");
  CHECK(show_value("vfio-pci") == "\"vfio-pci\"");
}

namespace {
// Runs FN in a child and says whether it finished within LIMIT; a child
// still blocked then is killed, so a hanging read fails the test, not the run.
bool finishes_within(std::chrono::milliseconds limit, const std::function<bool()>& fn) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(fn() ? 0 : 1);
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
}  // namespace

TEST_CASE("a FIFO where an attribute belongs is an error at once, not a hang") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  const std::string attr = "/sys/bus/pci/devices/0000:01:00.0/driver_override";
  REQUIRE(::unlink(fx.root().path(attr).c_str()) == 0);
  REQUIRE(::mkfifo(fx.root().path(attr).c_str(), 0644) == 0);
  CHECK(finishes_within(std::chrono::seconds(5), [&] {
    auto r = read_file(fx.root(), attr);
    return !r && r.error().err == EINVAL &&
           r.error().message.find("not a regular file") != std::string::npos &&
           r.error().subject == fx.root().path(attr) && !read_attr(fx.root(), attr);
  }));
}

TEST_CASE("a file over 1 MiB is refused, one at the limit is read") {
  test::Fixture fx;
  fx.write_file("/sys/huge", std::string(10 << 20, 'x'));
  auto r = read_file(fx.root(), "/sys/huge");
  REQUIRE_FALSE(r);
  CHECK(r.error().err == EFBIG);
  CHECK(r.error().message.find("larger than 1 MiB") != std::string::npos);
  CHECK_FALSE(read_attr(fx.root(), "/sys/huge"));
  fx.write_file("/sys/big", std::string(kMaxReadBytes, 'y'));
  auto ok = read_file(fx.root(), "/sys/big");
  REQUIRE(ok);
  CHECK(ok->size() == kMaxReadBytes);
}

TEST_CASE("an index in a name is digits that fit an int, nothing else") {
  CHECK(parse_index("0") == 0u);
  CHECK(parse_index("12") == 12u);
  CHECK(parse_index("2147483647") == 2147483647u);
  CHECK_FALSE(parse_index("2147483648"));
  CHECK_FALSE(parse_index("99999999999999999999"));
  CHECK_FALSE(parse_index("-1"));
  CHECK_FALSE(parse_index("+1"));
  CHECK_FALSE(parse_index(""));
  CHECK_FALSE(parse_index("1a"));
  CHECK_FALSE(parse_index(" 1"));
}

// read_bytes: the same limits for a file that is no attribute (an initramfs's
// pt.conf, unpacked from an archive that decides what each path is).
TEST_CASE("read_bytes keeps every byte and refuses a FIFO or a file over 1 MiB") {
  test::Fixture fx;
  fx.write_file("/etc/pt/pt.conf", "a\n\n\0"s);
  auto whole = read_bytes(fx.root().path("/etc/pt/pt.conf"));
  REQUIRE(whole);
  CHECK(*whole == "a\n\n\0"s);
  fx.write_file("/var/tmp/huge", std::string(kMaxReadBytes + 1, 'x'));
  auto huge = read_bytes(fx.root().path("/var/tmp/huge"));
  REQUIRE_FALSE(huge);
  CHECK(huge.error().err == EFBIG);
  CHECK(huge.error().message == "is larger than 1 MiB; not read");
  const std::string fifo = fx.root().path("/var/tmp/fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  CHECK(finishes_within(std::chrono::seconds(5), [&] {
    auto r = read_bytes(fifo);
    return !r && r.error().err == EINVAL && r.error().message == "is not a regular file; not read";
  }));
}
