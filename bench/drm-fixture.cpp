// Builds a fixture tree with GPUS GPUs (default 4), each with a DRM card, a
// render node and four connectors, leaves it on disk and prints its
// directory, for bench/drm-list.sh. The caller removes it.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "fixture.hpp"

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 4;
  if (argc > 2 || n < 1 || n > 64) {
    std::fprintf(stderr, "usage: %s [GPUS 1..64]\n", argv[0]);
    return 2;
  }
  try {
    pt::test::Fixture fx;
    fx.keep();
    pt::test::Fixture::many_devices(fx, 3 * n);
    for (int i = 0; i < n; ++i) {
      char bdf[32];
      std::snprintf(bdf, sizeof bdf, "0000:%02x:00.0", i + 1);
      using pt::test::FakeConnector;
      fx.add_drm_card(pt::test::FakeDrmCard{
          .bdf = bdf,
          .minor = i,
          .render = 128 + i,
          .driver_name = "nvidia-drm",
          .connectors = {FakeConnector{.name = "HDMI-A-1"},
                         FakeConnector{.name = "DP-1", .status = "disconnected", .modes = 0},
                         FakeConnector{.name = "DP-2", .status = "disconnected", .modes = 0},
                         FakeConnector{.name = "DP-3", .status = "disconnected", .modes = 0}},
          .fb = i});
    }
    std::printf("%s\n", fx.dir().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
