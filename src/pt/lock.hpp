// The kit-wide lock: an exclusive flock on /run/pt/lock held by every
// mutating command, so two runs never interleave their writes.
#pragma once

#include <chrono>
#include <optional>

#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt {

class Lock {
 public:
  // Waits up to TIMEOUT; past it the error carries Exit::busy.
  static Result<Lock> acquire(const Root& root, std::chrono::milliseconds timeout);
  Lock(Lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Lock& operator=(Lock&&) = delete;
  ~Lock();

 private:
  explicit Lock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// The lock of a mutating command; none for a dry run, which writes nothing
// and only checks that /run/pt, where it exists, is sound.
Result<std::optional<Lock>> lock_unless_dry_run(const Root& root, bool dry_run,
                                                std::chrono::milliseconds timeout);

}  // namespace pt
