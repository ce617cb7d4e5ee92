#include "pt/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "pt/journal.hpp"

namespace pt {

Result<Lock> Lock::acquire(const Root& root, std::chrono::milliseconds timeout) {
  if (auto r = check_state_dir(root, true); !r) return std::unexpected(r.error());
  const std::string path = root.path(kLockPath);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail(kLockPath, "cannot open the lock file", errno);
  // flock has no timed form; back off from 1 ms to 50 ms between attempts.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return Lock(fd);
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int e = errno;
      ::close(fd);
      return fail(kLockPath, "cannot lock", e);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::close(fd);
      return fail(
          kLockPath,
          "another pt command holds the lock; wait for it, or raise --lock-timeout (see 'fuser " +
              path + "')",
          EWOULDBLOCK, Exit::busy);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

Lock::~Lock() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::optional<Lock>> lock_unless_dry_run(const Root& root, bool dry_run,
                                                std::chrono::milliseconds timeout) {
  if (dry_run) {
    if (auto r = check_state_dir(root, false); !r) return std::unexpected(r.error());
    return std::optional<Lock>();
  }
  auto l = Lock::acquire(root, timeout);
  if (!l) return std::unexpected(l.error());
  return std::optional<Lock>(std::move(*l));
}

}  // namespace pt
