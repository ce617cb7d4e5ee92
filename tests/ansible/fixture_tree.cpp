// pt-ansible-fixture SHAPE: builds the fixture tree the Ansible tests
// (tests/ansible/functional.sh) run the collection's modules on, leaves it on
// disk and prints its directory; the caller removes it.
//   host  gpu_with_audio: 01:00.0 GPU on nvidia, 01:00.1 audio on
//         snd_hda_intel, group 1 behind root port 00:01.0
//   vfio  the same slot with both functions on vfio-pci with
//         driver_override vfio-pci (their native drivers nvidia and
//         snd_hda_intel), as a detach leaves them
//   display  gpu_with_display (card0 with HDMI-A-1, fb0 on the GPU) with
//         fbcon bound: the console a detach must release first
#include <cstdio>
#include <exception>
#include <string>

#include "fixture.hpp"

namespace {

void vfio_slot(pt::test::Fixture& fx) {
  fx.add_driver("vfio-pci", "vfio_pci")
      .add_driver("nvidia", "nvidia")
      .add_driver("snd_hda_intel", "snd_hda_intel");
  fx.add_bridge("0000:00:01.0");
  fx.add_device(pt::test::FakeDevice{.bdf = "0000:01:00.0",
                                     .vendor = 0x10de,
                                     .device = 0x2484,
                                     .class_code = 0x030000,
                                     .parent = "0000:00:01.0",
                                     .driver = "vfio-pci",
                                     .native_driver = "nvidia",
                                     .group = 1,
                                     .boot_vga = true});
  fx.add_device(pt::test::FakeDevice{.bdf = "0000:01:00.1",
                                     .vendor = 0x10de,
                                     .device = 0x228b,
                                     .class_code = 0x040300,
                                     .parent = "0000:00:01.0",
                                     .driver = "vfio-pci",
                                     .native_driver = "snd_hda_intel",
                                     .group = 1,
                                     .reset_methods = std::vector<std::string>{"flr"}});
  // What detach leaves: the override that keeps them there.
  for (const char* bdf : {"0000:01:00.0", "0000:01:00.1"})
    fx.write_file(std::string("/sys/bus/pci/devices/") + bdf + "/driver_override", "vfio-pci\n");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string shape = argc == 2 ? argv[1] : "";
  if (shape != "host" && shape != "vfio" && shape != "display") {
    std::fprintf(stderr, "usage: %s host|vfio|display\n", argv[0]);
    return 2;
  }
  try {
    pt::test::Fixture fx;
    fx.keep();
    if (shape == "host") {
      pt::test::Fixture::gpu_with_audio(fx);
    } else if (shape == "display") {
      pt::test::Fixture::gpu_with_display(fx);
      fx.add_fbcon(true);
    } else {
      vfio_slot(fx);
    }
    std::printf("%s\n", fx.dir().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
