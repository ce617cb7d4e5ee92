// Processes that keep a device open. Unbinding a driver from a held device
// blocks inside the driver (nvidia polls forever, vfio waits for the VM, ALSA
// waits for the last close), so the kit looks before it writes.
#pragma once

#include <string>
#include <vector>

#include "pt/pci.hpp"
#include "pt/root.hpp"

namespace pt {

struct Holder {
  int pid = 0;
  std::string command;  // /proc/PID/comm
  std::string node;     // the device node it holds, e.g. /dev/dri/card1
};

// The device nodes that belong to DEV: DRM card and render nodes (from sysfs
// and /dev/dri/by-path), ALSA nodes, the nvidia minor, and the VFIO group and
// cdev nodes.
std::vector<std::string> device_nodes(const Root& root, const Device& dev);

// Every process with one of DEV's nodes open, from /proc/*/fd.
std::vector<Holder> find_holders(const Root& root, const Device& dev);

std::string describe(const std::vector<Holder>& holders);

}  // namespace pt
