// Which driver an SR-IOV VF goes to: vfio-pci, or the VFIO variant driver
// (mlx5_vfio_pci, hisi_acc_vfio_pci, pds_vfio_pci ...) that modules.alias
// names for it. Variant drivers declare PCI_DRIVER_OVERRIDE_DEVICE_VFIO ids,
// which modpost writes as "vfio_pci:v…d…sv…sd…bc…sc…i…" aliases: the
// device's own modalias with "vfio_pci:" for "pci:". They never bind on
// their own; only driver_override brings a device to them.
#pragma once

#include <string>

#include "pt/error.hpp"
#include "pt/modules.hpp"
#include "pt/root.hpp"

namespace pt::sriov {

// --to's value that asks for the variant driver, else vfio-pci.
inline constexpr const char* kAuto = "auto";

struct VfDriver {
  std::string driver;   // registered name; empty while MODULE is not loaded
  std::string module;   // the variant module to load first; empty for none
  std::string why;      // for the dry run and --json: how it was chosen
  std::string warning;  // set when modules.alias named more than one
  // What to show: the driver, or the module until it has registered one.
  std::string name() const { return driver.empty() ? module : driver; }
};

// The alias a variant driver of a function with MODALIAS ("pci:v…") carries,
// or empty when MODALIAS is no PCI modalias.
std::string variant_alias(const std::string& modalias);

// The driver for a VF whose modalias is MODALIAS. TO other than "auto" is
// used as it is. With "auto": exactly one module other than vfio_pci itself
// (whose catch-all "vfio_pci:v*d*…" alias matches every device) -> that
// module; none, or no loader -> vfio-pci; several -> vfio-pci and a warning
// (--to names one). A module index that cannot be read gives vfio-pci and a
// warning too: the lookup must not stand between the user and vfio-pci.
VfDriver choose_driver(const Root& root, ModuleLoader* modules, const std::string& to,
                       const std::string& modalias);

// Loads CHOICE's module when it has one and fills in the driver it
// registered.
Status load_driver(const Root& root, ModuleLoader& modules, VfDriver& choice);

}  // namespace pt::sriov
