#include "pt/trusted_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace pt {

namespace {

constexpr size_t kMaxTrustedBytes = 1 << 20;

// Closes the descriptor on every return path.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Status check_trust(const std::string& subject, const struct stat& st, const TrustRules& rules) {
  if (rules.regular && !S_ISREG(st.st_mode)) return fail(subject, rules.not_regular, EINVAL);
  if (st.st_uid != ::geteuid() && !(rules.root_may_own && st.st_uid == 0))
    return fail(subject, rules.foreign_owner(st.st_uid), EPERM);
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return fail(subject, rules.others_can_write, EPERM);
  return {};
}

Result<std::optional<std::string>> read_trusted_file(const Root& root, std::string_view abs,
                                                     const TrustRules& rules) {
  const std::string real = root.path(abs);
  const std::string shown(abs);
  // O_NONBLOCK: a FIFO planted in the file's place must not hang the open
  // before the checks can refuse it; it does not change reads of a file.
  Fd f{::open(real.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)};
  if (f.fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    return fail(shown, rules.open_failure, errno);
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return fail(shown, rules.inspect_failure, errno);
  if (auto r = check_trust(shown, st, rules); !r) return std::unexpected(r.error());
  if (rules.check)
    if (auto r = rules.check(st); !r) return std::unexpected(r.error());
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(real, "cannot read", errno);
    }
    if (n == 0) break;
    // The journal and pt.conf are a few KiB; a file growing without end
    // (or 10 MiB planted there) is refused, not read into memory.
    if (out.size() + size_t(n) > kMaxTrustedBytes)
      return fail(shown, "is larger than 1 MiB, so not a file pt wrote or reads; not read", EFBIG);
    out.append(buf, size_t(n));
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\0')) out.pop_back();
  return out;
}

}  // namespace pt
