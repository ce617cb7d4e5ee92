// Kernel modules behind a small interface: libkmod hard-codes nothing we can
// redirect at the syscall level, so tests use a fake that edits a fixture tree.
#pragma once

#include <memory>
#include <string>

#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt {

class ModuleLoader {
 public:
  virtual ~ModuleLoader() = default;
  // Makes the PCI driver DRIVER available, loading its module and the
  // module's dependencies when it is not registered yet.
  // MODULE, when known (from the journal), is tried before DRIVER itself.
  virtual Status ensure_driver(const std::string& driver, const std::string& module = "") = 0;
  // Whether a module for DRIVER could be found without loading anything.
  virtual bool knows(const std::string& driver) = 0;
};

// Whether DRIVER is registered with the PCI bus under ROOT.
bool driver_registered(const Root& root, const std::string& driver);
// The module that provides a registered driver ("vfio-pci" -> "vfio_pci"),
// or empty for built-in drivers.
std::string module_of_driver(const Root& root, const std::string& driver);

// libkmod opened on ROOT/lib/modules/<release>. Under a --root other than "/"
// it only looks modules up: inserting one would change the running kernel.
std::unique_ptr<ModuleLoader> make_kmod_loader(const Root& root);

}  // namespace pt
