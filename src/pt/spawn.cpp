#include "pt/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <tuple>

#include "pt/sysfs.hpp"

extern char** environ;

namespace pt::spawn {

namespace {

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP};
volatile sig_atomic_t g_forward_to = 0;

void forward(int sig) {
  pid_t p = g_forward_to;
  if (p > 0) ::kill(p, sig);
}

// In the child: closes every descriptor above 2 but KEEP_A and KEEP_B (-1:
// none). close_range(2) needs 5.9; the loop covers 5.8 and older.
void close_except(int keep_a, int keep_b) {
  int keep[2] = {std::min(keep_a, keep_b), std::max(keep_a, keep_b)};
  unsigned from = 3;
  for (int k : keep) {
    if (k < int(from)) continue;
    if (k > int(from) && ::syscall(SYS_close_range, from, unsigned(k - 1), 0u) != 0)
      for (int fd = int(from); fd < k; ++fd) ::close(fd);
    from = unsigned(k) + 1;
  }
  if (::syscall(SYS_close_range, from, ~0u, 0u) != 0)
    for (int fd = int(from); fd < 1024; ++fd) ::close(fd);
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

void reap(pid_t pid, int& status) {
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

// Signal forwarding for the life of one child: handlers installed with the
// signals blocked across fork(), so none arrives before the pid is known.
class Forwarding {
 public:
  explicit Forwarding(bool on) : on_(on) {
    if (!on_) return;
    sigset_t block;
    sigemptyset(&block);
    for (int s : kForwarded) sigaddset(&block, s);
    ::sigprocmask(SIG_BLOCK, &block, &old_mask_);
    struct sigaction sa {};
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; ++i) ::sigaction(kForwarded[i], &sa, &saved_[i]);
  }
  // In the child, before exec: the program gets default dispositions.
  void child_reset() const {
    if (!on_) return;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s : kForwarded) ::sigaction(s, &dfl, nullptr);
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  void started(pid_t pid) {
    if (!on_) return;
    g_forward_to = pid > 0 ? pid : 0;
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  ~Forwarding() {
    if (!on_) return;
    g_forward_to = 0;
    for (int i = 0; i < 3; ++i) ::sigaction(kForwarded[i], &saved_[i], nullptr);
  }
  Forwarding(const Forwarding&) = delete;
  Forwarding& operator=(const Forwarding&) = delete;

 private:
  bool on_;
  sigset_t old_mask_{};
  struct sigaction saved_[3] {};
};

// Reads what is there without blocking; false at end of file.
bool drain(int fd, std::string& out) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
}

// Waits for PID to exit while collecting OUT_FD (when >= 0); false when the
// deadline passed first.
bool wait_for(pid_t pid, int out_fd, std::optional<std::chrono::milliseconds> timeout,
              const std::function<void()>& on_tick, std::string& out) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  int pidfd = int(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    // No pidfd (seccomp, a kernel without it): read to the end, then the
    // caller's waitpid blocks.
    if (out_fd >= 0) {
      ::fcntl(out_fd, F_SETFL, ::fcntl(out_fd, F_GETFL) & ~O_NONBLOCK);
      while (drain(out_fd, out)) {
      }
    }
    return true;
  }
  bool exited = false;
  bool open = out_fd >= 0;
  while (!exited) {
    pollfd p[2] = {{pidfd, POLLIN, 0}, {out_fd, POLLIN, 0}};
    int wait_ms = -1;
    if (timeout) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      wait_ms = int(std::clamp<int64_t>(left.count() + 1, 1, INT32_MAX));
    }
    if (on_tick && (wait_ms < 0 || wait_ms > kWaitTick.count())) wait_ms = int(kWaitTick.count());
    int r = ::poll(p, open ? 2 : 1, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (r == 0 && on_tick) on_tick();
    if (open && p[1].revents) open = drain(out_fd, out);
    if (p[0].revents) exited = true;
  }
  ::close(pidfd);
  // What the child wrote before it exited; a grandchild that kept the pipe
  // open does not hold us.
  if (exited && open) drain(out_fd, out);
  return exited;
}

// What a child wrote on the relay pipe of its stderr, passed on to ours.
void relay(int fd) {
  if (fd < 0) return;
  std::string text;
  drain(fd, text);
  ::close(fd);
  for (size_t off = 0; off < text.size();) {
    ssize_t n = ::write(2, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += size_t(n);
  }
}

// RELAY_STDERR: the child's stderr is a pipe whose end we read, not our own
// stderr, so a child abandoned in the kernel holds no stream of the caller's.
Result<Outcome> run(const Root& root, const Options& options, bool forward_signals,
                    bool relay_stderr, const std::function<void(int out_fd)>& child) {
  int pipe_fds[2] = {-1, -1};
  if (options.capture && ::pipe2(pipe_fds, O_CLOEXEC) != 0)
    return fail("pipe", "cannot create a pipe for a child process", errno);
  int err_fds[2] = {-1, -1};
  if (relay_stderr && ::pipe2(err_fds, O_CLOEXEC) != 0) {
    int e = errno;
    if (pipe_fds[0] >= 0) ::close(pipe_fds[0]), ::close(pipe_fds[1]);
    return fail("pipe", "cannot create a pipe for a child process", e);
  }
  Forwarding fwd(forward_signals);
  pid_t pid = ::fork();
  if (pid == 0) {
    fwd.child_reset();
    if (err_fds[1] >= 0 && ::dup2(err_fds[1], 2) < 0) ::_exit(126);
    if (options.close_fds) close_except(options.keep_fd, pipe_fds[1]);
    if (options.keep_fd >= 0) {
      int flags = ::fcntl(options.keep_fd, F_GETFD);
      if (flags < 0 || ::fcntl(options.keep_fd, F_SETFD, flags & ~FD_CLOEXEC) < 0) ::_exit(126);
    }
    child(pipe_fds[1]);
    ::_exit(126);
  }
  const int fork_err = errno;
  fwd.started(pid);
  if (pipe_fds[1] >= 0) ::close(pipe_fds[1]);
  if (err_fds[1] >= 0) ::close(err_fds[1]);
  if (pid < 0) {
    if (pipe_fds[0] >= 0) ::close(pipe_fds[0]);
    if (err_fds[0] >= 0) ::close(err_fds[0]);
    return fail("fork", "cannot start a child process", fork_err);
  }
  Outcome oc;
  oc.pid = pid;
  if (pipe_fds[0] >= 0) ::fcntl(pipe_fds[0], F_SETFL, ::fcntl(pipe_fds[0], F_GETFL) | O_NONBLOCK);
  if (err_fds[0] >= 0) ::fcntl(err_fds[0], F_SETFL, ::fcntl(err_fds[0], F_GETFL) | O_NONBLOCK);
  const bool exited = wait_for(pid, pipe_fds[0], options.timeout, options.on_tick, oc.out);
  if (pipe_fds[0] >= 0) ::close(pipe_fds[0]);
  relay(err_fds[0]);
  int status = 0;
  if (!exited) {
    oc.finished = false;
    std::tie(oc.wchan, oc.wchan_source) = wait_channel(root, pid);
    if (options.on_timeout == OnTimeout::kill) {
      ::kill(pid, SIGKILL);
      reap(pid, status);
      oc.killed = true;
    }
    return oc;
  }
  reap(pid, status);
  oc.code = exit_code(status);
  return oc;
}

}  // namespace

Result<Outcome> call(const Root& root, const std::function<int(int out_fd)>& fn,
                     const Options& options) {
  // None of the caller's streams either: a script capturing pt's output
  // (out=$(pt-bind ... 2>&1)) would wait for the pipe's end as long as an
  // abandoned child is stuck, long after pt itself exited. Its stderr comes
  // back through the relay.
  return run(root, options, false, true, [&](int out_fd) {
    if (int null = ::open("/dev/null", O_RDWR | O_CLOEXEC); null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      if (null > 2) ::close(null);
    }
    ::_exit(fn(out_fd));
  });
}

Result<Outcome> exec(const Root& root, const std::vector<std::string>& argv,
                     const Options& options) {
  if (argv.empty()) return fail("exec", "no program to run", EINVAL);
  // argv and the environment are built before fork(): the child only execs.
  std::vector<std::string> env_text;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    bool replaced = std::any_of(options.env.begin(), options.env.end(), [&](const auto& kv) {
      return entry.size() > kv.first.size() && entry.starts_with(kv.first) &&
             entry[kv.first.size()] == '=';
    });
    if (!replaced) env_text.emplace_back(entry);
  }
  for (const auto& [k, v] : options.env) env_text.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  const std::string prefix = options.exec_failure_prefix.value_or("") + argv[0] + ": ";
  const bool report = options.exec_failure_prefix.has_value();
  return run(root, options, options.forward_signals, false, [&](int out_fd) {
    if (out_fd >= 0 && ::dup2(out_fd, 1) < 0) ::_exit(126);
    if (options.cwd && ::chdir(options.cwd->c_str()) != 0) {
      if (report) {
        const std::string msg =
            prefix + "cannot enter " + *options.cwd + ": " + std::strerror(errno) + "\n";
        [[maybe_unused]] auto n = ::write(2, msg.data(), msg.size());
      }
      ::_exit(126);
    }
    if (options.search_path)
      ::execvpe(args[0], args.data(), envp.data());
    else
      ::execve(args[0], args.data(), envp.data());
    int e = errno;
    if (report) {
      // glibc's strerror returns its static table's text for a known errno.
      const std::string msg = prefix + std::strerror(e) + "\n";
      [[maybe_unused]] auto n = ::write(2, msg.data(), msg.size());
    }
    ::_exit(e == ENOENT ? 127 : 126);
  });
}

std::pair<std::string, std::string> wait_channel(const Root& root, pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::string wchan = read_attr(root, proc + "/wchan").value_or("");
  if (!wchan.empty() && wchan != "0") return {wchan, proc + "/wchan"};
  std::istringstream stack(read_attr(root, proc + "/stack").value_or(""));
  for (std::string line; std::getline(stack, line);) {
    // "[<0>] wait_for_partner+0x55/0xa0"
    auto sp = line.find("] ");
    if (sp == std::string::npos) continue;
    std::string fn = line.substr(sp + 2, line.find('+', sp) - sp - 2);
    if (fn.empty() || fn.find("schedule") != std::string::npos) continue;
    return {fn, proc + "/stack"};
  }
  return {"unknown", proc + "/wchan"};
}

bool exited_within(pid_t pid, std::chrono::milliseconds timeout) {
  int pidfd = int(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return true;  // no pidfd: the caller's waitpid blocks instead
  pollfd p{pidfd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, int(std::clamp<int64_t>(timeout.count(), 1, INT32_MAX)));
  } while (r < 0 && errno == EINTR);
  ::close(pidfd);
  return r != 0;
}

std::string seconds_text(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", double(d.count()) / 1000.0);
  return buf;
}

}  // namespace pt::spawn
