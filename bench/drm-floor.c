/* pt-bench-drm-floor: the least a waiter for a DRM card can do, in plain C
 * with libdrm and nothing else, for comparing pt-drm wait against.
 *
 *   pt-bench-drm-floor wait CARD   block on kernel uevents (a raw netlink
 *                                  socket) and inotify on /dev/dri; on each
 *                                  event try to open /dev/dri/CARD; once it
 *                                  opens, drmModeGetResources, close, exit.
 *                                  The node exists a moment before the minor
 *                                  can be opened (drm_minor_register creates
 *                                  the device, then publishes the minor), so
 *                                  an open in between fails with ENODEV and
 *                                  the waiter needs the next event, exactly as
 *                                  pt-drm does.
 *   pt-bench-drm-floor read CARD N open + drmModeGetResources + close, N times,
 *                                  on a card that exists
 *
 * Each phase's end is printed on CLOCK_MONOTONIC (ms) to stderr as
 * "FLOOR key=value ...", so the caller can split the time after the node
 * appears into wake-up, open, GetResources, close (where the kernel runs the
 * device's lastclose when this was its last open file) and process exit. */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One open + GetResources + close; prints the phase ends. FD >= 0: already
 * opened at T0 (the waiter's successful try). */
static int read_once(const char* node, const char* tag, int fd, double t0) {
  if (fd < 0) {
    t0 = now_ms();
    fd = open(node, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  }
  double t_open = now_ms();
  if (fd < 0) {
    perror(node);
    return 1;
  }
  drmModeRes* res = drmModeGetResources(fd);
  double t_res = now_ms();
  int ok = res != NULL;
  if (res) drmModeFreeResources(res);
  close(fd);
  double t_close = now_ms();
  fprintf(stderr,
          "FLOOR %s start=%.3f open_ms=%.2f getres_ms=%.2f close_ms=%.2f kms=%d "
          "close_end=%.3f\n",
          tag, t0, t_open - t0, t_res - t_open, t_close - t_res, ok, t_close);
  return ok ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: pt-bench-drm-floor wait CARD | read CARD N\n");
    return 2;
  }
  char node[64];
  snprintf(node, sizeof node, "/dev/dri/%s", argv[2]);
  if (strcmp(argv[1], "read") == 0) {
    int n = argc > 3 ? atoi(argv[3]) : 1;
    int rc = 0;
    for (int i = 0; i < n; ++i) rc |= read_once(node, "read", -1, 0);
    return rc;
  }
  int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (ino < 0 || inotify_add_watch(ino, "/dev/dri", IN_CREATE) < 0) {
    perror("inotify /dev/dri");
    return 1;
  }
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1};
  if (nl < 0 || bind(nl, (struct sockaddr*)&sa, sizeof sa) < 0) {
    perror("netlink uevent");
    return 1;
  }
  int tries = 0, fd;
  double t_try;
  for (;;) {
    ++tries;
    t_try = now_ms();
    fd = open(node, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) break;
    if (errno != ENOENT && errno != ENODEV && errno != ENXIO) {
      perror(node);
      return 1;
    }
    struct pollfd fds[2] = {{ino, POLLIN, 0}, {nl, POLLIN, 0}};
    poll(fds, 2, -1);
    char buf[8192];
    while (read(ino, buf, sizeof buf) > 0) {
    }
    while (recv(nl, buf, sizeof buf, 0) > 0) {
    }
  }
  fprintf(stderr, "FLOOR woke=%.3f tries=%d\n", t_try, tries);
  return read_once(node, "wait", fd, t_try);
}
