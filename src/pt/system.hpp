// The running system (or a --root tree) as every tool opens it from the
// shared options: root, kernel writer (observed for -v), module loader.
#pragma once

#include <memory>

#include "pt/context.hpp"
#include "pt/modules.hpp"
#include "pt/sysfs.hpp"
#include "pt/vgaarb.hpp"

namespace pt {

struct System {
  KernelWriter kernel;
  ObservedWriter observed;
  std::unique_ptr<ModuleLoader> modules;
  std::unique_ptr<Arbiter> arbiter;
  Context ctx;
  System(const Root& root, std::chrono::milliseconds timeout,
         const ObservedWriter::Observer& on_write, const WaitObserver& on_wait = nullptr)
      : kernel(root, timeout, on_wait), observed(kernel, on_write) {}
};

Result<std::unique_ptr<System>> open_system(const CommonOptions& options, const ObservedWriter::Observer& on_write);

}  // namespace pt
