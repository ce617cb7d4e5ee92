#include "pt/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>

#include "pt/journal.hpp"
#include "pt/sysfs.hpp"

namespace pt {

std::optional<int> lock_holder(const Root& root, int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::nullopt;
  auto text = read_attr(root, "/proc/locks");
  if (!text) return std::nullopt;
  // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF": major and minor in hex,
  // the inode in decimal (fs/locks.c, lock_get_status). A line of a lock
  // someone waits for ("1: -> FLOCK ...") names the waiter, not the holder.
  char want[64];
  std::snprintf(want, sizeof want, "%02x:%02x:%lu", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long>(st.st_ino));
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, type, mode, rw, pid, where;
    if (!(f >> id >> type >> mode >> rw >> pid >> where) || type != "FLOCK" || where != want)
      continue;
    int n = 0;
    auto [end, ec] = std::from_chars(pid.data(), pid.data() + pid.size(), n);
    if (ec == std::errc() && end == pid.data() + pid.size() && n > 0) return n;
  }
  return std::nullopt;
}

Result<Lock> Lock::acquire(const Root& root, std::chrono::milliseconds timeout,
                           const WaitObserver& on_wait) {
  // secure_getenv: a set-user-ID or capability-raised pt ignores a lock
  // descriptor named by whoever started it.
  if (const char* v = ::secure_getenv(kLockFdEnv); v && *v) return inherit(root, v);
  if (auto r = check_state_dir(root, true); !r) return std::unexpected(r.error());
  const std::string path = root.path(kLockPath);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail(kLockPath, "cannot open the lock file", errno);
  // flock has no timed form; back off from 1 ms to 50 ms between attempts.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  std::optional<WaitReport> report;
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      if (report) report->end(true);
      return Lock(fd, false);
    }
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
    if (!report && on_wait) {
      std::string what = "the pt lock";
      if (auto pid = lock_holder(root, fd)) what += " (held by pid " + std::to_string(*pid) + ")";
      report.emplace(on_wait, what, kLockPath, timeout);
    }
    if (report) report->tick();
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

Result<Lock> Lock::inherit(const Root& root, const char* value) {
  const std::string shown = std::string(kLockFdEnv) + "=" + value;
  const std::string_view v(value);
  int fd = -1;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), fd);
  if (ec != std::errc() || end != v.data() + v.size() || fd < 0)
    return usage_error(shown,
                       "must be the number of a descriptor open on " + std::string(kLockPath) +
                           " that holds its lock; unset it to let the tool take the lock itself");
  if (auto r = check_state_dir(root, false); !r) return std::unexpected(r.error());

  struct stat held {};
  if (::fstat(fd, &held) != 0)
    return fail(shown, "is not an open descriptor; the caller must keep it open across exec",
                errno);
  const std::string path = root.path(kLockPath);
  struct stat file {};
  if (::lstat(path.c_str(), &file) != 0)
    return fail(shown, std::string(kLockPath) + " does not exist, so the descriptor cannot hold it",
                errno);
  if (!S_ISREG(file.st_mode)) return fail(kLockPath, "is not a regular file; remove it", EINVAL);
  if (held.st_dev != file.st_dev || held.st_ino != file.st_ino)
    return fail(shown,
                "is not open on " + std::string(kLockPath) +
                    " (another file, or the lock file was replaced); open that file and flock it",
                EBADF);

  // Who holds the lock? A fresh open file description can take it only when
  // nobody does; then the caller does not hold it and must not be trusted.
  int probe = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (probe < 0) return fail(kLockPath, "cannot open the lock file", errno);
  if (::flock(probe, LOCK_EX | LOCK_NB) == 0) {
    ::flock(probe, LOCK_UN);
    ::close(probe);
    return fail(shown,
                "is open on " + std::string(kLockPath) +
                    " but does not hold its lock; take it first (flock on that descriptor)",
                ENOLCK);
  }
  int e = errno;
  if (e != EWOULDBLOCK) {
    ::close(probe);
    return fail(kLockPath, "cannot test the lock", e);
  }
  // Someone holds it. A shared lock lets a second shared one in; the caller
  // must hold it exclusively, because flock(2) converts a shared lock by
  // dropping it first, and another pt could take it in that gap.
  if (::flock(probe, LOCK_SH | LOCK_NB) == 0) {
    ::flock(probe, LOCK_UN);
    ::close(probe);
    return fail(shown,
                "holds a shared lock on " + std::string(kLockPath) +
                    ", which pt cannot turn exclusive without dropping it; take it exclusively "
                    "(flock -x, or flock(fd, LOCK_EX))",
                ENOLCK);
  }
  e = errno;
  ::close(probe);
  if (e != EWOULDBLOCK) return fail(kLockPath, "cannot test the lock", e);
  // Someone holds it exclusively. The same open file description takes an exclusive lock
  // it already holds again at once; any other description is refused.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    e = errno;
    if (e == EWOULDBLOCK)
      return fail(shown,
                  "is open on " + std::string(kLockPath) +
                      " but another process holds the lock; the caller must take it before "
                      "exporting " +
                      kLockFdEnv,
                  e);
    return fail(shown, "cannot lock through the descriptor", e);
  }
  return Lock(fd, true);
}

Lock::~Lock() {
  if (fd_ >= 0 && !inherited_) ::close(fd_);
}

Result<std::optional<Lock>> lock_unless_dry_run(const Root& root, bool dry_run,
                                                std::chrono::milliseconds timeout,
                                                const WaitObserver& on_wait) {
  if (dry_run) {
    if (auto r = check_state_dir(root, false); !r) return std::unexpected(r.error());
    return std::optional<Lock>();
  }
  auto l = Lock::acquire(root, timeout, on_wait);
  if (!l) return std::unexpected(l.error());
  return std::optional<Lock>(std::move(*l));
}

Result<std::optional<Lock>> lock_unless_dry_run(const Context& ctx) {
  if (ctx.lock_held) return std::optional<Lock>();
  return lock_unless_dry_run(ctx.root, ctx.dry_run, ctx.lock_timeout, ctx.on_wait);
}

Result<std::optional<Lock>> lock_unless_held(const Context& ctx) {
  if (ctx.lock_held) return std::optional<Lock>();
  auto l = Lock::acquire(ctx.root, ctx.lock_timeout, ctx.on_wait);
  if (!l) return std::unexpected(l.error());
  return std::optional<Lock>(std::move(*l));
}

}  // namespace pt
