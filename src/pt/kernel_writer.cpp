#include "pt/kernel_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "pt/address.hpp"
#include "pt/pci.hpp"
#include "pt/spawn.hpp"
#include "pt/sysfs.hpp"

namespace pt {

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
  // The child only calls write(2); the path and value are ready before fork().
  const std::string data(value);
  WaitReport report(on_wait_, on_wait_ ? write_wait_what(path, value) : std::string(), path,
                    timeout_);
  auto oc =
      spawn::call(root_, [&](int) { return write_all(real.c_str(), data.data(), data.size()); },
                  {.timeout = timeout_, .on_tick = [&] { report.tick(); }});
  report.end(oc && oc->finished && !oc->code);
  if (!oc) return fail(path, "cannot fork a writer process", oc.error().err);
  if (!oc->finished) {
    auto stuck =
        fail(path,
             "writing " + show_value(value) + " did not return within " +
                 spawn::seconds_text(timeout_) + " s; the kernel is waiting in " + oc->wchan +
                 " (writer pid " + std::to_string(oc->pid) +
                 "). A sysfs write cannot be cancelled: it completes when the driver lets go. Find "
                 "what holds the device (pt-bind show) and stop it",
             0, Exit::timeout);
    stuck.error().writer = int(oc->pid);
    return stuck;
  }
  if (oc->code) return std::unexpected(write_error(path, value, oc->code));
  return {};
}

Status KernelWriter::write_config(const std::string& device, uint16_t offset, uint16_t value) {
  auto addr = parse_sysfs_name(device);
  if (!addr) return fail(device, "not a PCI address", EINVAL);
  return write_config_word(root_, *addr, offset, value);
}

std::string write_wait_what(const std::string& path, std::string_view value) {
  // /sys/bus/pci/drivers/DRIVER/ATTR or /sys/bus/pci/devices/DEV/ATTR
  const std::string v = printable(std::string(value));
  const auto slash = path.rfind('/');
  const std::string attr = path.substr(slash + 1);
  const std::string dir = path.substr(0, slash);
  const std::string parent = dir.substr(dir.rfind('/') + 1);
  const bool driver = dir.starts_with("/sys/bus/pci/drivers/");
  const bool device = dir.starts_with("/sys/bus/pci/devices/");
  if (driver && attr == "unbind") return printable(parent) + " to release " + v + " (unbind)";
  if (driver && attr == "bind") return printable(parent) + " to take " + v + " (bind)";
  if (path == "/sys/bus/pci/drivers_probe") return "a driver to probe " + v + " (drivers_probe)";
  if (device && attr == "reset") return printable(parent) + " to reset (reset)";
  if (device && attr == "remove") return "the kernel to remove " + printable(parent) + " (remove)";
  if (attr == "rescan") return "the kernel to rescan the PCI bus (rescan)";
  return "the kernel to take " + show_value(value) + " in " + printable(path);
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
                false,
                r ? Exit::ok : r.error().exit};
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
                !r && r.error().exit == Exit::timeout,
                r ? Exit::ok : r.error().exit};
  if (observer_) observer_(ev);
  return r;
}

}  // namespace pt
