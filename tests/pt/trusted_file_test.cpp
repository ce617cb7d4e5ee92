#include "pt/trusted_file.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "fixture.hpp"

using namespace pt;

namespace {

TrustRules regular_file(std::function<void()> between = nullptr) {
  return {.open_failure = "cannot open",
          .inspect_failure = "cannot inspect",
          .regular = true,
          .not_regular = "is not a regular file",
          .foreign_owner = [](uid_t uid) { return "owned by uid " + std::to_string(uid); },
          .others_can_write = "others can write",
          .check = [between](const struct stat&) -> Status {
            if (between) between();
            return {};
          }};
}

}  // namespace

TEST_CASE("a trusted file is read; a missing one is nullopt") {
  test::Fixture fx;
  CHECK(read_trusted_file(fx.root(), "/etc/f", regular_file()).value() == std::nullopt);
  fx.write_file("/etc/f", "a = 1\n");
  ::chmod((fx.dir() + "/etc/f").c_str(), 0644);
  CHECK(read_trusted_file(fx.root(), "/etc/f", regular_file()).value() == "a = 1");
}

TEST_CASE("a refusal from the check is returned as is") {
  test::Fixture fx;
  fx.write_file("/etc/f", "x");
  ::chmod((fx.dir() + "/etc/f").c_str(), 0666);
  auto r = read_trusted_file(fx.root(), "/etc/f", regular_file());
  REQUIRE_FALSE(r);
  CHECK(r.error().subject == "/etc/f");
  CHECK(r.error().message == "others can write");
  CHECK(r.error().err == EPERM);
}

TEST_CASE("a file owned by another user is refused, one of the caller's is read") {
  test::Fixture fx;
  fx.write_file("/etc/f", "x");
  const std::string p = fx.dir() + "/etc/f";
  ::chmod(p.c_str(), 0644);
  if (::geteuid() != 0) {
    MESSAGE("cannot chown as this user; ownership refusal not exercised");
    return;
  }
  REQUIRE(::chown(p.c_str(), 4242, 4242) == 0);
  auto r = read_trusted_file(fx.root(), "/etc/f", regular_file());
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "owned by uid 4242");
  CHECK(r.error().err == EPERM);
  REQUIRE(::chown(p.c_str(), 0, 0) == 0);
  CHECK(read_trusted_file(fx.root(), "/etc/f", regular_file()).value() == "x");
}

TEST_CASE("a symlink in the file's place is refused, even to a file that would pass") {
  test::Fixture fx;
  fx.write_file("/etc/good", "trusted");
  ::chmod((fx.dir() + "/etc/good").c_str(), 0644);
  REQUIRE(::symlink((fx.dir() + "/etc/good").c_str(), (fx.dir() + "/etc/f").c_str()) == 0);
  auto r = read_trusted_file(fx.root(), "/etc/f", regular_file());
  REQUIRE_FALSE(r);
  CHECK(r.error().err == ELOOP);
  CHECK(r.error().subject == "/etc/f");
  CHECK(r.error().message == "cannot open");
}

TEST_CASE("a file swapped in between the check and the read is not what is read") {
  test::Fixture fx;
  const std::string path = fx.dir() + "/etc/f";
  fx.write_file("/etc/f", "checked");
  fx.write_file("/etc/evil", "swapped in");
  ::chmod(path.c_str(), 0644);
  ::chmod((fx.dir() + "/etc/evil").c_str(), 0666);
  // The swap happens after the checks passed and before the read: a reader
  // that opened the path again would read "swapped in".
  auto r =
      read_trusted_file(fx.root(), "/etc/f", regular_file([&] {
                          REQUIRE(std::rename((fx.dir() + "/etc/evil").c_str(), path.c_str()) == 0);
                        }));
  REQUIRE(r);
  CHECK(r->value() == "checked");
  CHECK(fx.read("/etc/f") == "swapped in");
}

TEST_CASE("a FIFO in the file's place neither blocks the open nor passes the check") {
  test::Fixture fx;
  fx.write_file("/etc/keep", "");
  REQUIRE(::mkfifo((fx.dir() + "/etc/f").c_str(), 0600) == 0);
  auto r = read_trusted_file(fx.root(), "/etc/f", regular_file());
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "is not a regular file");
}
