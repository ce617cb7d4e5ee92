// The --root seam: every path the kit touches under /sys, /dev, /proc, /run,
// /etc and /lib/modules goes through Root::path so that a fixture tree or a
// chroot can stand in for the running system.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pt/error.hpp"

namespace pt {

class Root {
 public:
  Root() = default;
  // DIR must be an existing directory; "/" or an empty string means the real root.
  static Result<Root> open(std::string_view dir);
  // --root wins over PT_ROOT; neither means the real root. An empty --root
  // is a usage error.
  static Result<Root> from_option(const std::optional<std::string>& option);

  // "/sys/bus/pci" -> "DIR/sys/bus/pci". ABS must be absolute.
  std::string path(std::string_view abs) const;
  // The inverse: a path under DIR back to its absolute name, for messages and
  // for comparing with kernel-reported links such as /proc/PID/fd targets.
  std::string unprefix(std::string_view real) const;
  bool is_real() const { return prefix_.empty(); }
  const std::string& dir() const { return prefix_; }

 private:
  std::string prefix_;  // empty for the real root, otherwise without trailing '/'
};

}  // namespace pt
