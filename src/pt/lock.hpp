// The kit-wide lock: an exclusive flock on /run/pt/lock held by every
// mutating command, so two runs never interleave their writes.
//
// A caller that runs several tools as one sequence (the hypervisor hooks in
// contrib/) holds the lock itself and passes it down: it opens /run/pt/lock,
// takes the flock, and names the descriptor in PT_LOCK_FD. A tool that finds
// PT_LOCK_FD uses that lock instead of waiting for its own, once it has
// proven the descriptor is open on /run/pt/lock and holds the flock.
#pragma once

#include <chrono>
#include <optional>

#include "pt/context.hpp"
#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt {

inline constexpr const char* kLockFdEnv = "PT_LOCK_FD";

class Lock {
 public:
  // With PT_LOCK_FD set (and not empty), the inherited lock, validated;
  // otherwise waits up to TIMEOUT for its own, and past it the error carries
  // Exit::busy.
  // ON_WAIT hears of the wait once the lock is found taken ("the pt lock
  // (held by pid N)", the pid from /proc/locks where it says).
  static Result<Lock> acquire(const Root& root, std::chrono::milliseconds timeout,
                              const WaitObserver& on_wait = nullptr);
  // The inherited lock that VALUE (PT_LOCK_FD's value) names: VALUE must be
  // a descriptor number open on ROOT's /run/pt/lock (same device and inode)
  // whose open file description holds the flock. Malformed: Exit::usage.
  static Result<Lock> inherit(const Root& root, const char* value);
  Lock(Lock&& o) noexcept : fd_(o.fd_), inherited_(o.inherited_) { o.fd_ = -1; }
  Lock& operator=(Lock&&) = delete;
  // An own lock is released by closing it. An inherited one is left alone:
  // the caller holds it, and an unlock would release it under the caller.
  ~Lock();
  bool inherited() const { return inherited_; }
  // The descriptor that holds the flock, for handing it down as PT_LOCK_FD.
  int fd() const { return fd_; }

 private:
  Lock(int fd, bool inherited) : fd_(fd), inherited_(inherited) {}
  int fd_ = -1;
  bool inherited_ = false;
};

// The lock of a mutating command; none for a dry run, which writes nothing
// and only checks that /run/pt, where it exists, is sound.
Result<std::optional<Lock>> lock_unless_dry_run(const Root& root, bool dry_run,
                                                std::chrono::milliseconds timeout,
                                                const WaitObserver& on_wait = nullptr);

// The process /proc/locks names as holding a flock on the file open on FD
// (same device and inode); none when it names none or cannot be read.
std::optional<int> lock_holder(const Root& root, int fd);

// The same for an engine's work on CTX: none as well when the caller holds
// the lock for the whole run (ctx.lock_held).
Result<std::optional<Lock>> lock_unless_dry_run(const Context& ctx);

// An engine's lock on CTX even in a dry run: none only when the caller holds
// it (ctx.lock_held).
Result<std::optional<Lock>> lock_unless_held(const Context& ctx);

}  // namespace pt
