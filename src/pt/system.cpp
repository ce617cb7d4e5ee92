#include "pt/system.hpp"

#include <algorithm>

#include "pt/journald.hpp"
#include "pt/try.hpp"

namespace pt {

Result<std::unique_ptr<System>> open_system(const CommonOptions& o, const ObservedWriter::Observer& verbose) {
  auto root = Root::from_option(o.root);
  if (!root) return std::unexpected(root.error());
  // Every change goes to the journal as a record (journald.hpp), and to the
  // -v printer when there is one.
  const auto on_write = journald::step_logger(*root, o.tool.empty() ? "pt" : o.tool, verbose);
  const auto timeout = PT_TRY(duration(o.timeout, "--timeout", false));
  const auto lock_timeout = PT_TRY(duration(o.lock_timeout, "--lock-timeout", true));
  auto sys = std::make_unique<System>(*root, timeout, on_write, o.on_wait);
  sys->modules = make_kmod_loader(*root);
  sys->ctx.root = *root;
  sys->ctx.writer = &sys->observed;
  sys->ctx.modules = sys->modules.get();
  // Opened on first use: tools that never ask the arbiter never touch it.
  sys->arbiter = std::make_unique<KernelArbiter>(*root, timeout, on_write);
  sys->ctx.arbiter = sys->arbiter.get();
  sys->ctx.timeout = timeout;
  sys->ctx.lock_timeout = lock_timeout;
  sys->ctx.dry_run = o.dry_run;
  sys->ctx.on_wait = o.on_wait;
  return sys;
}

}  // namespace pt
