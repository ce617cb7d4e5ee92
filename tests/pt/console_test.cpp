#include "pt/console.hpp"

#include <doctest/doctest.h>

#include <filesystem>

#include "fixture.hpp"

using namespace pt;
using namespace pt::console;
using namespace std::chrono_literals;

namespace {
Context context(test::Fixture& fx) {
  Context ctx;
  ctx.root = fx.root();
  ctx.writer = &fx.kernel();
  ctx.modules = &fx.modules();
  ctx.timeout = 200ms;
  return ctx;
}

State discovered(test::Fixture& fx) {
  auto s = discover(fx.root());
  REQUIRE(s);
  return *s;
}
}  // namespace

TEST_CASE("split_mark separates the (S)/(M) mark from the name") {
  CHECK(split_mark("(M) frame buffer device") ==
        std::pair<std::string, std::string>{"M", "frame buffer device"});
  CHECK(split_mark("(S) dummy device") == std::pair<std::string, std::string>{"S", "dummy device"});
  CHECK(split_mark("VGA+") == std::pair<std::string, std::string>{"", "VGA+"});
}

TEST_CASE("parse_iomem keeps the nesting of regions") {
  auto e = parse_iomem(
      "c0000000-febfffff : PCI Bus 0000:00\n  c1800000-c20fffff : PCI Bus 0000:01\n"
      "    c1800000-c1ffffff : 0000:01:00.0\n      c1800000-c1be7fff : efifb\n"
      "    c2000000-c2003fff : 0000:01:00.1\nfec00000-fec003ff : IOAPIC 0\n");
  REQUIRE(e.size() == 6);
  CHECK(e[3].name == "efifb");
  CHECK(e[3].depth == 3);
  CHECK(e[3].parents == std::vector<int>{0, 1, 2});
  CHECK(e[4].parents == std::vector<int>{0, 1});
  CHECK(e[5].parents.empty());
}

TEST_CASE("firmware framebuffer device names") {
  for (const char* n :
       {"efi-framebuffer.0", "simple-framebuffer.0", "vesa-framebuffer.0", "vga-framebuffer.0"})
    CHECK(is_firmware_fb_name(n));
  for (const char* n : {"platform-framebuffer.0", "efi-framebuffer.", "serial8250", "fb0"})
    CHECK(!is_firmware_fb_name(n));
}

TEST_CASE("discovery with efifb: the firmware framebuffer belongs to the GPU through /proc/iomem") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  auto s = discovered(fx);
  REQUIRE(s.vtconsoles.size() == 2);
  CHECK(s.vtconsoles[0].node == "vtcon0");
  CHECK(s.vtconsoles[0].name == "dummy device");
  CHECK(s.vtconsoles[0].mark == "S");
  CHECK(!s.vtconsoles[0].bound);
  CHECK(s.vtconsoles[1].is_fbcon());
  CHECK(s.vtconsoles[1].bound);
  REQUIRE(s.framebuffers.size() == 1);
  CHECK(s.framebuffers[0].node == "fb0");
  CHECK(s.framebuffers[0].name == "EFI VGA");
  CHECK(s.framebuffers[0].driver == "efi-framebuffer");
  CHECK(s.framebuffers[0].platform == "efi-framebuffer.0");
  CHECK(s.framebuffers[0].pci.empty());
  CHECK(s.framebuffers[0].gpu == "0000:01:00.0");
  REQUIRE(s.firmware.size() == 1);
  CHECK(s.firmware[0].name == "efi-framebuffer.0");
  CHECK(s.firmware[0].driver == "efi-framebuffer");
  CHECK(s.firmware[0].device == "/sys/devices/platform/efi-framebuffer.0");
  CHECK(s.firmware[0].framebuffers == std::vector<std::string>{"fb0"});
  CHECK(s.firmware[0].gpu == "0000:01:00.0");
  CHECK(s.firmware[0].how == Attribution::iomem);
  CHECK(s.active_vt == "tty1");
  CHECK(s.boot_vga == "0000:01:00.0");
  CHECK(!s.con2fb.known);
}

TEST_CASE("discovery with simpledrm parented to the GPU, as kernels from 6.9 do") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "simpledrm");
  auto s = discovered(fx);
  REQUIRE(s.firmware.size() == 1);
  CHECK(s.firmware[0].name == "simple-framebuffer.0");
  CHECK(s.firmware[0].how == Attribution::parent);
  CHECK(s.firmware[0].gpu == "0000:01:00.0");
  REQUIRE(s.framebuffers.size() == 1);
  CHECK(s.framebuffers[0].name == "simpledrmdrmfb");
  CHECK(s.framebuffers[0].pci == "0000:01:00.0");
  CHECK(s.framebuffers[0].gpu == "0000:01:00.0");
}

TEST_CASE("discovery with vesafb, and the boot_vga guess when /proc/iomem says nothing") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "vesafb");
  auto s = discovered(fx);
  REQUIRE(s.firmware.size() == 1);
  CHECK(s.firmware[0].driver == "vesa-framebuffer");
  CHECK(s.firmware[0].how == Attribution::iomem);
  fx.set_iomem("00000000-00000000 : PCI Bus 0000:00\n");
  s = discovered(fx);
  CHECK(s.firmware[0].how == Attribution::boot_vga);
  CHECK(s.firmware[0].gpu == "0000:01:00.0");
}

TEST_CASE("discovery without any framebuffer: VGA+ only") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "none");
  auto s = discovered(fx);
  REQUIRE(s.vtconsoles.size() == 1);
  CHECK(s.vtconsoles[0].name == "VGA+");
  CHECK(s.fbcon() == nullptr);
  CHECK(s.framebuffers.empty());
  CHECK(s.firmware.empty());
}

TEST_CASE("a framebuffer below the GPU (virtio-gpu's DEV/virtio0) belongs to it") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "drm");
  fx.add_framebuffer(1, "virtio_gpudrmfb", "0000:01:00.0", "virtio0", "virtio_gpu");
  auto s = discovered(fx);
  REQUIRE(s.framebuffers.size() == 2);
  CHECK(s.framebuffers[1].driver == "virtio_gpu");
  CHECK(s.framebuffers[1].pci == "0000:01:00.0");
  CHECK(s.framebuffers_of("0000:01:00.0").size() == 2);
  CHECK(s.framebuffers_of("0000:01:00.1").empty());
}

TEST_CASE("plan_release: fbcon first, then the firmware framebuffer, by name") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  auto p = plan_release(discovered(fx), "0000:01:00.0", Journal{});
  REQUIRE(p.steps.size() == 2);
  CHECK(p.steps[0].change.kind == "vtconsole");
  CHECK(p.steps[0].change.name == "frame buffer device");
  CHECK(p.steps[0].change.node == "vtcon1");
  CHECK(p.steps[0].change.driver.empty());
  REQUIRE(p.steps[0].change.served.size() == 1);
  CHECK(p.steps[0].change.served[0].node == "fb0");
  CHECK(p.steps[0].change.served[0].name == "EFI VGA");
  CHECK(p.steps[0].change.served[0].consoles.empty());  // no console map in a fixture tree
  CHECK(p.steps[0].path == "/sys/class/vtconsole/vtcon1/bind");
  CHECK(p.steps[0].value == "0");
  CHECK(p.steps[0].note.find("cannot be read") != std::string::npos);
  CHECK(p.steps[1].change.kind == "framebuffer");
  CHECK(p.steps[1].change.name == "efi-framebuffer.0");
  CHECK(p.steps[1].change.driver == "efi-framebuffer");
  CHECK(p.steps[1].path == "/sys/bus/platform/drivers/efi-framebuffer/unbind");
  CHECK(p.steps[1].value == "efi-framebuffer.0");
  CHECK(p.steps[1].note.find("/proc/iomem") != std::string::npos);
}

TEST_CASE("plan_release follows fbcon's console map when it is known") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "drm");
  fx.add_driver("bochs-drm");
  fx.add_device(test::FakeDevice{.bdf = "0000:00:05.0",
                                 .vendor = 0x1234,
                                 .device = 0x1111,
                                 .class_code = 0x030000,
                                 .driver = "bochs-drm",
                                 .boot_vga = false});
  fx.add_framebuffer(1, "bochs-drmdrmfb", "0000:00:05.0");
  auto s = discovered(fx);
  s.con2fb.known = true;
  for (int c = 1; c <= 63; ++c) s.con2fb.map[c] = 1;  // everything on the other GPU's fb1
  auto p = plan_release(s, "0000:01:00.0", Journal{});
  CHECK(p.steps.empty());
  REQUIRE(p.notes.size() == 1);
  CHECK(p.notes[0].find("fbcon maps no console to 0000:01:00.0") != std::string::npos);
  s.con2fb.map[1] = 0;  // tty1 on the GPU's fb0
  p = plan_release(s, "0000:01:00.0", Journal{});
  REQUIRE(p.steps.size() == 1);
  CHECK(p.steps[0].note == "fbcon maps tty1 to fb0 (nvidiadrmfb)");
  REQUIRE(p.notes.size() == 1);
  CHECK(p.notes[0].find("also takes it off fb1 (bochs-drmdrmfb)") != std::string::npos);
}

TEST_CASE("plan_release on a GPU without framebuffer or console is empty and says so") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "none");
  auto p = plan_release(discovered(fx), "0000:01:00.0", Journal{});
  CHECK(p.steps.empty());
  REQUIRE(!p.notes.empty());
  CHECK(p.notes[0].find("no frame buffer console") != std::string::npos);
}

TEST_CASE("apply verifies by reading back and names the reason the kernel kept fbcon") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  fx.add_vtconsole(1, "(M) frame buffer device", true);  // no other console driver registered
  fx.add_framebuffer(0, "nvidiadrmfb", "0000:01:00.0");
  auto ctx = context(fx);
  auto p = plan_release(discovered(fx), "0000:01:00.0", Journal{});
  REQUIRE(p.steps.size() == 1);
  auto r = apply(ctx, p.steps[0]);
  REQUIRE(!r);
  CHECK(r.error().message.find("reads back \"1\"") != std::string::npos);
  CHECK(r.error().message.find("no other console driver is registered") != std::string::npos);
  CHECK(fx.read("/sys/class/vtconsole/vtcon1/bind") == "1");
}

TEST_CASE("apply unbinds a firmware framebuffer and sees its fb go") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "vesafb");
  auto ctx = context(fx);
  auto p = plan_release(discovered(fx), "0000:01:00.0", Journal{});
  REQUIRE(p.steps.size() == 2);
  REQUIRE(apply(ctx, p.steps[0]));
  CHECK(fx.read("/sys/class/vtconsole/vtcon1/bind") == "0");
  CHECK(fx.read("/sys/class/vtconsole/vtcon0/bind") == "1");
  REQUIRE(apply(ctx, p.steps[1]));
  CHECK(!fx.exists("/sys/bus/platform/devices/vesa-framebuffer.0/driver"));
  CHECK(!fx.exists("/sys/class/graphics/fb0"));
  REQUIRE(fx.kernel().log.size() == 2);
  CHECK(fx.kernel().log[1] ==
        std::pair<std::string, std::string>{"/sys/bus/platform/drivers/vesa-framebuffer/unbind",
                                            "vesa-framebuffer.0"});
}

TEST_CASE("default_fb_driver picks the registered driver for a device kind") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "efifb");
  CHECK(default_fb_driver(fx.root(), "efi-framebuffer.0") == "efi-framebuffer");
  CHECK(default_fb_driver(fx.root(), "vesa-framebuffer.0").empty());
}

TEST_CASE(
    "a framebuffer on a virtio transport names the virtio child's driver (virtio-gpu on 6.1)") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  fx.add_vtconsole(0, "(M) frame buffer device", true);
  // 6.1: fb0 on the PCI function, virtio_gpu bound to its child virtio0.
  fx.add_framebuffer(0, "virtio_gpudrmfb", "0000:01:00.0");
  auto s = discovered(fx);
  REQUIRE(s.framebuffers.size() == 1);
  CHECK(s.framebuffers[0].driver == "nvidia");  // no virtio child yet: the function's own driver
  fx.add_framebuffer(1, "virtio_gpudrmfb", "0000:01:00.0", "virtio0", "virtio_gpu");
  s = discovered(fx);
  REQUIRE(s.framebuffers.size() == 2);
  CHECK(s.framebuffers[0].driver == "virtio_gpu");
  CHECK(s.framebuffers[0].pci == "0000:01:00.0");
  CHECK(s.framebuffers[1].driver == "virtio_gpu");  // 5.10: fbN on virtio0 itself
  CHECK(s.framebuffers[1].pci == "0000:01:00.0");
}

TEST_CASE("console lists read as ranges in messages") {
  CHECK(console_ranges({1, 2, 3, 7, 9, 10}) == "1-3+7+9-10");
  CHECK(console_ranges({5}) == "5");
  std::vector<int> all;
  for (int c = 1; c <= 63; ++c) all.push_back(c);
  CHECK(console_ranges(all) == "1-63");
}

TEST_CASE("set_con2fb refuses a /dev/fbN that is not a character device") {
  test::Fixture fx;
  test::Fixture::boot_console(fx, "drm");
  auto r = set_con2fb(fx.root(), "fb0", {1});
  REQUIRE(!r);
  CHECK(r.error().message.find("not a character device") != std::string::npos);
}
