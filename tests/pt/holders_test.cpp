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
