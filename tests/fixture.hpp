// The one builder of fake trees for pt's tests, shaped like the kernel's
// sysfs: device directories under /sys/devices, /sys/bus/pci/devices links,
// driver / iommu_group / subsystem links, IOMMU groups, drivers with their
// modules, /dev nodes and /proc entries for holders.
//
// Its SysfsWriter plays the kernel: driver_override, unbind, bind and
// drivers_probe have their kernel side effects, drivers can refuse devices,
// and a chosen write can fail with a chosen errno.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "pt/address.hpp"
#include "pt/context.hpp"
#include "pt/modules.hpp"
#include "pt/root.hpp"
#include "pt/sysfs.hpp"

namespace pt::test {

// pt.conf claiming gpu_with_audio's GPU and audio at boot, with the whole
// recovery recipe (boot and recover tests share it).
inline constexpr const char* kGuestClaim = R"([device.guest]
bdf = "0000:01:00.0"
id = "10de:2484"
boot = "vfio"
companions = ["0000:01:00.1"]
recover = ["reset", "attach", "drm-wait", "vgaarb", "console", "drm-check"]

[device.guest.step.reset]
method = "bus"
force = true

[device.guest.step.drm-wait]
timeout = 20
)";

// The fixture's /usr/share/misc/pci.ids: the names of the vendors, devices
// and classes the shapes below use, in pci.ids' syntax (comments,
// subsystems and prog-ifs included, which a reader must skip). 10de:1ada
// has no device line and 1b36 no vendor line, as IDs newer than a
// distribution's pci.ids are.
inline constexpr const char* kPciIds = R"(#
#	List of PCI ID's (fixture excerpt)
#
1002  Advanced Micro Devices, Inc. [AMD/ATI]
	73bf  Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]
10de  NVIDIA Corporation
	228b  GA104 High Definition Audio Controller
	2484  GA104 [GeForce RTX 3070]
		1043 87b8  GA104 [GeForce RTX 3070]
1af4  Red Hat, Inc.
	1041  Virtio network device
	1042  Virtio block device
	1050  Virtio GPU
8086  Intel Corporation
	10d3  82574L Gigabit Network Connection
	2918  82801IB (ICH9) LPC Interface Controller
	2922  82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]
	2930  82801I (ICH9 Family) SMBus Controller
	29c0  82G33/G31/P35/P31 Express DRAM Controller
	7a23  Raptor Lake SMBus Controller
	7c10  200 Series PCH PCI Express Root Port
# List of known device classes, subclasses and programming interfaces
C 00  Unclassified device
C 01  Mass storage controller
	00  SCSI storage controller
	06  SATA controller
		01  AHCI 1.0
C 02  Network controller
	00  Ethernet controller
C 03  Display controller
	00  VGA compatible controller
		00  VGA controller
	02  3D controller
C 04  Multimedia controller
	03  Audio device
C 06  Bridge
	00  Host bridge
	01  ISA bridge
	04  PCI bridge
C 0c  Serial bus controller
	03  USB controller
	05  SMBus
)";

// An SR-IOV physical function: the capability in its config space (at
// 0x130) and the kernel's sriov_* attributes; writes to sriov_numvfs create
// and remove the VFs as the kernel does (virtfnN and physfn links, each VF
// probed at once while sriov_drivers_autoprobe is 1).
struct FakeSriov {
  uint16_t total_vfs = 4;
  uint16_t num_vfs = 0;  // what the simulated kernel enabled
  uint16_t vf_device = 0x10ed;
  uint16_t offset = 1, stride = 1;
  bool configurable = true;     // the PF's driver implements sriov_configure
  std::string vf_driver;        // the host driver of the VFs
  std::optional<int> vf_group;  // IOMMU group of VF 0; VF N gets vf_group + N
};

// Capabilities written into a device's config space (PM at 0x40, PCIe at
// 0x50, Advanced Features at 0x70), from which pt-reset derives its methods.
struct FakeCaps {
  bool pm = true;
  bool no_soft_reset = false;
  int power_state = 0;  // D0..D3hot
  bool pcie = true;
  bool flr = true;
  bool af = false;
  bool af_flr = false;
  // Extended capabilities from 0x100: ACS (capability, control registers),
  // ATS, ARI. Bridges get ACS with SV RR CR UF on unless CAPS says otherwise.
  std::optional<std::pair<uint16_t, uint16_t>> acs;
  bool ats = false;
  bool ats_enabled = false;
  bool ari = false;
  std::optional<FakeSriov> sriov;
  // Non-empty: the config file holds exactly these bytes (a real dump, a
  // short read, all ones) instead of the generated space.
  std::string raw;
};

// Config space from `lspci -xxx`/`-xxxx` text ("00: 02 10 ..." lines;
// other lines are ignored), zero-filled to SIZE bytes.
std::string config_from_lspci(std::string_view dump, size_t size = 4096);

// A real GPU: AMD Radeon R9 Fury (Fiji, 1002:7300) at 09:00.0, its 4096
// bytes as pciutils keeps them in its test suite. PM with NoSoftRst+, PCIe
// without FLR, ATS enabled, ARI, no ACS.
std::string radeon_fiji_config();

// A real SR-IOV GPU PF: the Alder Lake-P integrated graphics (8086:46a6,
// rev 0c) of a Lenovo Yoga 9 14IAP7 at 00:02.0, rebuilt from its published
// `lspci -vvv` (no hex dump was published): capabilities at 0x40 (vendor),
// 0x70 (PCIe RCiEP, FLR), 0xac (MSI), 0xd0 (PM); extended PASID 0x100, ATS
// 0x200, PRI 0x300 and SR-IOV 0x320 (Initial/Total VFs 7, NumVFs 0, VF
// offset 1, stride 1, VF device 46a6, page sizes 553/1). Source in fixture.cpp.
std::string alder_lake_igpu_config();

struct FakeDevice {
  std::string bdf;
  uint16_t vendor = 0x10de;
  uint16_t device = 0x1234;
  uint32_t class_code = 0x030000;
  std::string parent;         // bridge BDF; empty: on root bus 0000:00
  std::string driver;         // bound now
  std::string native_driver;  // what drivers_probe picks without an override (defaults to driver)
  std::optional<int> group;
  std::optional<bool> boot_vga;
  std::optional<std::vector<std::string>> reset_methods = std::vector<std::string>{"flr", "bus"};
  std::vector<std::string> drm;    // e.g. {"card0", "renderD128"}
  std::vector<std::string> sound;  // e.g. {"card1/pcmC1D3p"}
  FakeCaps caps;
  bool resize_files = true;  // resourceN_resize for each ReBAR BAR (Linux 6.1+)
};

struct Fault {
  std::string path_suffix;
  std::string value_prefix;
  int err = EIO;
  int nth = 1;  // fail the nth matching write
  int seen = 0;
};

// ---- DRM section (pt-drm): cards under /sys/class/drm, render nodes,
// connectors, /dev/dri and by-path links, debugfs dri/N, fbdev devices.
struct FakeConnector {
  std::string name = "HDMI-A-1";
  std::string status = "connected";
  std::string enabled = "enabled";
  std::string dpms = "On";
  int modes = 3;
};

struct FakeDrmCard {
  std::string bdf;
  int minor = 0;                           // card0
  std::optional<int> render;               // renderD128
  std::string driver_name = "nvidia-drm";  // debugfs dri/N/name
  std::vector<FakeConnector> connectors;
  bool by_path = true;                // udev's /dev/dri/by-path/pci-BDF-card
  std::optional<std::string> master;  // debugfs clients: this command holds master
  std::optional<int> fb;              // fbN whose device is the GPU
  bool under_virtio = false;          // 5.10's virtio-gpu: BDF/virtio0/drm/cardN
};

// ---- Kernel users (pt-bind's refusals): block devices and network
// interfaces of a function, present while it is bound to its native driver.
struct FakeBlock {
  std::string bdf;
  std::string name = "vda";  // the disk: /sys/class/block/vda, /dev/vda
  int major = 254;
  int minor = 0;                        // partitions take the minors after it
  std::vector<std::string> partitions;  // {"vda1", "vda2"}
  std::string sub = "virtio2";  // bus child it hangs under; "" for none (nvme: "nvme/nvme0")
  // NVMe multipath: the disk hangs under /sys/devices/virtual/nvme-subsystem/
  // SUBSYSTEM, which links the controller (BDF/SUB) by its name.
  std::string subsystem;
};

struct FakeNet {
  std::string bdf;
  std::string name = "eth0";
  bool up = true;  // IFF_UP in flags
  std::string operstate = "up";
  std::string sub = "virtio3";
};

class Fixture;

// The simulated kernel behind a fixture.
class FakeKernel final : public SysfsWriter {
 public:
  explicit FakeKernel(Fixture& fx) : fx_(fx) {}
  Status write(const std::string& path, std::string_view value, WriteKind kind) override;
  Status write_config(const std::string& device, uint16_t offset, uint16_t value) override;
  std::vector<std::pair<std::string, std::string>> log;  // every write attempted

 private:
  Fixture& fx_;
  std::mutex mutex_;  // pt-reset writes from one thread per reset domain
};

// Makes drivers available the way modprobe would, inside the fixture.
class FakeModules final : public ModuleLoader {
 public:
  explicit FakeModules(Fixture& fx) : fx_(fx) {}
  Status ensure_driver(const std::string& driver, const std::string& module) override;
  bool knows(const std::string& driver) override;
  // As modules.alias: the modules whose glob matches ALIAS, in table order.
  Result<std::vector<std::string>> lookup_alias(const std::string& alias) override;
  Status load_module(const std::string& module) override;
  std::set<std::string> available;  // drivers a module exists for
  std::vector<std::string> loaded;  // what ensure_driver and load_module loaded, in order
  std::optional<int> fail_with;     // make loading fail
  // modules.alias lines: (glob, module), e.g. ("vfio_pci:v00001B36d*", "x_vfio_pci").
  std::vector<std::pair<std::string, std::string>> aliases;
  // The PCI driver a module registers when load_module loads it.
  std::map<std::string, std::string> module_drivers;

 private:
  Fixture& fx_;
};

class Fixture {
 public:
  Fixture();
  ~Fixture();
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  // Shapes named in the foundation issue.
  static void gpu_with_audio(
      Fixture& fx);  // 00:01.0 root port -> 01:00.0 GPU + 01:00.1 audio, group 1
  static void gpu_on_root_bus(Fixture& fx);  // 00:02.0 GPU alone, group 2
  // gpu_with_audio whose GPU has DRM card0 (renderD128, fb0) with HDMI-A-1
  // connected (5 modes).
  static void gpu_with_display(Fixture& fx);
  static void group_with_unrelated(
      Fixture& fx);  // gpu_with_audio + 01:00.2 USB-C + 02:00.0 NIC in group 1
  static void many_devices(Fixture& fx, int n);  // N endpoints behind root ports
  // gpu_with_audio + a virtio disk at 00:04.0 (vda: vda1 254:1, vda2 254:2,
  // group 3) and a virtio NIC at 00:05.0 (eth0, up, group 4), both on
  // virtio-pci; nothing mounted, no swap.
  static void kernel_held(Fixture& fx);
  // An Intel chipset: host bridge 00:00.0 (0600, no driver, group 0) and
  // slot 00:1f in group 5: .0 ISA/LPC bridge (0601, lpc_ich), .2 SATA
  // (0106, ahci, disk sda under ata1/host0/target0:0:0/0:0:0:0 with sda1
  // 8:1 mounted on /) and .3 SMBus (0c05, i801_smbus). vfio-pci is there.
  static void intel_chipset(Fixture& fx);

  Fixture& add_driver(const std::string& name, const std::string& module = "");
  // A root port (no PARENT) or a switch's downstream port. Without CAPS it
  // has ACS with SV RR CR UF enabled, so it isolates what is below it.
  Fixture& add_bridge(const std::string& bdf, const std::string& parent = "",
                      std::optional<FakeCaps> caps = std::nullopt);
  Fixture& add_device(const FakeDevice& dev);
  // A process holding NODE open (as /proc/PID/fd/3 -> NODE).
  Fixture& add_holder(int pid, const std::string& comm, const std::string& node);
  Fixture& no_iommu();
  // Kernel users. A block device or interface exists while its function is
  // on its native driver, as the driver creates them on probe.
  Fixture& add_block(const FakeBlock& block);
  // A dm/md device NAME (MAJOR:MINOR) stacked on block device LOWER: LOWER's
  // holders/NAME and NAME's slaves/LOWER, under /sys/devices/virtual/block.
  Fixture& add_stacked_block(const std::string& lower, const std::string& name, int major,
                             int minor);
  Fixture& add_net(const FakeNet& net);
  // A line of /proc/self/mountinfo (and /proc/mounts) for DEVNO ("254:1").
  Fixture& add_mount(const std::string& devno, const std::string& source, const std::string& target,
                     const std::string& fstype);
  // An active swap area in /proc/swaps.
  Fixture& add_swap(const std::string& filename);
  // A line of /proc/locks: PID holds a flock on ABS (under the root), which
  // must exist, named by its device and inode as the kernel names it.
  Fixture& add_flock(int pid, const std::string& abs);

  // A write whose path ends with SUFFIX and whose value starts with PREFIX
  // fails with ERR on its NTH occurrence.
  void fail_write(const std::string& suffix, const std::string& prefix, int err, int nth = 1);
  // DRIVER's probe refuses DEV (the write succeeds, nothing binds), as
  // virtio-pci does for a non-virtio device.
  void refuse(const std::string& driver, const std::string& bdf) {
    refusals_.insert(driver + "@" + bdf);
  }
  // A reset of BDF through its reset file leaves BAR0 cleared (a device that
  // loses its state); verification must catch it.
  void corrupt_on_reset(const std::string& bdf) { corrupt_.insert(bdf); }
  // A write to a plain attribute whose path ends with SUFFIX succeeds but
  // the file keeps its value, as a kernel that refuses a setting silently.
  void ignore_writes(const std::string& suffix) { ignored_.insert(suffix); }
  // A reset of BDF through its reset file leaves every Resizable BAR at its
  // smallest size, as a function whose restore did not cover ReBAR.
  void shrink_rebar_on_reset(const std::string& bdf) { rebar_reset_.insert(bdf); }
  int resets(const std::string& bdf) const { return resets_.count(bdf) ? resets_.at(bdf) : 0; }
  // A vtconsole as the kernel shows it under /sys/class/vtconsole. NAME
  // carries the mark: "(M) frame buffer device". Writes to its bind follow
  // vt.c: only (M) drivers (un)bind; an unbind hands the consoles to the
  // first other registered driver and is ignored without one; a bind takes
  // them only from a bound (S) driver and is ignored otherwise.
  Fixture& add_vtconsole(int n, const std::string& name, bool bound);
  // fbN with NAME under PCI device BDF (or under BDF/SUB, such as virtio0,
  // a virtio device bound to SUB_DRIVER), with its /dev/fbN as a plain file.
  Fixture& add_framebuffer(int n, const std::string& name, const std::string& bdf,
                           const std::string& sub = "", const std::string& sub_driver = "");
  // A firmware framebuffer platform device ("efi-framebuffer.0") bound to
  // platform driver DRIVER (none when empty) and showing fbFB named FB_NAME
  // while bound (FB < 0: none). PARENT_BDF puts it under that PCI device, as
  // kernels from 6.9 do; otherwise it sits in /sys/devices/platform.
  Fixture& add_firmware_fb(const std::string& device, const std::string& driver, int fb,
                           const std::string& fb_name, const std::string& parent_bdf = "");
  Fixture& set_iomem(const std::string& text);
  Fixture& set_active_vt(int n);
  // Console shapes on gpu_with_audio's 01:00.0 (the boot VGA, nvidia):
  // vtcon0 "(S) dummy device" unbound, vtcon1 "(M) frame buffer device"
  // bound, tty1 active, and the framebuffer FIRMWARE names: "efifb" (fb0
  // "EFI VGA" on efi-framebuffer.0, found through /proc/iomem), "vesafb"
  // (vesa-framebuffer.0, /proc/iomem), "simpledrm" (simple-framebuffer.0, a
  // child of the GPU, fb0 "simpledrmdrmfb"), "drm" (fb0 "nvidiadrmfb" of
  // the GPU itself, no firmware framebuffer) or "none" (no framebuffer and
  // no fbcon: only "(S) VGA+").
  static void boot_console(Fixture& fx, const std::string& firmware);
  // DRM section: a card of a display function, present while the function is
  // bound to its native driver (bind and unbind add and remove it).
  Fixture& add_drm_card(const FakeDrmCard& card);
  // What a "detect" write to CONNECTOR's status finds next (card0-HDMI-A-1).
  void on_detect(const std::string& sysfs_name, const std::string& status, int modes) {
    detect_[sysfs_name] = {status, modes};
  }
  // fbcon as a bound "(M) frame buffer device" vtconsole, tty0/active = tty1.
  Fixture& add_fbcon(bool bound);
  // Rewrites a device's config space (after changing its FakeDevice).
  FakeDevice& device(const std::string& bdf) { return devices_.at(bdf); }
  void rewrite_config(const std::string& bdf);

  const std::string& dir() const { return dir_; }
  // Leaves the tree on disk when the fixture goes away (benchmarks, debugging).
  void keep() { keep_ = true; }
  Root root() const;
  // A context on this tree, writing through its simulated kernel and modules.
  Context context(bool dry_run = false);
  FakeKernel& kernel() { return kernel_; }
  FakeModules& modules() { return modules_; }

  // Every file, link and directory under the tree but /run/pt, for
  // "the tree ends as it began" assertions.
  std::map<std::string, std::string> snapshot() const;
  std::string driver_of(const std::string& bdf) const;
  std::string override_of(const std::string& bdf) const;
  std::string read(const std::string& abs) const;  // file content under the tree
  bool exists(const std::string& abs) const;
  void write_file(const std::string& abs, const std::string& content) const;

 private:
  friend class FakeKernel;
  friend class FakeModules;
  std::string dev_dir(const std::string& bdf) const;  // canonical /sys/devices/... path (absolute)
  void bind(const std::string& bdf, const std::string& driver);
  void unbind(const std::string& bdf);
  Status probe(const std::string& bdf);
  Status rescan();
  Status set_numvfs(const std::string& bdf, const std::string& value);
  void drm_create(const std::string& bdf);
  void kernel_users_create(const std::string& bdf);
  void kernel_users_remove(const std::string& bdf);
  Status drm_detect(const std::string& path);

  std::string dir_;
  bool keep_ = false;
  std::map<std::string, FakeDevice> devices_;
  std::map<std::string, std::string> bridges_;  // bdf -> parent bdf
  std::vector<Fault> faults_;
  std::set<std::string> refusals_;
  std::set<std::string> corrupt_;
  std::set<std::string> ignored_;
  std::set<std::string> rebar_reset_;
  Status resize(const std::string& bdf, const std::string& attr, const std::string& value);
  void reset_rebar(const std::string& bdf);
  std::map<std::string, int> resets_;
  struct FirmwareFb {
    std::string dir;  // absolute device directory
    int fb = -1;
    std::string fb_name;
  };
  std::map<std::string, FirmwareFb> firmware_;
  void put_fb(int n, const std::string& name, const std::string& device_dir);
  void remove_fb(int n);
  Status write_vtconsole(const std::string& node, const std::string& value);
  std::set<std::string> removed_;
  std::vector<FakeDrmCard> drm_cards_;
  std::vector<FakeBlock> blocks_;
  std::vector<FakeNet> nets_;
  int mount_id_ = 20;
  std::map<std::string, std::pair<std::string, int>> detect_;
  FakeKernel kernel_{*this};
  FakeModules modules_{*this};
};

}  // namespace pt::test
