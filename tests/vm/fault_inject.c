/* pt-fault.so: an LD_PRELOAD shim that makes chosen write(2) calls fail.
 *
 *   PT_FAULT="<path-suffix>=<value-prefix>:<ERRNO>[@N][;<rule>...]"
 *
 * A write() on a descriptor whose /proc/self/fd link ends with path-suffix,
 * with a buffer that starts with value-prefix, returns -1 with errno set to
 * ERRNO (a name such as EIO or a number) and writes nothing. The value prefix
 * may contain ':' (the errno is after the last one) and may be empty.
 *
 *   LD_PRELOAD=/lib/pt-fault.so \
 *   PT_FAULT="/sys/bus/pci/drivers_probe=0000:01:00.0:EIO" pt-bind detach 01:00
 *
 * With "@N" only the first N matching writes fail, counted across the whole
 * process (its forked children included, through files in a directory the
 * library makes when it loads), so a rollback that repeats the write gets
 * through: "...:EIO@1" is a transient fault.
 *
 * pwrite(2) and pwrite64 are matched the same way (libpci writes config
 * space with them); use an empty value prefix for binary data.
 *
 * PT_FAULT_VERBOSE=1 reports each injected failure on stderr.
 *
 * The rules are parsed once when the library loads, so the write() wrapper
 * only calls readlink() and memcmp(): it stays async-signal-safe and works
 * in a child forked by a multithreaded parent.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_RULES 8
#define MAX_TEXT 256

struct rule {
  char suffix[MAX_TEXT];
  size_t suffix_len;
  char prefix[MAX_TEXT];
  size_t prefix_len;
  int err;
  int times; /* 0: every matching write */
};

static struct rule rules[MAX_RULES];
static int nrules;
static int verbose;
static char state_dir[64];
static pid_t state_owner;
static ssize_t (*real_write)(int, const void*, size_t);

static const struct {
  const char* name;
  int value;
} errnos[] = {
    {"EPERM", EPERM},   {"ENOENT", ENOENT},   {"EINTR", EINTR},     {"EIO", EIO},
    {"ENXIO", ENXIO},   {"E2BIG", E2BIG},     {"EAGAIN", EAGAIN},   {"ENOMEM", ENOMEM},
    {"EACCES", EACCES}, {"EFAULT", EFAULT},   {"EBUSY", EBUSY},     {"EEXIST", EEXIST},
    {"ENODEV", ENODEV}, {"EINVAL", EINVAL},   {"ENOSPC", ENOSPC},   {"EROFS", EROFS},
    {"ENOSYS", ENOSYS}, {"ETIMEDOUT", ETIMEDOUT}, {"EOPNOTSUPP", EOPNOTSUPP},
    {"ENOTSUP", ENOTSUP}, {"ENOTTY", ENOTTY}, {"ESRCH", ESRCH},     {"EDEADLK", EDEADLK},
};

static int parse_errno(const char* s) {
  for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; ++i)
    if (strcmp(s, errnos[i].name) == 0) return errnos[i].value;
  char* end;
  long v = strtol(s, &end, 10);
  if (*s && !*end && v > 0 && v < 4096) return (int)v;
  return 0;
}

static void parse_rule(const char* text, size_t len) {
  char buf[2 * MAX_TEXT + 32];
  if (len == 0) return;
  if (len >= sizeof buf || nrules == MAX_RULES) {
    fprintf(stderr, "pt-fault: ignoring rule '%.*s' (too long or too many)\n", (int)len, text);
    return;
  }
  memcpy(buf, text, len);
  buf[len] = 0;
  char* eq = strchr(buf, '=');
  char* colon = strrchr(buf, ':');
  if (!eq || !colon || colon < eq) {
    fprintf(stderr, "pt-fault: ignoring rule '%s': want PATH-SUFFIX=VALUE-PREFIX:ERRNO\n", buf);
    return;
  }
  *eq = 0;
  *colon = 0;
  struct rule* r = &rules[nrules];
  r->times = 0;
  char* at = strchr(colon + 1, '@');
  if (at) {
    *at = 0;
    r->times = atoi(at + 1);
    if (r->times <= 0 || r->times > 999) {
      fprintf(stderr, "pt-fault: ignoring rule with bad count '@%s'\n", at + 1);
      return;
    }
  }
  int err = parse_errno(colon + 1);
  if (!err || strlen(buf) >= MAX_TEXT || strlen(eq + 1) >= MAX_TEXT) {
    fprintf(stderr, "pt-fault: ignoring rule with bad errno or long text: '%s'\n", colon + 1);
    return;
  }
  strcpy(r->suffix, buf);
  r->suffix_len = strlen(buf);
  strcpy(r->prefix, eq + 1);
  r->prefix_len = strlen(eq + 1);
  r->err = err;
  ++nrules;
}

__attribute__((constructor)) static void pt_fault_init(void) {
  real_write = (ssize_t(*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
  const char* v = getenv("PT_FAULT_VERBOSE");
  verbose = v && *v && strcmp(v, "0") != 0;
  const char* spec = getenv("PT_FAULT");
  if (!spec) return;
  while (*spec) {
    const char* end = strchr(spec, ';');
    size_t len = end ? (size_t)(end - spec) : strlen(spec);
    parse_rule(spec, len);
    spec += len;
    if (*spec == ';') ++spec;
  }
  for (int i = 0; i < nrules; ++i)
    if (rules[i].times) {
      strcpy(state_dir, "/tmp/pt-fault.XXXXXX");
      if (!mkdtemp(state_dir)) {
        fprintf(stderr, "pt-fault: cannot make a state directory under /tmp; counts are ignored\n");
        state_dir[0] = 0;
      }
      state_owner = getpid();
      break;
    }
}

__attribute__((destructor)) static void pt_fault_fini(void) {
  if (!state_dir[0] || getpid() != state_owner) return;
  char path[128];
  for (int i = 0; i < nrules; ++i)
    for (int k = 1; k <= rules[i].times; ++k) {
      snprintf(path, sizeof path, "%s/%d.%d", state_dir, i, k);
      unlink(path);
    }
  rmdir(state_dir);
}

/* Claims one of rule i's N failures; async-signal-safe (open with O_EXCL). */
static int claim(int i) {
  const struct rule* r = &rules[i];
  if (!r->times) return 1;
  if (!state_dir[0]) return 1;
  char path[128];
  size_t n = strlen(state_dir);
  memcpy(path, state_dir, n);
  path[n++] = '/';
  path[n++] = (char)('0' + i);
  path[n++] = '.';
  for (int k = 1; k <= r->times; ++k) {
    size_t m = n;
    char digits[4];
    int nd = 0, v = k;
    do {
      digits[nd++] = (char)('0' + v % 10);
      v /= 10;
    } while (v);
    while (nd) path[m++] = digits[--nd];
    path[m] = 0;
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) {
      close(fd);
      return 1;
    }
  }
  return 0;
}

static void say(const char* a, const char* b, const char* c) {
  /* write(2) on stderr through the raw syscall: async-signal-safe and not
   * subject to our own rules. */
  syscall(SYS_write, 2, a, strlen(a));
  syscall(SYS_write, 2, b, strlen(b));
  syscall(SYS_write, 2, c, strlen(c));
}

/* The errno rule matching (fd, buf, count) injects, or 0. */
static int injected(int fd, const void* buf, size_t count) {
  if (nrules == 0) return 0;
  char proc[40], path[4096];
  int n = 0;
  /* "/proc/self/fd/<fd>" without snprintf. */
  const char* head = "/proc/self/fd/";
  char digits[16];
  int nd = 0;
  unsigned u = (unsigned)fd;
  do {
    digits[nd++] = (char)('0' + u % 10);
    u /= 10;
  } while (u && nd < (int)sizeof digits);
  size_t hl = strlen(head);
  memcpy(proc, head, hl);
  n = (int)hl;
  while (nd) proc[n++] = digits[--nd];
  proc[n] = 0;
  ssize_t pl = readlink(proc, path, sizeof path - 1);
  if (pl <= 0) return 0;
  path[pl] = 0;
  for (int i = 0; i < nrules; ++i) {
    const struct rule* r = &rules[i];
    if ((size_t)pl < r->suffix_len ||
        memcmp(path + pl - r->suffix_len, r->suffix, r->suffix_len) != 0)
      continue;
    if (count < r->prefix_len || memcmp(buf, r->prefix, r->prefix_len) != 0) continue;
    if (!claim(i)) {
      if (verbose) say("pt-fault: letting write to ", path, " through (count used up)\n");
      continue;
    }
    if (verbose) say("pt-fault: failing write to ", path, " as injected\n");
    return r->err;
  }
  return 0;
}

ssize_t write(int fd, const void* buf, size_t count) {
  int err = injected(fd, buf, count);
  if (err) {
    errno = err;
    return -1;
  }
  if (!real_write) {
    return syscall(SYS_write, fd, buf, count);
  }
  return real_write(fd, buf, count);
}

/* pwrite(2) as well: libpci writes configuration space with it (pt-reset's
 * own resets). An empty value prefix matches any binary data. */
ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  int err = injected(fd, buf, count);
  if (err) {
    errno = err;
    return -1;
  }
  return syscall(SYS_pwrite64, fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void* buf, size_t count, off_t offset) {
  return pwrite(fd, buf, count, offset);
}
