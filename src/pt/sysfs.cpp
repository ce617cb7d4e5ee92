#include "pt/sysfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "pt/address.hpp"
#include "pt/pci.hpp"

namespace pt {

Result<std::string> read_file(const std::string& real_path) {
  int fd = ::open(real_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(real_path, "cannot open", errno);
  std::string out;
  char buf[4096];
  // Kernel attributes fit one page; keep reading only for ordinary files.
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return fail(real_path, "cannot read", e);
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
    if (size_t(n) < sizeof buf) break;
  }
  ::close(fd);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\0')) out.pop_back();
  return out;
}

std::optional<std::string> read_attr(const std::string& real_path) {
  auto r = read_file(real_path);
  if (!r) return std::nullopt;
  return std::move(*r);
}

std::optional<std::string> read_link(const std::string& real_path) {
  char buf[4096];
  ssize_t n = ::readlink(real_path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return std::nullopt;
  return std::string(buf, size_t(n));
}

std::optional<std::string> link_basename(const std::string& real_path) {
  auto target = read_link(real_path);
  if (!target) return std::nullopt;
  auto slash = target->rfind('/');
  return slash == std::string::npos ? *target : target->substr(slash + 1);
}

std::vector<std::string> list_dir(const std::string& real_path) {
  std::vector<std::string> out;
  DIR* d = ::opendir(real_path.c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0)))
      continue;
    out.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool path_exists(const std::string& real_path) {
  struct stat st {};
  return ::lstat(real_path.c_str(), &st) == 0;
}

std::string show_value(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out + "\"";
}

namespace {

int write_all(const char* path, const char* data, size_t len) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n;
  do {
    n = ::write(fd, data, len);
  } while (n < 0 && errno == EINTR);
  int e = n < 0 ? errno : (size_t(n) == len ? 0 : EIO);
  ::close(fd);
  return e;
}

Error write_error(const std::string& path, std::string_view value, int e) {
  std::string msg = "writing " + show_value(value) + " failed";
  if (e == EACCES || e == EPERM) msg += "; pt must run as root to change the system";
  return Error{e, path, msg, Exit::failed};
}

}  // namespace

Status KernelWriter::write(const std::string& path, std::string_view value, WriteKind kind) {
  const std::string real = root_.path(path);
  if (kind == WriteKind::attribute) {
    if (int e = write_all(real.c_str(), value.data(), value.size()))
      return std::unexpected(write_error(path, value, e));
    return {};
  }
  // Everything the child needs is prepared before fork(): it only calls
  // async-signal-safe functions.
  const std::string data(value);
  pid_t pid = ::fork();
  if (pid < 0) return fail(path, "cannot fork a writer process", errno);
  if (pid == 0) {
    // Drop inherited descriptors so a child stuck in the kernel does not keep
    // the pt lock held after the parent has given up on it.
    if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
      for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    // Nor the caller's stdin/stdout/stderr: a script capturing pt's output
    // (out=$(pt-bind ...)) would wait for the pipe's end as long as the child
    // is stuck, long after pt itself exited with 5.
    if (int null = ::open("/dev/null", O_RDWR); null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      if (null > 2) ::close(null);
    }
    ::_exit(write_all(real.c_str(), data.data(), data.size()));
  }
  const bool timed_out = !child_exited_within(pid, timeout_);
  if (timed_out) {
    std::string wchan =
        read_attr(root_.path("/proc/" + std::to_string(pid) + "/wchan")).value_or("");
    if (wchan.empty() || wchan == "0") wchan = "unknown";
    double secs = double(timeout_.count()) / 1000.0;
    char sbuf[32];
    std::snprintf(sbuf, sizeof sbuf, "%g", secs);
    return fail(
        path,
        "writing " + show_value(value) + " did not return within " + sbuf +
            " s; the kernel is waiting in " + wchan + " (writer pid " + std::to_string(pid) +
            "). A sysfs write cannot be cancelled: it completes when the driver lets go. Find "
            "what holds the device (pt-bind show) and stop it",
        0, Exit::timeout);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  int e = WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
  if (e) return std::unexpected(write_error(path, value, e));
  return {};
}

Status KernelWriter::write_config(const std::string& device, uint16_t offset, uint16_t value) {
  auto addr = parse_sysfs_name(device);
  if (!addr) return fail(device, "not a PCI address", EINVAL);
  return write_config_word(root_, *addr, offset, value);
}

std::string config_value(uint16_t offset, uint16_t value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "@0x%03x=0x%04x", offset, value);
  return buf;
}

Status ObservedWriter::write_config(const std::string& device, uint16_t offset, uint16_t value) {
  auto start = std::chrono::steady_clock::now();
  auto r = inner_.write_config(device, offset, value);
  WriteEvent ev{"/sys/bus/pci/devices/" + device + "/config",
                config_value(offset, value),
                std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - start),
                !r,
                r ? 0 : r.error().err,
                false};
  if (observer_) observer_(ev);
  return r;
}

Status ObservedWriter::write(const std::string& path, std::string_view value, WriteKind kind) {
  auto start = std::chrono::steady_clock::now();
  auto r = inner_.write(path, value, kind);
  WriteEvent ev{path,
                std::string(value),
                std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - start),
                !r,
                r ? 0 : r.error().err,
                !r && r.error().exit == Exit::timeout};
  if (observer_) observer_(ev);
  return r;
}

bool child_exited_within(pid_t pid, std::chrono::milliseconds timeout) {
  // glibc 2.36 declares pidfd_open without C linkage; the syscall works on 5.3+.
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

}  // namespace pt
