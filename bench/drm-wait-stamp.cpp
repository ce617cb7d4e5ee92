// pt-bench-drm-wait: runs a command (pt-drm wait DEV) and reports how long
// after a DRM card node appears in /dev/dri the command exits, both on the
// monotonic clock. Used in the guest by bench/drm-wait-guest.sh.
//
//   pt-bench-drm-wait CMD [ARG...]
// prints "BENCH wait node_ms=N exit_ms=N latency_ms=N rc=N" (times since start).
#include <poll.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace {
double now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: pt-bench-drm-wait CMD [ARG...]\n");
    return 2;
  }
  int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (ino < 0 || inotify_add_watch(ino, "/dev/dri", IN_CREATE) < 0) {
    std::perror("inotify /dev/dri");
    return 1;
  }
  double t0 = now_ms();
  pid_t pid = fork();
  if (pid == 0) {
    execvp(argv[1], argv + 1);
    _exit(127);
  }
  int pidfd = int(syscall(SYS_pidfd_open, pid, 0));
  double node = -1, exited = -1;
  while (exited < 0) {
    pollfd fds[2] = {{ino, POLLIN, 0}, {pidfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    double t = now_ms();
    if (fds[0].revents & POLLIN) {
      alignas(inotify_event) char buf[4096];
      ssize_t n = read(ino, buf, sizeof buf);
      for (ssize_t off = 0; off < n;) {
        auto* ev = reinterpret_cast<inotify_event*>(buf + off);
        if (node < 0 && ev->len && std::strncmp(ev->name, "card", 4) == 0) node = t;
        off += ssize_t(sizeof(inotify_event) + ev->len);
      }
    }
    if (fds[1].revents & POLLIN) exited = t;
  }
  int st = 0;
  waitpid(pid, &st, 0);
  std::printf(
      "BENCH wait node_ms=%.2f exit_ms=%.2f latency_ms=%.2f rc=%d node_monotonic_ms=%.3f "
      "exit_monotonic_ms=%.3f\n",
      node < 0 ? -1 : node - t0, exited - t0, node < 0 ? -1 : exited - node,
      WIFEXITED(st) ? WEXITSTATUS(st) : -1, node, exited);
  return 0;
}
