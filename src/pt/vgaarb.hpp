// The kernel's VGA arbiter (/dev/vga_arbiter) behind a small interface: the
// kernel's device, or a simulated arbiter in the tests.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "pt/address.hpp"
#include "pt/error.hpp"
#include "pt/pci.hpp"
#include "pt/root.hpp"
#include "pt/sysfs.hpp"
#include "pt/vgaarb_status.hpp"

namespace pt {

inline constexpr const char* kArbiterPath = "/dev/vga_arbiter";

// Drivers known to register a decode callback (vga_client_register with a
// set_decode function): the arbiter ignores user space's decodes for them.
inline constexpr const char* kDecodeCallbackDrivers[] = {"vfio-pci", "i915", "amdgpu", "radeon",
                                                         "nouveau"};
bool has_decode_callback(const std::string& driver);

// The devices the arbiter manages: class 0300 (VGA compatible controller)
// and 0001 (VGA-compatible device from before class codes).
inline bool is_vga_class(const Device& d) {
  return d.class_id() == 0x0300 || d.class_id() == 0x0001;
}

class Arbiter {
 public:
  virtual ~Arbiter() = default;
  // Nothing when the arbiter can be used; otherwise an Error that names the
  // path and says why not.
  virtual Status available() = 0;
  // Targets DEV, then reads its status line with one buffered read().
  virtual Result<std::string> status_line(const PciAddress& dev) = 0;
  // Targets DEV, then writes one command: "decodes io+mem", "lock io+mem", "unlock io+mem".
  virtual Status command(const PciAddress& dev, std::string_view text) = 0;

  // status_line, parsed; a line no supported kernel prints is an error.
  Result<vga::Status> status(const PciAddress& dev);
};

// The kernel's device at ROOT/dev/vga_arbiter, opened O_CLOEXEC on first use
// and kept open: the kernel ties a lock to the open file and drops it when
// the file closes. A regular file there (a fixture tree) is "unavailable".
class KernelArbiter final : public Arbiter {
 public:
  KernelArbiter(Root root, std::chrono::milliseconds timeout,
                ObservedWriter::Observer observer = nullptr)
      : root_(std::move(root)), timeout_(timeout), observer_(std::move(observer)) {}
  ~KernelArbiter() override;
  KernelArbiter(const KernelArbiter&) = delete;
  KernelArbiter& operator=(const KernelArbiter&) = delete;

  Status available() override;
  Result<std::string> status_line(const PciAddress& dev) override;
  Status command(const PciAddress& dev, std::string_view text) override;

 private:
  Status open();
  // REPORT: pass it to the -v observer (commands, and the target before
  // one; not the target writes of plain reads, which change nothing).
  Status write(std::string_view text, bool report);
  Status write_timed(std::string_view text);
  Root root_;
  std::chrono::milliseconds timeout_;
  ObservedWriter::Observer observer_;
  int fd_ = -1;
  bool checked_ = false;
  Error unavailable_;
};

// The kernel log's last lines about DEV's VGA arbitration ("vgaarb" and the
// device's name), oldest first, at most MAX. From ROOT/dev/kmsg; an error
// when it cannot be read (not root, no such file).
Result<std::vector<std::string>> kmsg_vgaarb_lines(const Root& root, const PciAddress& dev,
                                                   size_t max = 10);

}  // namespace pt
