// Builds the N-device fixture tree (default 256) for the benchmarks, leaves
// it on disk and prints its directory. The caller removes it.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "fixture.hpp"

int main(int argc, char** argv) {
  int n = 256;
  if (argc > 2) {
    std::fprintf(stderr, "usage: %s [DEVICES]\n", argv[0]);
    return 2;
  }
  if (argc == 2) {
    char* end = nullptr;
    long v = std::strtol(argv[1], &end, 10);
    if (!end || *end != '\0' || v < 1 || v > 4096) {
      std::fprintf(stderr, "%s: DEVICES must be an integer in 1..4096, got '%s'\n", argv[0], argv[1]);
      return 2;
    }
    n = int(v);
  }
  try {
    pt::test::Fixture fx;
    fx.keep();
    pt::test::Fixture::many_devices(fx, n);
    std::printf("%s\n", fx.dir().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
