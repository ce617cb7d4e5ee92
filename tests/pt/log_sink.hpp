// A logger at a fixture tree's /dev/log, as journald listens on the real
// one: what pt sends to the system log, for the tests to read.
#pragma once

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "fixture.hpp"

namespace pt::test {

class LogSink {
 public:
  // AT: the socket's absolute path in the tree; journald's native one is
  // /run/systemd/journal/socket.
  explicit LogSink(const Fixture& fx, const std::string& at = "/dev/log")
      : path_(fx.root().path(at)) {
    std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path_.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  }
  int fd() const { return fd_; }
  ~LogSink() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // Every datagram received so far, as sent.
  std::vector<std::string> raw() {
    std::vector<std::string> out;
    char buf[8192];
    for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;) out.emplace_back(buf, size_t(n));
    return out;
  }
  // Every record received so far, with "<PRI>TAG[PID]: " cut to "<PRI>TAG: ".
  std::vector<std::string> drain() {
    std::vector<std::string> out;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;) {
      std::string rec(buf, size_t(n));
      auto open = rec.find('['), close = rec.find("]: ");
      if (open != std::string::npos && close != std::string::npos && open < close)
        rec.erase(open, close + 1 - open);
      out.push_back(rec);
    }
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace pt::test
