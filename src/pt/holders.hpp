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
// and /dev/dri/by-path), ALSA nodes, the nvidia minor, the VFIO group and
// cdev nodes, and its block devices with what is stacked on them (/dev/sda,
// /dev/sda1, /dev/dm-0: a process with a disk open keeps it in use).
std::vector<std::string> device_nodes(const Root& root, const Device& dev);

// Every process with one of PATHS open, from /proc/*/fd (the link text, as
// the kernel names the file: a sysfs attribute by its real path).
std::vector<Holder> find_open(const Root& root, const std::vector<std::string>& paths);

// Every process with one of DEV's nodes open, from /proc/*/fd.
std::vector<Holder> find_holders(const Root& root, const Device& dev);

std::string describe(const std::vector<Holder>& holders);

// A use of a function inside the kernel, with no process to show for it: a
// mounted filesystem or an active swap area on one of its block devices, or
// a network interface of it that is up, or a dm/md device stacked on one of
// its block devices (an active LVM volume, an assembled array). Unbinding the driver pulls the
// device from under them: the filesystem or swap loses its disk, the link
// drops.
struct KernelUser {
  enum class Kind { mount, swap, net, stacked };
  Kind kind = Kind::mount;
  std::string device;  // "/dev/vda1", "/dev/dm-0", or the interface: "eth0"
  std::string
      via;  // the function's own block device below DEVICE ("vda1"), when DEVICE is a dm/md on it
  std::string target;     // mount point
  std::string fstype;     // "ext4"
  std::string operstate;  // an interface's: "up", "down" (no carrier), "unknown"
};

// Mounts (/proc/self/mountinfo, by major:minor), swaps (/proc/swaps) and
// up interfaces (IFF_UP in /sys/class/net/NAME/flags) that sit on DEV: its
// block devices are the /sys/class/block entries below its sysfs directory,
// their partitions, and the dm/md devices stacked on them (holders/).
std::vector<KernelUser> find_kernel_users(const Root& root, const Device& dev);

// "backs /dev/vda1 mounted on / (ext4)", "backs swap on /dev/vda2",
// "has network interface eth0 up", "backs /dev/dm-0 (on vda1), which is
// active".
std::string describe(const KernelUser& user);

}  // namespace pt
