// The PCI devices the kit works on, as sysfs and config space describe them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pt/address.hpp"
#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt {

struct Device {
  PciAddress addr;
  uint16_t vendor = 0;
  uint16_t device = 0;
  uint32_t class_code = 0;   // 24 bits: base, sub, prog-if
  std::string class_name;    // from pci.ids; empty when unknown
  std::string vendor_name;   // from pci.ids; empty when unknown
  std::string device_name;   // from pci.ids; empty when unknown
  std::string driver;        // empty when unbound
  std::string driver_override;  // empty when unset ("(null)" in sysfs)
  std::optional<int> iommu_group;
  std::optional<bool> boot_vga;  // only VGA devices have the attribute
  std::optional<std::vector<std::string>> reset_methods;  // nullopt: no reset_method file (5.10)
  std::optional<PciAddress> parent;  // upstream bridge; nullopt on a root bus

  uint8_t base_class() const { return uint8_t(class_code >> 16); }
  uint16_t class_id() const { return uint16_t(class_code >> 8); }
  // Every bridge class (06xx): host, ISA/LPC, PCI-to-PCI, CardBus, ... pt
  // never unbinds one; the chipset's own functions hang off them.
  bool is_bridge() const;
  // A bridge with a secondary bus below it (PCI-to-PCI, subtractive, CardBus).
  bool has_secondary_bus() const;
  bool is_display() const { return base_class() == 0x03; }
  bool is_audio() const { return class_id() == 0x0403 || class_id() == 0x0401; }
  std::string sysfs(const std::string& attr = "") const;  // "/sys/bus/pci/devices/BDF[/attr]"
};

// Drivers that hold a function for a VM (or for nobody) rather than use it.
inline bool is_parking_driver(const std::string& driver) { return driver == "vfio-pci" || driver == "pci-stub"; }

// The kit's one wording for a PCI function that is not there, SUBJECT being
// what the user typed or the address: "SUBJECT: no such PCI device; HINT".
inline constexpr const char* kListHint = "list devices with 'pt-bind list'";
std::unexpected<Error> no_such_device(const std::string& subject, const std::string& hint = kListHint);

// Reads one device's sysfs attributes; a missing device is an Error naming it.
Result<Device> read_device(const Root& root, const PciAddress& addr);

struct ScanOptions {
  // Class, vendor and device names from pci.ids: only for output a person
  // reads, as reading the file is most of a scan's cost.
  bool names = true;
};

// Every PCI device under ROOT/sys/bus/pci, in address order. Enumeration and
// IDs come from libpci opened with sysfs.path, the rest from sysfs. Names
// come from pci_ids_path(ROOT).
Result<std::vector<Device>> scan_devices(const Root& root, const ScanOptions& options = {});

// Only the devices SPECS name and the others on their buses, read straight
// from sysfs: what a reset needs, without reading every device of a big tree.
Result<std::vector<Device>> scan_near(const Root& root, const std::vector<DeviceSpec>& specs);

// Sets the class, vendor and device names of DEVICES from pci_ids_path(ROOT),
// read once for all of them: what scan_devices does with ScanOptions::names,
// for devices read another way (scan_near, read_device), which have none.
void fill_names(const Root& root, std::vector<Device>& devices);

// Members of an IOMMU group, from /sys/kernel/iommu_groups/N/devices.
std::vector<PciAddress> group_members(const Root& root, int group);

// Reads a device's config space (up to LEN bytes) through libpci.
Result<std::vector<uint8_t>> read_config(const Root& root, const PciAddress& addr, int len);

// Writes one 16-bit config register through libpci.
Status write_config_word(const Root& root, const PciAddress& addr, int offset, uint16_t value);

// The pci.ids a scan reads names from: libpci's configured file (its
// id_file_name, /usr/share/misc/pci.ids on Debian) on the real root, and that
// path inside DIR under --root DIR, never the host's.
std::string pci_ids_path(const Root& root);

// "vendor:device" as four-digit hex pairs.
std::string id_string(const Device& d);

// The names as lspci prints them: "NVIDIA Corporation GA104 [GeForce RTX
// 3070]", "NVIDIA Corporation Device 1ada" when pci.ids knows only the
// vendor, empty when it knows neither.
std::string name_string(const Device& d);

}  // namespace pt
