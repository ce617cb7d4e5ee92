#include "pt/holders.hpp"

#include <doctest/doctest.h>

#include <filesystem>

#include "fixture.hpp"

using namespace pt;

TEST_CASE("device nodes come from drm, by-path, sound and the VFIO group") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  auto gpu = read_device(fx.root(), PciAddress{0, 1, 0, 0});
  auto audio = read_device(fx.root(), PciAddress{0, 1, 0, 1});
  REQUIRE(gpu);
  REQUIRE(audio);
  auto g = device_nodes(fx.root(), *gpu);
  CHECK(g == std::vector<std::string>{"/dev/dri/card0", "/dev/dri/renderD128", "/dev/vfio/1"});
  auto a = device_nodes(fx.root(), *audio);
  CHECK(a == std::vector<std::string>{"/dev/snd/controlC1", "/dev/snd/pcmC1D3p", "/dev/vfio/1"});
}

TEST_CASE("holders are found through /proc/PID/fd with pid and command") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  fx.add_holder(4242, "Xorg", "/dev/dri/card0");
  fx.add_holder(4343, "pipewire", "/dev/snd/pcmC1D3p");
  fx.add_holder(4444, "bash", "/dev/tty1");
  auto gpu = read_device(fx.root(), PciAddress{0, 1, 0, 0});
  auto h = find_holders(fx.root(), *gpu);
  REQUIRE(h.size() == 1);
  CHECK(h[0].pid == 4242);
  CHECK(h[0].command == "Xorg");
  CHECK(h[0].node == "/dev/dri/card0");
  CHECK(describe(h) == "pid 4242 (Xorg) holds /dev/dri/card0");
  auto audio = read_device(fx.root(), PciAddress{0, 1, 0, 1});
  auto ha = find_holders(fx.root(), *audio);
  REQUIRE(ha.size() == 1);
  CHECK(ha[0].command == "pipewire");
}

TEST_CASE("an nvidia GPU's minor comes from /proc/driver/nvidia") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  fx.write_file("/proc/driver/nvidia/gpus/0000:01:00.0/information", "Model: X\nDevice Minor: 2\n");
  fx.add_holder(77, "nvidia-smi", "/dev/nvidia2");
  fx.add_holder(78, "other", "/dev/nvidia0");
  auto gpu = read_device(fx.root(), PciAddress{0, 1, 0, 0});
  auto h = find_holders(fx.root(), *gpu);
  REQUIRE(h.size() == 1);
  CHECK(h[0].pid == 77);
}

TEST_CASE("DRM nodes under a child device count (virtio-pci on 5.10)") {
  test::Fixture fx;
  test::Fixture::gpu_on_root_bus(fx);
  const std::string dev = fx.dir() + "/sys/devices/pci0000:00/0000:00:02.0";
  std::filesystem::remove_all(dev + "/drm");
  std::filesystem::create_directories(dev + "/virtio0/drm/card1");
  fx.add_holder(31, "Xorg", "/dev/dri/card1");
  auto gpu = read_device(fx.root(), PciAddress{0, 0, 2, 0});
  REQUIRE(gpu);
  auto h = find_holders(fx.root(), *gpu);
  REQUIRE(h.size() == 1);
  CHECK(h[0].node == "/dev/dri/card1");
}

TEST_CASE(
    "kernel users: mounts and swaps on a function's block devices, its interfaces that are up") {
  test::Fixture fx;
  test::Fixture::kernel_held(fx);
  auto disk = read_device(fx.root(), PciAddress{0, 0, 4, 0});
  auto nic = read_device(fx.root(), PciAddress{0, 0, 5, 0});
  auto gpu = read_device(fx.root(), PciAddress{0, 1, 0, 0});
  REQUIRE(disk);
  REQUIRE(nic);
  REQUIRE(gpu);
  CHECK(find_kernel_users(fx.root(), *disk).empty());

  fx.add_mount("254:1", "/dev/vda1", "/mnt/data\\040dir", "ext4");
  fx.add_mount("0:22", "tmpfs", "/tmp", "tmpfs");
  fx.add_swap("/dev/vda2");
  fx.add_swap("/swapfile");
  auto u = find_kernel_users(fx.root(), *disk);
  REQUIRE(u.size() == 2);
  CHECK(u[0].kind == KernelUser::Kind::mount);
  CHECK(describe(u[0]) == "backs /dev/vda1 mounted on /mnt/data dir (ext4)");
  CHECK(u[1].kind == KernelUser::Kind::swap);
  CHECK(describe(u[1]) == "backs swap on /dev/vda2");

  auto n = find_kernel_users(fx.root(), *nic);
  REQUIRE(n.size() == 1);
  CHECK(describe(n[0]) == "has network interface eth0 up (operstate up)");
  CHECK(find_kernel_users(fx.root(), *gpu).empty());
}

TEST_CASE("kernel users: an interface that is down is none; a link up without carrier is one") {
  test::Fixture fx;
  test::Fixture::kernel_held(fx);
  fx.add_device(test::FakeDevice{.bdf = "0000:00:06.0",
                                 .vendor = 0x1af4,
                                 .device = 0x1041,
                                 .class_code = 0x020000,
                                 .driver = "virtio-pci",
                                 .group = 5});
  fx.add_net(
      test::FakeNet{.bdf = "0000:00:06.0", .name = "eth1", .up = false, .operstate = "down"});
  fx.add_device(test::FakeDevice{.bdf = "0000:00:07.0",
                                 .vendor = 0x1af4,
                                 .device = 0x1041,
                                 .class_code = 0x020000,
                                 .driver = "virtio-pci",
                                 .group = 6});
  fx.add_net(test::FakeNet{.bdf = "0000:00:07.0", .name = "eth2", .up = true, .operstate = "down"});
  auto down = read_device(fx.root(), PciAddress{0, 0, 6, 0});
  auto nocarrier = read_device(fx.root(), PciAddress{0, 0, 7, 0});
  CHECK(find_kernel_users(fx.root(), *down).empty());
  auto u = find_kernel_users(fx.root(), *nocarrier);
  REQUIRE(u.size() == 1);
  CHECK(u[0].device == "eth2");
}

TEST_CASE(
    "kernel users: a dm device stacked on a partition, by major:minor, and /proc/mounts alone") {
  test::Fixture fx;
  test::Fixture::kernel_held(fx);
  fx.add_stacked_block("vda1", "dm-0", 253, 0);
  fx.add_stacked_block("dm-0", "dm-1", 253, 1);
  // Mounted by its /dev/mapper name: mountinfo still gives the number.
  fx.add_mount("253:1", "/dev/mapper/vg-home", "/home", "xfs");
  auto disk = read_device(fx.root(), PciAddress{0, 0, 4, 0});
  auto u = find_kernel_users(fx.root(), *disk);
  REQUIRE(u.size() == 1);
  CHECK(describe(u[0]) == "backs /dev/dm-1 (on vda1) mounted on /home (xfs)");

  // Without mountinfo, /proc/mounts matches by the device path.
  std::filesystem::remove(fx.dir() + "/proc/self/mountinfo");
  fx.write_file("/proc/mounts", "/dev/vda1 / ext4 rw 0 0\n/dev/vdb1 /srv ext4 rw 0 0\n");
  u = find_kernel_users(fx.root(), *disk);
  REQUIRE(u.size() == 2);
  CHECK(describe(u[0]) == "backs /dev/vda1 mounted on / (ext4)");
  // dm-1 is no longer seen mounted, but the stack on vda1 is still active.
  CHECK(describe(u[1]) == "backs /dev/dm-1 (on vda1), which is active");
}

TEST_CASE(
    "kernel users: an active dm device with nothing mounted is a use; only the top is named") {
  test::Fixture fx;
  test::Fixture::kernel_held(fx);
  auto disk = read_device(fx.root(), PciAddress{0, 0, 4, 0});
  CHECK(find_kernel_users(fx.root(), *disk).empty());
  fx.add_stacked_block("vda2", "md0", 9, 0);
  fx.add_stacked_block("md0", "dm-3", 253, 3);
  auto u = find_kernel_users(fx.root(), *disk);
  REQUIRE(u.size() == 1);
  CHECK(u[0].kind == KernelUser::Kind::stacked);
  CHECK(describe(u[0]) == "backs /dev/dm-3 (on vda2), which is active");
}

TEST_CASE("a disk's block devices are its nodes, wherever they hang below the function") {
  test::Fixture fx;
  test::Fixture::intel_chipset(fx);  // sda under 00:1f.2/ata1/host0/target0:0:0/0:0:0:0
  fx.add_stacked_block("sda1", "dm-0", 253, 0);
  auto sata = read_device(fx.root(), PciAddress{0, 0, 0x1f, 2});
  REQUIRE(sata);
  CHECK(device_nodes(fx.root(), *sata) ==
        std::vector<std::string>{"/dev/dm-0", "/dev/sda", "/dev/sda1", "/dev/vfio/5"});
  fx.add_holder(4747, "qemu-system-x86", "/dev/sda");
  auto h = find_holders(fx.root(), *sata);
  REQUIRE(h.size() == 1);
  CHECK(describe(h) == "pid 4747 (qemu-system-x86) holds /dev/sda");
  auto u = find_kernel_users(fx.root(), *sata);
  REQUIRE(u.size() == 2);
  CHECK(describe(u[0]) == "backs /dev/sda1 mounted on / (ext4)");
  CHECK(describe(u[1]) == "backs /dev/dm-0 (on sda1), which is active");
  // The SMBus beside it has none of them.
  auto smbus = read_device(fx.root(), PciAddress{0, 0, 0x1f, 3});
  CHECK(device_nodes(fx.root(), *smbus) == std::vector<std::string>{"/dev/vfio/5"});
  CHECK(find_kernel_users(fx.root(), *smbus).empty());
}

TEST_CASE("kernel users go with the driver: none once the function left it") {
  test::Fixture fx;
  test::Fixture::kernel_held(fx);
  fx.add_mount("254:1", "/dev/vda1", "/", "ext4");
  REQUIRE(fx.kernel().write("/sys/bus/pci/drivers/virtio-pci/unbind", "0000:00:04.0",
                            WriteKind::blocking));
  auto disk = read_device(fx.root(), PciAddress{0, 0, 4, 0});
  CHECK(find_kernel_users(fx.root(), *disk).empty());
}

TEST_CASE(
    "kernel users: an NVMe disk under its subsystem (native multipath), and one under the "
    "controller") {
  test::Fixture fx;
  test::Fixture::kernel_held(fx);
  fx.add_driver("nvme", "nvme");
  for (const char* bdf : {"0000:00:06.0", "0000:00:07.0"})
    fx.add_device(test::FakeDevice{.bdf = bdf,
                                   .vendor = 0x144d,
                                   .device = 0xa808,
                                   .class_code = 0x010802,
                                   .driver = "nvme",
                                   .group = bdf[9] == '6' ? 5 : 6});
  fx.add_block(test::FakeBlock{.bdf = "0000:00:06.0",
                               .name = "nvme0n1",
                               .major = 259,
                               .minor = 0,
                               .partitions = {"nvme0n1p1"},
                               .sub = "nvme/nvme0",
                               .subsystem = "nvme-subsys0"});
  fx.add_block(test::FakeBlock{
      .bdf = "0000:00:07.0", .name = "nvme1n1", .major = 259, .minor = 4, .sub = "nvme/nvme1"});
  fx.add_mount("259:1", "/dev/nvme0n1p1", "/", "ext4");
  fx.add_mount("259:4", "/dev/nvme1n1", "/srv", "xfs");
  auto first = read_device(fx.root(), PciAddress{0, 0, 6, 0});
  auto second = read_device(fx.root(), PciAddress{0, 0, 7, 0});
  auto u = find_kernel_users(fx.root(), *first);
  REQUIRE(u.size() == 1);
  CHECK(describe(u[0]) == "backs /dev/nvme0n1p1 mounted on / (ext4)");
  u = find_kernel_users(fx.root(), *second);
  REQUIRE(u.size() == 1);
  CHECK(describe(u[0]) == "backs /dev/nvme1n1 mounted on /srv (xfs)");
  // The virtio disk's function is not the NVMe controller's.
  auto disk = read_device(fx.root(), PciAddress{0, 0, 4, 0});
  CHECK(find_kernel_users(fx.root(), *disk).empty());
}
