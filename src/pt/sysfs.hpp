// Reading and writing kernel attribute files.
//
// Reads go straight to the (root-prefixed) files. Writes go through the
// SysfsWriter interface: the kernel implementation below, or a simulated
// kernel in the test fixture that applies bind/unbind/probe side effects.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt {

// Whole-file read with one buffered read(); trailing newline removed.
Result<std::string> read_file(const std::string& real_path);
std::optional<std::string> read_attr(const std::string& real_path);
// Basename of a symlink's target ("driver" -> "vfio-pci"); nullopt if no link.
std::optional<std::string> link_basename(const std::string& real_path);
std::optional<std::string> read_link(const std::string& real_path);
// Sorted directory entries without "." and ".."; empty when absent.
std::vector<std::string> list_dir(const std::string& real_path);
bool path_exists(const std::string& real_path);

// The same reads of an absolute system path ("/sys/bus/pci/devices") under
// ROOT: the seam every new read goes through.
Result<std::string> read_file(const Root& root, std::string_view abs);
std::optional<std::string> read_attr(const Root& root, std::string_view abs);
std::optional<std::string> link_basename(const Root& root, std::string_view abs);
std::optional<std::string> read_link(const Root& root, std::string_view abs);
std::vector<std::string> list_dir(const Root& root, std::string_view abs);
bool path_exists(const Root& root, std::string_view abs);

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
class KernelWriter final : public SysfsWriter {
 public:
  KernelWriter(Root root, std::chrono::milliseconds timeout)
      : root_(std::move(root)), timeout_(timeout) {}
  Status write(const std::string& path, std::string_view value, WriteKind kind) override;
  Status write_config(const std::string& device, uint16_t offset, uint16_t value) override;

 private:
  Root root_;
  std::chrono::milliseconds timeout_;
};

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

// How a value is shown in messages: quoted, with a newline made visible.
std::string show_value(std::string_view value);

}  // namespace pt
