// Builds the fixture `bench/status.sh` times `pt status` on: a GPU with its
// HDMI audio (gpu_with_display: DRM card0 with HDMI-A-1, fb0), fbcon bound
// and a process holding the card. Leaves the tree on disk and prints its
// directory; the caller removes it.
#include <cstdio>
#include <exception>

#include "fixture.hpp"

int main(int argc, char** argv) {
  if (argc != 1) {
    std::fprintf(stderr, "usage: %s\n", argv[0]);
    return 2;
  }
  try {
    pt::test::Fixture fx;
    fx.keep();
    pt::test::Fixture::gpu_with_display(fx);
    fx.add_fbcon(true);
    fx.add_holder(4242, "Xorg", "/dev/dri/card0");
    std::printf("%s\n", fx.dir().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
