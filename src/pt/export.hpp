// The configuration entries other engines need for a device pt manages:
// Proxmox VE's cluster resource mapping, KubeVirt's permitted host devices
// and OpenStack Nova's [pci] options, printed from pt's own view of the
// device so the admin does not copy IDs and groups by hand.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pt/address.hpp"
#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt::exporter {

enum class Format { proxmox, kubevirt, nova };

// "proxmox", "kubevirt", "nova"; anything else is a usage error naming it.
Result<Format> parse_format(std::string_view word);

// One function as the engines identify it.
struct Function {
  PciAddress addr;
  uint16_t vendor = 0;
  uint16_t device = 0;
  uint16_t subsystem_vendor = 0;
  uint16_t subsystem_device = 0;
  std::optional<int> iommu_group;
  bool physical_function = false;  // sriov_totalvfs > 0: Nova's type-PF
  bool virtual_function = false;   // has a physfn link: Nova's type-VF
};

// The functions SPEC names (a slot: all of them), read from sysfs under
// ROOT. An address with no device is an Error naming it.
Result<std::vector<Function>> read_functions(const Root& root, const DeviceSpec& spec);

struct Request {
  Format format = Format::proxmox;
  std::string name;  // mapping id, resource name or alias; empty: derived
  std::string node;  // Proxmox node; empty: the host name under ROOT
};

// The entry as text to paste, with a comment line naming where it goes.
// Bad input (a name the engine would refuse) is a usage error.
Result<std::string> render(const std::vector<Function>& functions, const Request& request);

// The names used when Request::name is empty.
std::string default_name(Format format, const std::vector<Function>& functions);

}  // namespace pt::exporter
