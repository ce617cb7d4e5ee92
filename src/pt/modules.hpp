// Kernel modules behind a small interface: libkmod hard-codes nothing we can
// redirect at the syscall level, so tests use a fake that edits a fixture tree.
#pragma once

#include <memory>
#include <string>
#include <vector>

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
  // The modules whose modules.alias patterns (globs, as modprobe reads
  // them) match ALIAS, e.g. "vfio_pci:v00001B36d00000010sv…" -> the VFIO
  // variant drivers of that device. Empty when none; an error only when the
  // module index cannot be read.
  virtual Result<std::vector<std::string>> lookup_alias(const std::string& alias) = 0;
  // Loads MODULE (and its dependencies) unless it is loaded already.
  virtual Status load_module(const std::string& module) = 0;
};

// Whether DRIVER is registered with the PCI bus under ROOT.
bool driver_registered(const Root& root, const std::string& driver);
// The module that provides a registered driver ("vfio-pci" -> "vfio_pci"),
// or empty for built-in drivers.
std::string module_of_driver(const Root& root, const std::string& driver);

// The PCI driver MODULE registers, as the kernel links it under
// /sys/module/MODULE/drivers/pci:NAME (the name may differ from the module's:
// "mlx5_vfio_pci" registers "mlx5_vfio_pci", "nvgrace_gpu_vfio_pci"
// registers "nvgrace-gpu-vfio-pci"); empty when it registers none or is not
// loaded, or when it registers several.
std::string pci_driver_of_module(const Root& root, const std::string& module);

// libkmod opened on ROOT/lib/modules/<release>. Under a --root other than "/"
// it only looks modules up: inserting one would change the running kernel.
std::unique_ptr<ModuleLoader> make_kmod_loader(const Root& root);

}  // namespace pt
