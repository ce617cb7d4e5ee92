// Reading kernel attribute files.
//
// Reads go straight to the (root-prefixed) files. Writes go through the
// SysfsWriter interface in kernel_writer.hpp, included here so that code
// reading and writing attributes needs one include.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pt/error.hpp"
#include "pt/kernel_writer.hpp"
#include "pt/root.hpp"

namespace pt {

// The most a read takes from one file. A kernel attribute is one page and
// /proc/self/mountinfo a few hundred lines; a larger file is not one of them
// (a fixture, a tampered --root tree) and is refused, not read on forever.
inline constexpr size_t kMaxReadBytes = 1 << 20;

// Whole-file read; trailing newlines and NULs removed. Only a regular file is
// read (sysfs and procfs attributes are), opened without blocking, so a FIFO
// or device planted where an attribute belongs is an error, not a hang; so
// is a file over kMaxReadBytes.
Result<std::string> read_file(const std::string& real_path);
std::optional<std::string> read_attr(const std::string& real_path);
// The same rules for a file that is not an attribute: every byte, untrimmed.
Result<std::string> read_bytes(const std::string& real_path);
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

// A decimal index the kernel writes in a name or attribute ("12" of
// iommu_groups/12, "0" of card0): digits only, no sign, at most INT32_MAX so
// it fits every int it becomes; none for anything else ("-1", 20 digits).
std::optional<uint32_t> parse_index(std::string_view text);

// How a value is shown in messages: quoted, with a newline made visible.
std::string show_value(std::string_view value);

}  // namespace pt
