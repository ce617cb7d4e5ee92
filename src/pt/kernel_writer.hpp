// Writing kernel attribute files: the seam every change to the system goes
// through.
//
// Writes go through the SysfsWriter interface: the kernel implementation
// below, or a simulated kernel in the test fixture that applies
// bind/unbind/probe side effects. Reads live in sysfs.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "pt/error.hpp"
#include "pt/root.hpp"
#include "pt/wait.hpp"

namespace pt {

enum class WriteKind {
  attribute,  // returns promptly (driver_override, decodes)
  blocking,   // may block inside a driver (unbind, bind, drivers_probe, reset, remove, rescan)
};

struct WriteEvent {
  std::string path;  // absolute, without the root prefix
  std::string value;
  std::chrono::microseconds elapsed{0};
  bool failed = false;
  int err = 0;             // errno when a system call failed
  bool timed_out = false;  // abandoned past --timeout
  Exit exit = Exit::ok;    // failed: the exit status the error carries (pt(7))
};

class SysfsWriter {
 public:
  virtual ~SysfsWriter() = default;
  // PATH is absolute and unprefixed ("/sys/bus/pci/drivers_probe").
  virtual Status write(const std::string& path, std::string_view value, WriteKind kind) = 0;
  // One 16-bit config register of DEVICE ("0000:01:00.0"), through libpci.
  virtual Status write_config(const std::string& device, uint16_t offset, uint16_t value) = 0;
};

// Writes to the files under a Root. Blocking writes run in a forked child so
// that a write stuck in a driver can be abandoned: the parent reports it and
// exits, the child stays in the kernel until the driver lets go.
// ON_WAIT hears of each blocking write as a wait (what it waits for: "nvidia
// to release 0000:01:00.0 (unbind)").
class KernelWriter final : public SysfsWriter {
 public:
  KernelWriter(Root root, std::chrono::milliseconds timeout, WaitObserver on_wait = nullptr)
      : root_(std::move(root)), timeout_(timeout), on_wait_(std::move(on_wait)) {}
  Status write(const std::string& path, std::string_view value, WriteKind kind) override;
  Status write_config(const std::string& device, uint16_t offset, uint16_t value) override;

 private:
  Root root_;
  std::chrono::milliseconds timeout_;
  WaitObserver on_wait_;
};

// What a blocking write of VALUE to PATH waits for, as the words after
// "waiting for": "nvidia to release 0000:01:00.0 (unbind)".
std::string write_wait_what(const std::string& path, std::string_view value);

// Wraps another writer to time each write and report it to an observer (-v).
class ObservedWriter final : public SysfsWriter {
 public:
  using Observer = std::function<void(const WriteEvent&)>;
  ObservedWriter(SysfsWriter& inner, Observer observer)
      : inner_(inner), observer_(std::move(observer)) {}
  Status write(const std::string& path, std::string_view value, WriteKind kind) override;
  Status write_config(const std::string& device, uint16_t offset, uint16_t value) override;

 private:
  SysfsWriter& inner_;
  Observer observer_;
};

// "@0x03e=0x0040": how a config write is shown in logs and plans.
std::string config_value(uint16_t offset, uint16_t value);

}  // namespace pt
