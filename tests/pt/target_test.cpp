#include "pt/target.hpp"

#include <doctest/doctest.h>

#include "fixture.hpp"

using namespace pt;

namespace {

// gpu_with_audio: 01:00.0 VGA, 01:00.1 audio, behind root port 00:01.0.
struct Env {
  test::Fixture fx;
  std::vector<Device> all;
  Env() {
    test::Fixture::gpu_with_audio(fx);
    all = scan_devices(fx.root(), ScanOptions{.names = false}).value();
  }
  Result<std::vector<Device>> resolve(const std::string& input, const target::Rules& rules) {
    return target::resolve(all, parse_device_spec(input).value(), rules);
  }
};

std::vector<std::string> names(const std::vector<Device>& ds) {
  std::vector<std::string> out;
  for (const auto& d : ds) out.push_back(d.addr.str());
  return out;
}

}  // namespace

TEST_CASE("the every rule takes every function of a slot, bridges only when asked") {
  Env e;
  auto slot = e.resolve("01:00", target::any());
  REQUIRE(slot);
  CHECK(names(*slot) == std::vector<std::string>{"0000:01:00.0", "0000:01:00.1"});
  CHECK(e.resolve("00:01.0", target::any()));
  auto bridge = e.resolve("00:01.0", target::endpoints());
  REQUIRE_FALSE(bridge);
  CHECK(bridge.error().subject == "0000:00:01.0");
  CHECK(bridge.error().message.starts_with("is a PCI bridge;"));
  auto missing = e.resolve("07:00", target::endpoints());
  REQUIRE_FALSE(missing);
  CHECK(missing.error().describe() ==
        "'07:00': no such PCI device; list devices with 'pt-bind list' (No such device)");
}

TEST_CASE("several specs name each function once") {
  Env e;
  auto specs = target::parse_all({"01:00", "01:00.1"});
  REQUIRE(specs);
  auto r = target::resolve(e.all, *specs, target::endpoints());
  REQUIRE(r);
  CHECK(names(*r) == std::vector<std::string>{"0000:01:00.0", "0000:01:00.1"});
  auto bad = target::parse_all({"01:00", "zz"});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().exit == Exit::usage);
}

TEST_CASE("the single rule picks the VGA function of a slot and names what it refuses") {
  Env e;
  auto vga = e.resolve("01:00", target::vga(false));
  REQUIRE(vga);
  CHECK(names(*vga) == std::vector<std::string>{"0000:01:00.0"});
  auto audio = e.resolve("01:00.1", target::vga(false));
  REQUIRE_FALSE(audio);
  CHECK(audio.error().subject == "0000:01:00.1");
  CHECK(audio.error().message.starts_with("is not a VGA device (class 0403)"));
  auto missing = e.resolve("07:00.0", target::vga(false));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message == "no such PCI device; list VGA devices with 'pt-vgaarb list'");
}

TEST_CASE("read_one refuses or completes a slot as the tool's rule says") {
  Env e;
  auto slot = target::read_one(e.fx.root(), "01:00", target::console_gpu());
  REQUIRE_FALSE(slot);
  CHECK(slot.error().exit == Exit::usage);
  CHECK(slot.error().message == "names a slot; name the GPU function, e.g. 01:00.0");
  auto empty = target::read_one(e.fx.root(), "", target::console_gpu());
  REQUIRE_FALSE(empty);
  CHECK(empty.error().subject == "pt-console");
  auto audio = target::read_one(e.fx.root(), "01:00.1", target::console_gpu());
  REQUIRE_FALSE(audio);
  CHECK(audio.error().message.starts_with("0000:01:00.1 is not a display controller (class 0403)"));

  auto gpu = target::read_one(e.fx.root(), "01:00", target::drm_display());
  REQUIRE(gpu);
  CHECK(gpu->addr.str() == "0000:01:00.0");
  auto drm_audio = target::read_one(e.fx.root(), "01:00.1", target::drm_display());
  REQUIRE_FALSE(drm_audio);
  CHECK(drm_audio.error().message.starts_with("is not a display device (class 0x040300, audio)"));
  auto gone = target::read_one(e.fx.root(), "07:00.0", target::drm_display());
  REQUIRE_FALSE(gone);
  CHECK(gone.error().err == ENODEV);
}
