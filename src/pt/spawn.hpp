// Child processes: every fork() in libpt goes through here.
//
// Two reasons to run work in a child. A write or ioctl can block inside a
// driver, uninterruptibly (an unbind while nvidia's device is open, a VGA
// lock another client holds, a wedged GPU's ioctl): in a child, pt gives up
// after --timeout and reports where the kernel waits, while the child stays
// behind until the driver lets go ("abandoned"). And some steps are other
// programs: the kit's tools in a recovery, a user's command under a VGA lock,
// an initramfs lister.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pt/error.hpp"
#include "pt/root.hpp"
#include "pt/wait.hpp"

namespace pt::spawn {

enum class OnTimeout {
  abandon,  // leave it: a task in uninterruptible sleep ignores even SIGKILL
  kill,     // SIGKILL it and reap it: it waits interruptibly (VT_WAITACTIVE)
};

struct Options {
  // None: wait as long as it takes.
  std::optional<std::chrono::milliseconds> timeout;
  OnTimeout on_timeout = OnTimeout::abandon;
  // Called about every kWaitTick while the child runs, so a caller can show
  // how long it has waited.
  std::function<void()> on_tick;
  // Capture the child's standard output (call(): the descriptor FN gets).
  bool capture = false;
  // Close every inherited descriptor above 2 except KEEP_FD, so a child left
  // in the kernel does not keep the pt lock or a device open behind us.
  bool close_fds = true;
  // One descriptor the child keeps across exec (the pt lock for PT_LOCK_FD).
  int keep_fd = -1;
  // Set in the child before exec.
  std::vector<std::pair<std::string, std::string>> env;
  // exec() only: look ARGV[0] up in PATH.
  bool search_path = false;
  // exec() only: SIGINT, SIGTERM and SIGHUP reach the child while it runs.
  bool forward_signals = false;
  // exec() only: when exec fails, the child prints "PREFIXARGV0: strerror"
  // on stderr (a tool running a user's command says why it did not run).
  std::optional<std::string> exec_failure_prefix;
  // exec() only: the child's working directory (a tool that unpacks into
  // "."); when chdir fails the child exits 126.
  std::optional<std::string> cwd;
};

struct Outcome {
  pid_t pid = 0;
  bool finished = true;  // false: still running past the timeout
  bool killed = false;   // past the timeout and killed (OnTimeout::kill)
  int code = 0;          // exit status, or 128 + signal; meaningful when finished
  std::string wchan;     // where an unfinished child waited in the kernel
  std::string wchan_source;  // the /proc file that said so
  std::string out;       // standard output, when captured
};

// Runs FN in a forked child and returns its result as the exit status; the
// child's stdin and stdout are /dev/null (FN writes its result to the
// descriptor it gets) and what it writes on stderr is passed on to ours
// through a pipe once it ends or is given up on. FN
// runs after fork() in a process that may have had threads: it calls only
// async-signal-safe functions and everything it needs is prepared before.
// With capture, FN gets the write end of the output pipe, else -1. ROOT is
// where /proc/PID/wchan is read.
Result<Outcome> call(const Root& root, const std::function<int(int out_fd)>& fn,
                     const Options& options);

// Runs ARGV[0] (a path, or a name looked up in PATH) with ARGV. An exec
// failure is exit 127 (no such program) or 126 (not runnable).
Result<Outcome> exec(const Root& root, const std::vector<std::string>& argv,
                     const Options& options);

// Where PID waits in the kernel and the /proc file that says so:
// /proc/PID/wchan, or, where that reads 0 (x86 kernels before 5.16 for a
// sleeping task), the first frame of /proc/PID/stack past the scheduler;
// "unknown" when neither tells.
std::pair<std::string, std::string> wait_channel(const Root& root, pid_t pid);

// Waits up to TIMEOUT for PID to exit, without reaping it; false while it
// still runs then.
bool exited_within(pid_t pid, std::chrono::milliseconds timeout);

// "12.5": seconds as messages print them.
std::string seconds_text(std::chrono::milliseconds d);

}  // namespace pt::spawn
