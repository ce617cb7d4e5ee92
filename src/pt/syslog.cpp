#include "pt/syslog.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace pt::syslog {

namespace {
constexpr int kFacilityDaemon = 3;
// A datagram larger than the logger's buffer is dropped whole; journald and
// rsyslog both take lines of this size.
constexpr size_t kMaxMessage = 2000;
}  // namespace

void send(const Root& root, Level level, std::string_view tag, std::string_view message) {
  const std::string path = root.path("/dev/log");
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  std::string line = "<" + std::to_string(kFacilityDaemon * 8 + int(level)) + ">" +
                     std::string(tag) + "[" + std::to_string(::getpid()) + "]: ";
  for (char c : message.substr(0, kMaxMessage))
    line += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c;
  // Non-blocking: with the logger stopped the socket's queue fills, and a
  // recovery must not wait for the log.
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  [[maybe_unused]] auto n = ::sendto(fd, line.data(), line.size(), MSG_NOSIGNAL,
                                     reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::close(fd);
}

}  // namespace pt::syslog
