#include "pt/vgaarb.hpp"

#include "pt/spawn.hpp"
#include "pt/try.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <deque>

namespace pt {

bool has_decode_callback(const std::string& driver) {
  return std::find(std::begin(kDecodeCallbackDrivers), std::end(kDecodeCallbackDrivers), driver) !=
         std::end(kDecodeCallbackDrivers);
}

Result<vga::Status> Arbiter::status(const PciAddress& dev) {
  auto line = PT_TRY(status_line(dev));
  auto st = vga::parse_status(line);
  if (!st)
    return fail(
        kArbiterPath,
        "unexpected status line " + show_value(line) +
            " (expected count:N,PCI:...,decodes=...,owns=...,locks=...(N:N)); please report it",
        EPROTO);
  return *st;
}

namespace {

std::string target_of(const PciAddress& dev) {
  return "target PCI:" + dev.str();
}

}  // namespace

KernelArbiter::~KernelArbiter() {
  if (fd_ >= 0) ::close(fd_);
}

Status KernelArbiter::open() {
  if (fd_ >= 0) return {};
  if (checked_) return std::unexpected(unavailable_);
  checked_ = true;
  const std::string real = root_.path(kArbiterPath);
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0) {
    int e = errno;
    unavailable_ = Error{
        e, kArbiterPath,
        e == ENOENT ? "no VGA arbiter: the kernel has no /dev/vga_arbiter (CONFIG_VGA_ARB off, or "
                      "devtmpfs not mounted on /dev)"
                    : "cannot inspect the VGA arbiter",
        Exit::failed};
    return std::unexpected(unavailable_);
  }
  if (!S_ISCHR(st.st_mode)) {
    unavailable_ =
        Error{0, root_.is_real() ? std::string(kArbiterPath) : real,
              "is not a character device (a file in a --root tree, not the kernel's arbiter); the "
              "arbiter is unavailable",
              Exit::failed};
    return std::unexpected(unavailable_);
  }
  // O_CLOEXEC: a command run under `lock` must never inherit the descriptor,
  // or the lock would outlive pt-vgaarb.
  fd_ = ::open(real.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) {
    int e = errno;
    unavailable_ =
        Error{e, kArbiterPath,
              e == EACCES || e == EPERM ? "cannot open the VGA arbiter; pt-vgaarb must run as root"
                                        : "cannot open the VGA arbiter",
              Exit::failed};
    return std::unexpected(unavailable_);
  }
  return {};
}

Status KernelArbiter::available() {
  return open();
}

Status KernelArbiter::write(std::string_view text, bool report) {
  auto start = std::chrono::steady_clock::now();
  ssize_t n;
  do {
    n = ::write(fd_, text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  int e = n < 0 ? errno : 0;
  if (observer_ && report)
    observer_(WriteEvent{kArbiterPath, std::string(text),
                         std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - start),
                         e != 0, e, false, e ? Exit::failed : Exit::ok});
  if (e) {
    std::string why = e == ENODEV ? "; the kernel does not know it as a VGA device (or it is gone)"
                      : e == EPROTO ? "; the kernel did not understand the command"
                      : e == EINVAL ? "; nothing of that is locked through this descriptor"
                                    : "";
    return fail(kArbiterPath, "writing " + show_value(text) + " failed" + why, e);
  }
  return {};
}

// "lock" waits in the kernel, uninterruptibly, while another client holds a
// conflicting lock. A forked child writes it on the shared open file (the
// lock belongs to the file, not the process) so that the wait is bounded by
// --timeout like every other blocking write.
Status KernelArbiter::write_timed(std::string_view text) {
  auto start = std::chrono::steady_clock::now();
  const std::string data(text);
  auto oc = spawn::call(
      root_,
      [&](int) {
        ssize_t n;
        do {
          n = ::write(fd_, data.data(), data.size());
        } while (n < 0 && errno == EINTR);
        return n < 0 ? errno : 0;
      },
      {.timeout = timeout_, .keep_fd = fd_});
  if (!oc) return fail(kArbiterPath, "cannot fork a writer process", oc.error().err);
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  if (!oc->finished) {
    if (observer_) observer_(WriteEvent{kArbiterPath, data, elapsed, true, 0, true, Exit::timeout});
    return fail(
        kArbiterPath,
        "writing " + show_value(text) + " did not return within " + spawn::seconds_text(timeout_) +
            " s: another client holds a conflicting VGA lock (writer pid " +
            std::to_string(oc->pid) +
            "). The kernel drops a lock when its holder closes the arbiter; find it with 'fuser " +
            std::string(kArbiterPath) + "'",
        0, Exit::timeout);
  }
  int e = oc->code;
  if (observer_) observer_(WriteEvent{kArbiterPath, data, elapsed, e != 0, e, false, e ? Exit::failed : Exit::ok});
  if (e) return fail(kArbiterPath, "writing " + show_value(text) + " failed", e);
  return {};
}

Result<std::string> KernelArbiter::status_line(const PciAddress& dev) {
  PT_TRY(open());
  PT_TRY(write(target_of(dev), false));
  // One read: every read() returns the line from its start, so a loop of
  // reads (or cat) never ends. The kernel formats it into 1024 bytes.
  char buf[1024];
  ssize_t n;
  do {
    n = ::read(fd_, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail(kArbiterPath, "cannot read the arbiter's status", errno);
  return std::string(buf, size_t(n));
}

Status KernelArbiter::command(const PciAddress& dev, std::string_view text) {
  if (auto r = open(); !r) return r;
  if (auto r = write(target_of(dev), true); !r) return r;
  if (text.starts_with("lock ")) return write_timed(text);
  return write(text, true);
}

Result<std::vector<std::string>> kmsg_vgaarb_lines(const Root& root, const PciAddress& dev,
                                                   size_t max) {
  const std::string real = root.path("/dev/kmsg");
  int fd = ::open(real.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return fail(root.is_real() ? std::string("/dev/kmsg") : real,
                e == EACCES || e == EPERM
                    ? "the kernel log is not readable (root, or kernel.dmesg_restrict=0, is "
                      "needed)"
                    : "the kernel log is not readable",
                e);
  }
  const std::string name = dev.str();
  std::deque<std::string> out;
  std::string pending;  // a regular file (a --root tree) reads in blocks, not records
  auto take = [&](std::string_view rec) {
    // "PRIO,SEQ,USEC,FLAGS;MESSAGE"; continuation lines start with a space.
    if (rec.empty() || rec.front() == ' ') return;
    auto semi = rec.find(';');
    std::string_view msg = semi == std::string_view::npos ? rec : rec.substr(semi + 1);
    if (msg.find("vgaarb") == std::string_view::npos || msg.find(name) == std::string_view::npos)
      return;
    out.emplace_back(msg);
    if (out.size() > max) out.pop_front();
  };
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EPIPE) continue;  // EPIPE: records overwritten while reading
      break;                                           // EAGAIN: the end of the log
    }
    if (n == 0) break;
    pending.append(buf, size_t(n));
    size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      take(std::string_view(pending).substr(0, pos));
      pending.erase(0, pos + 1);
    }
  }
  if (!pending.empty()) take(pending);
  ::close(fd);
  return std::vector<std::string>(out.begin(), out.end());
}

}  // namespace pt
