#include "pt/system.hpp"

#include <algorithm>

namespace pt {

Result<std::unique_ptr<System>> open_system(const CommonOptions& o, const ObservedWriter::Observer& on_write) {
  auto root = Root::from_option(o.root);
  if (!root) return std::unexpected(root.error());
  if (o.timeout <= 0) return usage_error("--timeout", "must be a positive number of seconds");
  if (o.lock_timeout < 0) return usage_error("--lock-timeout", "must not be negative");
  // At least 1 ms, at most a day: poll() takes an int of milliseconds.
  auto to_ms = [](double s) {
    return std::chrono::milliseconds(std::clamp<int64_t>(int64_t(s * 1000.0), 1, 86400000));
  };
  auto sys = std::make_unique<System>(*root, to_ms(o.timeout), on_write);
  sys->modules = make_kmod_loader(*root);
  sys->ctx.root = *root;
  sys->ctx.writer = on_write ? static_cast<SysfsWriter*>(&sys->observed) : &sys->kernel;
  sys->ctx.modules = sys->modules.get();
  // Opened on first use: tools that never ask the arbiter never touch it.
  sys->arbiter = std::make_unique<KernelArbiter>(*root, to_ms(o.timeout), on_write);
  sys->ctx.arbiter = sys->arbiter.get();
  sys->ctx.timeout = to_ms(o.timeout);
  sys->ctx.lock_timeout = to_ms(o.lock_timeout);
  sys->ctx.dry_run = o.dry_run;
  return sys;
}

}  // namespace pt
