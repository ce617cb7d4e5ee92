// pt-vm-standin: acts, inside the test guest, like a VM that used a function
// through VFIO and left it dirty. It opens the IOMMU group, gets the device fd
// and, through the config region, turns bus mastering on, turns memory decode
// off and puts the function into D3hot, then exits without undoing anything.
//
//   pt-vm-standin 0000:01:00.0 [--hold SECONDS] [--dirty] [--no-d3]
//
// --no-d3 leaves the power state alone: a VM that is killed (qm stop) never
// puts its devices into D3hot. (On 5.10 vfio-pci's release cannot pm-reset a
// function it finds in D3hot and resets the whole slot instead.)
// --hold keeps the fd open (a running VM) before exiting. --dirty also leaves
// device state behind, as a guest driver would, through the function's BAR
// (a VFIO region): for virtio (1af4:*) device_status 0x03 in the modern
// common configuration (the vendor capability with cfg_type 1, offset 0x14),
// for an Intel HDA controller (8086:*, class 0x0403) CORBLBASE (BAR0 + 0x40)
// 0x12345680. Only a function reset (FLR, bus) clears either in QEMU; the
// driver doubles (tests/vm/doubles) read them as "a VM used this". It prints the config
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

bool write_region(int dev, uint32_t index, off_t off, const void* buf, size_t n) {
  vfio_region_info r{};
  r.argsz = sizeof r;
  r.index = index;
  if (::ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &r) != 0) return false;
  if (!(r.flags & VFIO_REGION_INFO_FLAG_WRITE) || uint64_t(off) + n > r.size) {
    errno = EINVAL;
    return false;
  }
  return ::pwrite(dev, buf, n, off_t(r.offset) + off) == ssize_t(n);
}

// Leaves the state only a reset clears (see the header). Memory decoding must
// be on for VFIO to pass BAR accesses through.
int dirty(const Config& cfg, int dev, const std::string& bdf) {
  uint16_t vendor = 0, cmd = 0;
  uint8_t cls[3] = {};
  if (!cfg.read(PCI_VENDOR_ID, &vendor, 2) || !cfg.read(PCI_CLASS_PROG, cls, 3) || !cfg.read(PCI_COMMAND, &cmd, 2))
    return die("config read");
  cmd = uint16_t(cmd | PCI_COMMAND_MEMORY);
  if (!cfg.write(PCI_COMMAND, &cmd, 2)) return die("config write of the command register");
  if (vendor == 0x1af4) {
    uint8_t pos = 0;
    cfg.read(PCI_CAPABILITY_LIST, &pos, 1);
    for (int guard = 0; pos >= 0x40 && guard < 48; ++guard) {
      uint8_t id = 0, next = 0, type = 0, bar = 0;
      uint32_t offset = 0;
      cfg.read(pos, &id, 1);
      cfg.read(pos + 1, &next, 1);
      if (id == PCI_CAP_ID_VNDR && cfg.read(pos + 3, &type, 1) && type == 1) {
        cfg.read(pos + 4, &bar, 1);
        cfg.read(pos + 8, &offset, 4);
        const uint8_t status = 0x03;  // ACKNOWLEDGE | DRIVER
        if (!write_region(dev, bar, off_t(offset) + 0x14, &status, 1))
          return die("writing device_status of " + bdf + " through BAR" + std::to_string(bar));
        std::printf("dirty: device_status=0x03 (BAR%u+0x%x) ", bar, offset + 0x14);
        return 0;
      }
      pos = next & 0xfc;
    }
    errno = ENODEV;
    return die(bdf + " has no virtio common configuration capability");
  }
  if (vendor == 0x8086 && cls[2] == 0x04 && cls[1] == 0x03) {
    const uint32_t corb = 0x12345680;
    if (!write_region(dev, VFIO_PCI_BAR0_REGION_INDEX, 0x40, &corb, 4))
      return die("writing CORBLBASE of " + bdf + " through BAR0");
    std::printf("dirty: CORBLBASE=0x%08x ", corb);
    return 0;
  }
  errno = ENOTSUP;
  return die(bdf + ": --dirty knows virtio (1af4) and Intel HDA (8086, class 0403) functions only");
}

}  // namespace

int main(int argc, char** argv) {
  auto usage = [] {
    std::fprintf(stderr, "usage: pt-vm-standin BDF [--hold SECONDS] [--dirty] [--no-d3]\n");
    return 2;
  };
  if (argc < 2) return usage();
  const std::string bdf = argv[1];
  int hold = 0;
  bool make_dirty = false;
  bool d3 = true;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dirty") {
      make_dirty = true;
    } else if (a == "--no-d3") {
      d3 = false;
    } else if (a == "--hold" && i + 1 < argc) {
      char* end = nullptr;
      long v = std::strtol(argv[++i], &end, 10);
      if (!*argv[i] || *end || v < 0 || v > 86400) {
        std::fprintf(stderr, "pt-vm-standin: --hold wants whole seconds (0-86400), not '%s'\n", argv[i]);
        return 2;
      }
      hold = int(v);
    } else {
      std::fprintf(stderr, "pt-vm-standin: unknown argument '%s'\n", a.c_str());
      return usage();
    }
  }

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
  if (make_dirty)
    if (int rc = dirty(cfg, dev, bdf)) return rc;

  uint16_t cmd = 0;
  if (!cfg.read(PCI_COMMAND, &cmd, 2)) return die("config read");
  cmd = uint16_t((cmd | PCI_COMMAND_MASTER) & ~PCI_COMMAND_MEMORY);
  if (!cfg.write(PCI_COMMAND, &cmd, 2)) return die("config write of the command register");

  uint16_t pmcsr = 0;
  if (uint8_t pm = d3 ? find_pm_cap(cfg) : 0) {
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
