// pt-ansible-fixture SHAPE: builds the fixture tree the Ansible tests
// (tests/ansible/functional.sh) run the collection's modules on, leaves it on
// disk and prints its directory; the caller removes it.
//   host  gpu_with_audio: 01:00.0 GPU on nvidia, 01:00.1 audio on
//         snd_hda_intel, group 1 behind root port 00:01.0
//   vfio  the same slot with both functions moved to vfio-pci with
//         driver_override vfio-pci (their native drivers nvidia and
//         snd_hda_intel), as a detach leaves them
//   display  gpu_with_display (card0 with HDMI-A-1, fb0 on the GPU) with
//         fbcon bound: the console a detach must release first
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include "fixture.hpp"

namespace {

// What a detach leaves, made the way detach makes it, through the fixture's
// kernel: the override that keeps each function on vfio-pci, then the move.
void vfio_slot(pt::test::Fixture& fx) {
  pt::test::Fixture::gpu_with_audio(fx);
  const std::pair<const char*, const char*> slot[] = {{"0000:01:00.1", "snd_hda_intel"},
                                                      {"0000:01:00.0", "nvidia"}};
  for (const auto& [bdf, native] : slot) {
    auto& k = fx.kernel();
    const std::string dev = std::string("/sys/bus/pci/devices/") + bdf;
    if (!k.write(dev + "/driver_override", "vfio-pci", pt::WriteKind::attribute) ||
        !k.write(std::string("/sys/bus/pci/drivers/") + native + "/unbind", bdf,
                 pt::WriteKind::blocking) ||
        !k.write("/sys/bus/pci/drivers_probe", bdf, pt::WriteKind::blocking))
      throw std::runtime_error(std::string("cannot move ") + bdf + " to vfio-pci");
  }
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
