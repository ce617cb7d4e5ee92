// pt-vm-standin: acts, inside the test guest, like a VM that used a function
// through VFIO and left it dirty. It opens the IOMMU group, gets the device fd
// and, through the config region, turns bus mastering on, turns memory decode
// off and puts the function into D3hot, then exits without undoing anything.
//
//   pt-vm-standin 0000:01:00.0 [--hold SECONDS]
//
// --hold keeps the fd open (a running VM) before exiting. It prints the config
// state it left, "command=0x.... pmcsr=0x....", for the scenario to compare.
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int die(const std::string& what) {
  std::fprintf(stderr, "pt-vm-standin: %s: %s\n", what.c_str(), std::strerror(errno));
  return 1;
}

struct Config {
  int fd;
  off_t base;
  bool read(off_t off, void* buf, size_t n) const {
    return ::pread(fd, buf, n, base + off) == ssize_t(n);
  }
  bool write(off_t off, const void* buf, size_t n) const {
    return ::pwrite(fd, buf, n, base + off) == ssize_t(n);
  }
};

// The power management capability's offset, 0 when the function has none.
uint8_t find_pm_cap(const Config& cfg) {
  uint8_t pos = 0;
  if (!cfg.read(PCI_CAPABILITY_LIST, &pos, 1)) return 0;
  for (int guard = 0; pos >= 0x40 && guard < 48; ++guard) {
    uint8_t id = 0, next = 0;
    if (!cfg.read(pos, &id, 1) || !cfg.read(pos + 1, &next, 1)) return 0;
    if (id == PCI_CAP_ID_PM) return pos;
    pos = next & 0xfc;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: pt-vm-standin BDF [--hold SECONDS]\n");
    return 2;
  }
  const std::string bdf = argv[1];
  int hold = 0;
  if (argc == 4 && std::string(argv[2]) == "--hold") hold = std::atoi(argv[3]);

  char link[512];
  const std::string group_link = "/sys/bus/pci/devices/" + bdf + "/iommu_group";
  ssize_t n = ::readlink(group_link.c_str(), link, sizeof link - 1);
  if (n < 0) return die(group_link);
  link[n] = 0;
  const std::string group = std::strrchr(link, '/') + 1;

  int container = ::open("/dev/vfio/vfio", O_RDWR);
  if (container < 0) return die("/dev/vfio/vfio");
  int gfd = ::open(("/dev/vfio/" + group).c_str(), O_RDWR);
  if (gfd < 0) return die("/dev/vfio/" + group);
  vfio_group_status status{};
  status.argsz = sizeof status;
  if (::ioctl(gfd, VFIO_GROUP_GET_STATUS, &status) != 0) return die("VFIO_GROUP_GET_STATUS");
  if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
    std::fprintf(stderr, "pt-vm-standin: group %s is not viable: a member is not on vfio-pci\n",
                 group.c_str());
    return 1;
  }
  if (::ioctl(gfd, VFIO_GROUP_SET_CONTAINER, &container) != 0)
    return die("VFIO_GROUP_SET_CONTAINER");
  if (::ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) != 0 &&
      ::ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) != 0)
    return die("VFIO_SET_IOMMU");
  int dev = ::ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, bdf.c_str());
  if (dev < 0) return die("VFIO_GROUP_GET_DEVICE_FD " + bdf);

  vfio_region_info region{};
  region.argsz = sizeof region;
  region.index = VFIO_PCI_CONFIG_REGION_INDEX;
  if (::ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &region) != 0)
    return die("VFIO_DEVICE_GET_REGION_INFO");
  Config cfg{dev, off_t(region.offset)};

  uint16_t cmd = 0;
  if (!cfg.read(PCI_COMMAND, &cmd, 2)) return die("config read");
  cmd = uint16_t((cmd | PCI_COMMAND_MASTER) & ~PCI_COMMAND_MEMORY);
  if (!cfg.write(PCI_COMMAND, &cmd, 2)) return die("config write of the command register");

  uint16_t pmcsr = 0;
  if (uint8_t pm = find_pm_cap(cfg)) {
    if (!cfg.read(pm + PCI_PM_CTRL, &pmcsr, 2)) return die("config read of PMCSR");
    pmcsr = uint16_t((pmcsr & ~PCI_PM_CTRL_STATE_MASK) | 3);
    if (!cfg.write(pm + PCI_PM_CTRL, &pmcsr, 2)) return die("config write of PMCSR");
    cfg.read(pm + PCI_PM_CTRL, &pmcsr, 2);
  }
  cfg.read(PCI_COMMAND, &cmd, 2);
  std::printf("command=0x%04x pmcsr=0x%04x\n", cmd, pmcsr);
  std::fflush(stdout);
  if (hold > 0) ::sleep(unsigned(hold));
  // No cleanup: a VM that is killed does none either.
  return 0;
}
