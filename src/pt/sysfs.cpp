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
#include "pt/spawn.hpp"

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

Result<std::string> read_file(const Root& root, std::string_view abs) {
  return read_file(root.path(abs));
}
std::optional<std::string> read_attr(const Root& root, std::string_view abs) {
  return read_attr(root.path(abs));
}
std::optional<std::string> link_basename(const Root& root, std::string_view abs) {
  return link_basename(root.path(abs));
}
std::optional<std::string> read_link(const Root& root, std::string_view abs) {
  return read_link(root.path(abs));
}
std::vector<std::string> list_dir(const Root& root, std::string_view abs) {
  return list_dir(root.path(abs));
}
bool path_exists(const Root& root, std::string_view abs) { return path_exists(root.path(abs)); }

Status KernelWriter::write(const std::string& path, std::string_view value, WriteKind kind) {
  const std::string real = root_.path(path);
  if (kind == WriteKind::attribute) {
    if (int e = write_all(real.c_str(), value.data(), value.size()))
      return std::unexpected(write_error(path, value, e));
    return {};
  }
  // The child only calls write(2); the path and value are ready before fork().
  const std::string data(value);
  auto oc = spawn::call(
      root_, [&](int) { return write_all(real.c_str(), data.data(), data.size()); },
      {.timeout = timeout_});
  if (!oc) return fail(path, "cannot fork a writer process", oc.error().err);
  if (!oc->finished)
    return fail(
        path,
        "writing " + show_value(value) + " did not return within " +
            spawn::seconds_text(timeout_) + " s; the kernel is waiting in " + oc->wchan +
            " (writer pid " + std::to_string(oc->pid) +
            "). A sysfs write cannot be cancelled: it completes when the driver lets go. Find "
            "what holds the device (pt-bind show) and stop it",
        0, Exit::timeout);
  if (oc->code) return std::unexpected(write_error(path, value, oc->code));
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


}  // namespace pt
