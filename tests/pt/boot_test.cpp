#include "pt/boot.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fixture.hpp"
#include "pt/bind_cmd.hpp"

using namespace pt;
using namespace std::chrono_literals;
using pt::test::FakeDevice;
using pt::test::Fixture;

namespace {

// The moment pt-bind boot runs in the initramfs: the functions exist, no
// driver has probed them yet.
void unprobed_gpu(Fixture& fx) {
  fx.add_driver("vfio-pci", "vfio_pci")
      .add_driver("nvidia", "nvidia")
      .add_driver("snd_hda_intel", "snd_hda_intel");
  fx.add_bridge("0000:00:01.0");
  fx.add_device(FakeDevice{.bdf = "0000:01:00.0",
                           .device = 0x2484,
                           .class_code = 0x030000,
                           .parent = "0000:00:01.0",
                           .native_driver = "nvidia",
                           .group = 1,
                           .boot_vga = true});
  fx.add_device(FakeDevice{.bdf = "0000:01:00.1",
                           .device = 0x228b,
                           .class_code = 0x040300,
                           .parent = "0000:00:01.0",
                           .native_driver = "snd_hda_intel",
                           .group = 1});
}

void write_conf(Fixture& fx, const std::string& text) {
  fx.write_file("/etc/pt/pt.conf", text);
  ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
}

const char* const kClaim = test::kGuestClaim;

Result<Exit> run(Fixture& fx, bind::Options o, std::string& out) {
  Context ctx = fx.context(o.common.dry_run);
  std::ostringstream s;
  auto r = bind::run_in(o, ctx, s);
  out = s.str();
  return r;
}

}  // namespace

TEST_CASE("boot claims every configured function for vfio-pci, journaled as boot claims") {
  Fixture fx;
  unprobed_gpu(fx);
  write_conf(fx, kClaim);
  bind::Options o;
  o.command = "boot";
  std::string out;
  auto r = run(fx, o, out);
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  CHECK(fx.driver_of("0000:01:00.0") == "vfio-pci");
  CHECK(fx.driver_of("0000:01:00.1") == "vfio-pci");
  CHECK(fx.override_of("0000:01:00.0") == "vfio-pci");
  CHECK(fx.override_of("0000:01:00.1") == "vfio-pci");
  auto journal = load_journal(fx.root());
  REQUIRE(journal);
  REQUIRE(journal->devices.size() == 2);
  CHECK(journal->devices.at("0000:01:00.1").boot);
  CHECK(journal->devices.at("0000:01:00.1").driver.empty());
  CHECK(journal->devices.at("0000:01:00.0").to == "vfio-pci");
  CHECK_FALSE(journal->job);

  // Claimed at boot, the functions have no recorded host driver: attach
  // clears the override and the kernel picks one.
  o.command = "attach";
  o.devices = {"01:00.0"};
  REQUIRE(run(fx, o, out));
  CHECK(fx.driver_of("0000:01:00.0") == "nvidia");
  CHECK(fx.driver_of("0000:01:00.1") == "snd_hda_intel");
  CHECK(fx.override_of("0000:01:00.0") == "(null)");
  journal = load_journal(fx.root());
  REQUIRE(journal);
  CHECK(journal->devices.empty());
}

TEST_CASE("boot rolls every claim back when one fails, and journals nothing") {
  Fixture fx;
  unprobed_gpu(fx);
  write_conf(fx, kClaim);
  const auto before = fx.snapshot();
  // The audio function's probe fails after the GPU was claimed.
  fx.fail_write("/drivers_probe", "0000:01:00.1", EIO);
  bind::Options o;
  o.command = "boot";
  std::string out;
  auto r = run(fx, o, out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(fx.driver_of("0000:01:00.0") == "none");
  CHECK(fx.override_of("0000:01:00.0") == "(null)");
  CHECK(fx.snapshot() == before);
  auto journal = load_journal(fx.root());
  REQUIRE(journal);
  CHECK(journal->devices.empty());
  CHECK_FALSE(journal->job);
}

TEST_CASE("boot leaves a card whose ID does not match alone and says so") {
  Fixture fx;
  unprobed_gpu(fx);
  std::string conf = kClaim;
  conf.replace(conf.find("10de:2484"), 9, "1002:73bf");
  write_conf(fx, conf);
  const auto before = fx.snapshot();
  bind::Options o;
  o.command = "boot";
  std::string out;
  auto r = run(fx, o, out);
  REQUIRE(r);
  CHECK(*r == Exit::failed);
  CHECK(out.find("skipped: 0000:01:00.0 ([device.guest]) is 10de:2484, not the configured "
                 "1002:73bf; not claimed") != std::string::npos);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("boot --dry-run and a config without vfio devices change nothing") {
  Fixture fx;
  unprobed_gpu(fx);
  write_conf(fx, kClaim);
  const auto before = fx.snapshot();
  bind::Options o;
  o.command = "boot";
  o.common.dry_run = true;
  std::string out;
  REQUIRE(run(fx, o, out));
  CHECK(out.find("0000:01:00.0  no driver -> vfio-pci") != std::string::npos);
  CHECK(out.find("write /sys/bus/pci/devices/0000:01:00.0/driver_override \"vfio-pci\"") !=
        std::string::npos);
  CHECK(fx.snapshot() == before);

  write_conf(fx, "[device.host]\nbdf = \"0000:01:00.0\"\nboot = \"host\"\n");
  const auto before2 = fx.snapshot();
  o.common.dry_run = false;
  auto r = run(fx, o, out);
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  CHECK(out == "boot: /etc/pt/pt.conf claims no present function for vfio-pci\n");
  CHECK(fx.snapshot() == before2);
}

TEST_CASE("boot refuses a broken pt.conf with its position and changes nothing") {
  Fixture fx;
  unprobed_gpu(fx);
  write_conf(fx, "[device.guest]\nbdf = \"0000:01:00.0\"\nboot = \"vfio\"\ncompanion = []\n");
  const auto before = fx.snapshot();
  bind::Options o;
  o.command = "boot";
  std::string out;
  auto r = run(fx, o, out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().subject == "/etc/pt/pt.conf:4:1");
  CHECK(fx.snapshot() == before);
}

TEST_CASE(
    "udev-rules: driver_override on add, the recovery unit on bind, values only from pt.conf") {
  auto conf = parse_conf(kClaim, "/etc/pt/pt.conf");
  REQUIRE(conf);
  const std::string rules = boot::udev_rules(*conf);
  CHECK(rules.find("ACTION==\"add\", SUBSYSTEM==\"pci\", KERNEL==\"0000:01:00.0\", "
                   "ATTR{vendor}==\"0x10de\", "
                   "ATTR{device}==\"0x2484\", ATTR{driver_override}=\"vfio-pci\"\n") !=
        std::string::npos);
  CHECK(rules.find("ACTION==\"add\", SUBSYSTEM==\"pci\", KERNEL==\"0000:01:00.1\", "
                   "ATTR{vendor}==\"0x10de\", "
                   "ATTR{driver_override}=\"vfio-pci\"\n") != std::string::npos);
  CHECK(rules.find("ACTION==\"bind\", SUBSYSTEM==\"pci\", KERNEL==\"0000:01:00.0\", "
                   "ATTR{vendor}==\"0x10de\", "
                   "ATTR{device}==\"0x2484\", DRIVER!=\"vfio-pci\", TAG+=\"systemd\", "
                   "ENV{SYSTEMD_WANTS}+=\"pt-recover@0000:01:00.0.service\"\n") !=
        std::string::npos);
  // No rule runs a program, let alone a shell.
  CHECK(rules.find("RUN") == std::string::npos);
  CHECK(rules.find("PROGRAM") == std::string::npos);

  auto host =
      parse_conf("[device.h]\nbdf = \"0000:02:00.0\"\nboot = \"host\"\n", "/etc/pt/pt.conf");
  REQUIRE(host);
  CHECK(boot::udev_rules(*host).find("ACTION==") == std::string::npos);
}

TEST_CASE(
    "recover --dry-run lists the steps; a reset is skipped once the host driver has the function") {
  Fixture fx;
  Fixture::gpu_with_audio(fx);
  write_conf(fx, kClaim);
  const auto before = fx.snapshot();
  bind::Options o;
  o.command = "recover";
  o.devices = {"01:00.0"};
  o.common.dry_run = true;
  std::string out;
  auto r = run(fx, o, out);
  REQUIRE(r);
  CHECK(out.find("recover 0000:01:00.0: skip reset: the function is on nvidia, not vfio-pci\n") !=
        std::string::npos);
  CHECK(out.find("recover 0000:01:00.0: would run pt-bind --root " + fx.dir() +
                 " attach 0000:01:00.0\n") != std::string::npos);
  CHECK(out.find("recover 0000:01:00.0: would run pt-drm --root " + fx.dir() +
                 " check 0000:01:00.0\n") != std::string::npos);
  CHECK(out.find("recover 0000:01:00.0: done\n") != std::string::npos);
  CHECK(fx.snapshot() == before);

  // The slot names the device and its companion: the table's steps, once.
  o.devices = {"01:00"};
  std::string slot_out;
  auto slot = run(fx, o, slot_out);
  REQUIRE(slot);
  CHECK(slot_out == out);
  CHECK(fx.snapshot() == before);
  o.devices = {"02:00.0"};
  auto none = run(fx, o, out);
  REQUIRE_FALSE(none);
  CHECK(none.error().message.find("no such PCI device") != std::string::npos);
  o.devices = {"01:00.9"};
  auto bad = run(fx, o, out);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().exit == Exit::usage);
}

TEST_CASE("recover --dry-run: pt(7)'s recipe for a function pt.conf does not name") {
  Fixture fx;
  Fixture::gpu_with_audio(fx);
  const auto before = fx.snapshot();
  bind::Options o;
  o.command = "recover";
  o.devices = {"01:00"};
  o.reset_method = "flr";
  o.common.dry_run = true;
  std::string out;
  auto r = run(fx, o, out);
  REQUIRE(r);
  CHECK(out == "recover 0000:01:00.0: skip reset: the function is on nvidia, not vfio-pci\n"
               "recover 0000:01:00.0: would run pt-bind --root " + fx.dir() +
                   " attach 0000:01:00.0 0000:01:00.1\n"
               "recover 0000:01:00.0: would run pt-drm --root " + fx.dir() +
                   " wait 0000:01:00.0\n"
               "recover 0000:01:00.0: would run pt-vgaarb --root " + fx.dir() +
                   " restore 0000:01:00.0\n"
               "recover 0000:01:00.0: would run pt-console --root " + fx.dir() +
                   " restore 0000:01:00.0\n"
               "recover 0000:01:00.0: would run pt-drm --root " + fx.dir() +
                   " check 0000:01:00.0\n"
               "recover 0000:01:00.0 0000:01:00.1: done\n");
  CHECK(fx.snapshot() == before);
}

TEST_CASE("udev-match gives the packaged rules pt.conf's view of one function") {
  auto conf = parse_conf(kClaim, "/etc/pt/pt.conf");
  REQUIRE(conf);
  const PciAddress gpu{0, 1, 0, 0}, audio{0, 1, 0, 1}, other{0, 2, 0, 0};
  CHECK(boot::udev_match(*conf, gpu, 0x10de, 0x2484) ==
        "PT_DEVICE=guest\nPT_BOOT=vfio\nPT_RECOVER=1\n");
  // The recovery follows the named function's bind; its companions only move.
  CHECK(boot::udev_match(*conf, audio, 0x10de, 0x228b) == "PT_DEVICE=guest\nPT_BOOT=vfio\n");
  CHECK(boot::udev_match(*conf, gpu, 0x10de, 0x1b80) == "");
  CHECK(boot::udev_match(*conf, audio, 0x1002, 0xab28) == "");
  CHECK(boot::udev_match(*conf, other, 0x10de, 0x2484) == "");
}

TEST_CASE("pt-bind udev-match reads the function's IDs from sysfs") {
  Fixture fx;
  unprobed_gpu(fx);
  write_conf(fx, kClaim);
  bind::Options o;
  o.command = "udev-match";
  o.devices = {"0000:01:00.0"};
  std::string out;
  REQUIRE(run(fx, o, out));
  CHECK(out == "PT_DEVICE=guest\nPT_BOOT=vfio\nPT_RECOVER=1\n");
  o.devices = {"01:00.0"};
  auto bad = run(fx, o, out);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().exit == Exit::usage);
}

TEST_CASE("udev-rules and udev-match stay one rule a line whatever a name holds") {
  auto conf = parse_conf(std::string(kClaim) +
                             "\n[device.\"odd-name(1)@x:y+z\"]\nbdf = "
                             "\"0000:02:00.0\"\nboot = \"vfio\"\nrecover = [\"attach\"]\n",
                         "/etc/pt/pt.conf");
  REQUIRE(conf);
  auto count_lines = [](const std::string& s) { return std::count(s.begin(), s.end(), '\n'); };
  const std::string good = boot::udev_rules(*conf);
  CHECK(good.find("# [device.odd-name(1)@x:y+z]\n") != std::string::npos);
  // A Conf that did not come through the parser (a future source, a bug):
  // its name cannot add a line, close a quote or assign.
  Conf bad = *conf;
  bad.devices[0].name = "guest\nRUN+=\"/bin/sh -c x\"";
  const std::string rules = boot::udev_rules(bad);
  CHECK(count_lines(rules) == count_lines(good));
  CHECK(rules.find("\nRUN") == std::string::npos);
  CHECK(rules.find("# [device.guest\\x0aRUN+\\x3d\\x22/bin/sh -c x\\x22]\n") != std::string::npos);
  const std::string match = boot::udev_match(bad, bad.devices[0].bdf, 0x10de, 0x2484);
  CHECK(match ==
        "PT_DEVICE=guest\\x0aRUN+\\x3d\\x22/bin/sh -c x\\x22\nPT_BOOT=vfio\nPT_RECOVER=1\n");
}

TEST_CASE(
    "a companion that is a bridge, or outside the slot and group, is refused by every conf "
    "command") {
  Fixture fx;
  Fixture::group_with_unrelated(fx);  // 00:01.0 root port, 01:00.0-2 GPU, 02:00.0 NIC (group 1)
  fx.add_device(FakeDevice{
      .bdf = "0000:00:1b.0", .class_code = 0x040300, .driver = "snd_hda_intel", .group = 7});
  struct Case {
    std::string companion, why;
  };
  for (const auto& c :
       {Case{"0000:00:01.0",
             "companion 0000:00:01.0 is a bridge (class 0604), which pt never moves"},
        Case{"0000:00:1b.0",
             "companion 0000:00:1b.0 shares neither the slot nor the IOMMU group "
             "of 0000:01:00.0"}}) {
    CAPTURE(c.companion);
    write_conf(fx,
               "[device.guest]\nbdf = \"0000:01:00.0\"\nid = \"10de:2484\"\nboot = "
               "\"vfio\"\ncompanions = [\"" +
                   c.companion + "\"]\nrecover = [\"attach\"]\n");
    const auto before = fx.snapshot();
    for (const char* command : {"boot", "udev-rules", "udev-match", "boot-check"}) {
      CAPTURE(command);
      bind::Options o;
      o.command = command;
      if (std::string(command) == "udev-match") o.devices = {"0000:01:00.0"};
      std::string out;
      auto r = run(fx, o, out);
      REQUIRE_FALSE(r);
      CHECK(r.error().exit == Exit::usage);
      CHECK(r.error().subject == "/etc/pt/pt.conf: [device.guest]");
      CHECK(r.error().message.starts_with(c.why));
      CHECK(out.find("ATTR{driver_override}") == std::string::npos);
      CHECK(fx.snapshot() == before);
    }
    CHECK(fx.kernel().log.empty());
  }
  // A companion in the slot, or in the group on another slot, is fine.
  write_conf(
      fx,
      "[device.guest]\nbdf = \"0000:01:00.0\"\nboot = \"vfio\"\ncompanions = [\"0000:01:00.1\", "
      "\"0000:02:00.0\"]\n");
  bind::Options o;
  o.command = "udev-rules";
  std::string out;
  REQUIRE(run(fx, o, out));
  CHECK(out.find("KERNEL==\"0000:02:00.0\"") != std::string::npos);
}
