// pt-bind as a user runs it: the real binary on fixture trees through --root.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "fixture.hpp"
#include "pt/journal.hpp"
#include "run_tool.hpp"

namespace {
pt::test::Run pt_bind(const std::string& args) {
  return pt::test::run_tool("pt-bind", args);
}
}  // namespace

TEST_CASE("malformed devices exit 2 and quote the input") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  auto r = pt_bind("--root " + fx.dir() + " detach zz:00.0");
  CHECK(r.status == 2);
  CHECK(r.out.find("'zz:00.0'") != std::string::npos);
  r = pt_bind("--root " + fx.dir() + " show 1:2:3:4");
  CHECK(r.status == 2);
  CHECK(r.out.find("'1:2:3:4'") != std::string::npos);
}

TEST_CASE("usage errors exit 2") {
  CHECK(pt_bind("").status == 2);
  CHECK(pt_bind("frobnicate").status == 2);
  CHECK(pt_bind("detach").status == 2);
  CHECK(pt_bind("--timeout 0 list").status == 2);
  CHECK(pt_bind("--root /nonexistent/pt list").status == 2);
}

TEST_CASE("a missing device exits 1 and names it") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  auto before = fx.snapshot();
  auto r = pt_bind("--root " + fx.dir() + " detach 05:00.0");
  CHECK(r.status == 1);
  CHECK(r.out.find("'05:00.0': no such PCI device") != std::string::npos);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("list --json on a fixture tree through --root and PT_ROOT") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  auto r = pt_bind("--root " + fx.dir() + " list --json");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j.size() == 3);
  auto env = pt_bind("list --class display --json").out;  // the real root: only reads
  auto viaenv = ::popen(
      ("PT_ROOT=" + fx.dir() + " " + PT_BIN_DIR + "/pt-bind list --class display --json").c_str(),
      "r");
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, viaenv)) > 0) text.append(buf, n);
  ::pclose(viaenv);
  auto je = nlohmann::json::parse(text);
  REQUIRE(je.size() == 1);
  CHECK(je[0]["device"] == "0000:01:00.0");
}

TEST_CASE("--dry-run prints the plan and changes nothing; global options work after the command") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  auto before = fx.snapshot();
  auto r = pt_bind("detach 01:00 --root " + fx.dir() + " --dry-run");
  CHECK(r.status == 0);
  CHECK(r.out.find("write /sys/bus/pci/drivers/snd_hda_intel/unbind \"0000:01:00.1\"") !=
        std::string::npos);
  CHECK(fx.snapshot() == before);
  CHECK_FALSE(fx.exists("/run/pt"));
}

TEST_CASE("--version prints the version and, built from git, git describe") {
  auto r = pt_bind("--version");
  CHECK(r.status == 0);
  const std::string git = PT_GIT_DESCRIBE;
  CHECK(r.out ==
        "pt-bind " + std::string(PT_VERSION) + (git.empty() ? "" : " (git " + git + ")") + "\n");
}

TEST_CASE("set and unset take DEV and DRIVER as positionals") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  auto before = fx.snapshot();
  auto r = pt_bind("--root " + fx.dir() + " --dry-run set 01:00.1 vfio-pci");
  CHECK(r.status == 0);
  CHECK(r.out.find("write /sys/bus/pci/devices/0000:01:00.1/driver_override \"vfio-pci\"") !=
        std::string::npos);
  r = pt_bind("--root " + fx.dir() + " --dry-run unset 01:00.1");
  CHECK(r.status == 0);
  CHECK(r.out.find("no driver_override set") != std::string::npos);
  CHECK(pt_bind("--root " + fx.dir() + " show 01:00.0 01:00.1").status == 2);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("boot with a broken pt.conf exits 2 with file:line:column and changes nothing") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  fx.write_file("/etc/pt/pt.conf",
                "[device.gpu]\nbdf = \"0000:01:00.0\"\nboot = \"vfio\"\ncompanion = []\n");
  ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
  auto before = fx.snapshot();
  auto r = pt_bind("--root " + fx.dir() + " boot");
  CHECK(r.status == 2);
  CHECK(r.out ==
        "pt-bind: /etc/pt/pt.conf:4:1: unknown key 'companion' in [device.gpu]; keys are bdf, id, "
        "boot, "
        "companions, recover, step, power_control, d3cold_allowed, vfs\n");
  CHECK(fx.snapshot() == before);
}

TEST_CASE("udev-rules and udev-match read pt.conf under --root") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  fx.write_file(
      "/etc/pt/pt.conf",
      "[device.gpu]\nbdf = \"0000:01:00.0\"\nid = \"10de:2484\"\nboot = \"vfio\"\ncompanions = "
      "[\"0000:01:00.1\"]\nrecover = [\"vgaarb\"]\n");
  ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
  auto rules = pt_bind("--root " + fx.dir() + " udev-rules");
  CHECK(rules.status == 0);
  CHECK(rules.out.find("KERNEL==\"0000:01:00.1\", ATTR{vendor}==\"0x10de\", "
                       "ATTR{driver_override}=\"vfio-pci\"") != std::string::npos);
  CHECK(rules.out.find("ENV{SYSTEMD_WANTS}+=\"pt-recover@0000:01:00.0.service\"") !=
        std::string::npos);
  auto match = pt_bind("--root " + fx.dir() + " udev-match 0000:01:00.0");
  CHECK(match.status == 0);
  CHECK(match.out == "PT_DEVICE=gpu\nPT_BOOT=vfio\nPT_RECOVER=1\n");
  CHECK(pt_bind("--root " + fx.dir() + " udev-match 0000:02:00.0").out.empty());
}

TEST_CASE("boot-check names the missing initramfs and what to run") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  auto r = pt_bind("--root " + fx.dir() + " boot-check");
  CHECK(r.status == 1);
  CHECK(r.out.find("no initramfs for kernel") != std::string::npos);
  CHECK(r.out.find("update-initramfs -c -k") != std::string::npos);
  auto named = pt_bind("--root " + fx.dir() + " boot-check --initramfs /boot/none.img");
  CHECK(named.status == 2);
  CHECK(named.out.find("--initramfs /boot/none.img: no such file") != std::string::npos);
}

TEST_CASE("pt-bind --root '' is exit 2 naming --root, also over PT_ROOT") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  pt::test::check_empty_root_refused("pt-bind", fx.dir(), "list");
}

TEST_CASE("pt-bind --timeout and --lock-timeout: finite seconds up to a day, else exit 2") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  pt::test::check_durations("pt-bind", "--root " + fx.dir() + " list");
}

TEST_CASE("show with a holder named in bytes that are not UTF-8, with an escape sequence") {
  // Any user names their process (prctl PR_SET_NAME); it must not abort
  // root's --json nor drive root's terminal.
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  fx.add_holder(4242, "\xff\xfe\x1b[31mevil", "/dev/vfio/1");
  auto r = pt_bind("--root " + fx.dir() + " --json show 01:00.0");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["holders"].size() == 1);
  CHECK(j["holders"][0]["pid"] == 4242);
  CHECK(j["holders"][0]["command"] == "\xEF\xBF\xBD\xEF\xBF\xBD\x1b[31mevil");
  CHECK(r.out.find('\x1b') == std::string::npos);  // JSON writes it \u001b
  r = pt_bind("--root " + fx.dir() + " show 01:00.0");
  REQUIRE(r.status == 0);
  CHECK(r.out.find('\x1b') == std::string::npos);
  CHECK(r.out.find("pid 4242 (\xff\xfe\\x1b[31mevil) holds /dev/vfio/1") != std::string::npos);
  // A refusal naming the holder prints it the same way.
  r = pt_bind("--root " + fx.dir() + " attach 01:00.0");
  CHECK(r.out.find('\x1b') == std::string::npos);
}

TEST_CASE("a FIFO or a 10 MiB file as an attribute: show finishes and reads around it") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  const std::string dev = fx.dir() + "/sys/bus/pci/devices/0000:01:00.0";
  REQUIRE(::unlink((dev + "/driver_override").c_str()) == 0);
  REQUIRE(::mkfifo((dev + "/driver_override").c_str(), 0644) == 0);
  fx.write_file("/sys/bus/pci/devices/0000:01:00.0/boot_vga", std::string(10 << 20, '1'));
  auto start = std::chrono::steady_clock::now();
  // timeout(1): the unfixed pt-bind waits for a writer on the FIFO forever.
  auto r = pt::test::run_tool_with("timeout 20 ", "pt-bind",
                                   "--root " + fx.dir() + " --json show 01:00.0");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["driver_override"].is_null());  // not read: not a regular file
  CHECK(j["boot_vga"].is_null());         // not read: over 1 MiB
}

TEST_CASE("an overflowing iommu_group link name is no group: detach refuses, no /dev/vfio/-1") {
  for (const std::string name : {"99999999999999999999", "-1"}) {
    CAPTURE(name);
    pt::test::Fixture fx;
    pt::test::Fixture::gpu_with_audio(fx);
    fx.add_driver("vfio-pci", "vfio_pci");
    const std::string link = fx.dir() + "/sys/bus/pci/devices/0000:01:00.0/iommu_group";
    std::filesystem::remove(link);
    std::filesystem::create_symlink("../../../../kernel/iommu_groups/" + name, link);
    auto before = fx.snapshot();
    auto r = pt_bind("--root " + fx.dir() + " --json show 01:00.0");
    REQUIRE(r.status == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["iommu_group"].is_null());
    CHECK(r.out.find("/dev/vfio/-") == std::string::npos);
    r = pt_bind("--root " + fx.dir() + " detach 01:00.0");
    CHECK(r.status == 1);
    CHECK(r.out.find("0000:01:00.0: has no IOMMU group") != std::string::npos);
    CHECK(r.out.find("/dev/vfio/-") == std::string::npos);
    CHECK(fx.snapshot() == before);
  }
}

TEST_CASE("pt.conf: a step timeout of inf or 1e300 is refused when read; CRLF line ends read") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  const std::string head =
      "[device.gpu]\nbdf = \"0000:01:00.0\"\nboot = \"vfio\"\nrecover = [\"drm-wait\"]\n"
      "[device.gpu.step.drm-wait]\ntimeout = ";
  for (const std::string bad : {"inf", "nan", "1e300", "9.3e15", "-1"}) {
    CAPTURE(bad);
    fx.write_file("/etc/pt/pt.conf", head + bad + "\n");
    ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
    auto r = pt_bind("--root " + fx.dir() + " udev-match 0000:01:00.0");
    CHECK(r.status == 2);
    CHECK(r.out.find("pt-bind: /etc/pt/pt.conf:6:11: drm-wait.timeout: '") == 0);
  }
  std::string crlf;
  for (char c : head + "15\n") {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  fx.write_file("/etc/pt/pt.conf", crlf);
  ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
  auto r = pt_bind("--root " + fx.dir() + " udev-match 0000:01:00.0");
  CHECK(r.status == 0);
  CHECK(r.out == "PT_DEVICE=gpu\nPT_BOOT=vfio\nPT_RECOVER=1\n");
}

TEST_CASE(
    "PT_LOCK_FD naming a shared lock: detach refuses, changes nothing, the lock stays shared") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  fx.add_driver("vfio-pci", "vfio_pci");
  REQUIRE(pt::check_state_dir(fx.root(), true));
  const std::string lock = fx.dir() + pt::kLockPath;
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0600);  // no O_CLOEXEC: the tool inherits it
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_SH | LOCK_NB) == 0);
  auto before = fx.snapshot();
  auto r = pt::test::run_tool_with("PT_LOCK_FD=" + std::to_string(fd) + " ", "pt-bind",
                                   "--root " + fx.dir() + " detach 01:00.0");
  CHECK(r.status == 1);
  CHECK(r.out.find("PT_LOCK_FD=" + std::to_string(fd) + ": holds a shared lock") !=
        std::string::npos);
  CHECK(fx.snapshot() == before);
  CHECK(fx.driver_of("0000:01:00.0") == "nvidia");
  int probe = ::open(lock.c_str(), O_RDONLY);
  CHECK(::flock(probe, LOCK_EX | LOCK_NB) != 0);
  CHECK(::flock(probe, LOCK_SH | LOCK_NB) == 0);
  ::close(probe);
  ::close(fd);
}

TEST_CASE("a /proc entry whose pid overflows an int is skipped, not an abort") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  fx.add_holder(4242, "qemu", "/dev/vfio/1");
  const std::string big = fx.dir() + "/proc/99999999999999999999";
  std::filesystem::create_directories(big + "/fd");
  std::filesystem::create_symlink("/dev/vfio/1", big + "/fd/3");
  fx.write_file("/proc/99999999999999999999/comm", "big\n");
  auto r = pt_bind("--root " + fx.dir() + " --json show 01:00.0");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["holders"].size() == 1);
  CHECK(j["holders"][0]["pid"] == 4242);
}

TEST_CASE(
    "detach of a chipset's SMBus names the SATA controller and LPC bridge, exits 1, writes "
    "nothing") {
  pt::test::Fixture fx;
  pt::test::Fixture::intel_chipset(fx);
  auto before = fx.snapshot();
  for (const char* dry : {"--dry-run ", ""}) {
    CAPTURE(dry);
    auto r = pt_bind("--root " + fx.dir() + " " + dry + "detach 00:1f.3");
    CHECK(r.status == 1);
    CHECK(
        r.out.find(
            "pt-bind: 0000:00:1f.3: its IOMMU group also holds 0000:00:1f.0 (lpc_ich, class 0601), "
            "a bridge that pt never unbinds, and 0000:00:1f.2 (ahci), which you did not name") !=
        std::string::npos);
    CHECK(r.out.find("write ") == std::string::npos);
    CHECK(fx.snapshot() == before);
    CHECK_FALSE(fx.exists("/run/pt/journal.json"));
  }
  auto host = pt_bind("--root " + fx.dir() + " detach 00:00.0");
  CHECK(host.status == 1);
  CHECK(host.out.find("0000:00:00.0: is a bridge (class 0600)") != std::string::npos);
  auto dots = pt_bind("--root " + fx.dir() + " detach --to .. 00:1f.3");
  CHECK(dots.status == 2);
  CHECK(dots.out.find("--to '..'") != std::string::npos);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("a function gone from the bus leaves list and show of the others working") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  std::filesystem::remove_all(
      std::filesystem::canonical(fx.dir() + "/sys/bus/pci/devices/0000:01:00.1"));
  auto list = pt_bind("--root " + fx.dir() + " list --json");
  REQUIRE(list.status == 0);
  CHECK(nlohmann::json::parse(list.out).size() == 2);
  CHECK(pt_bind("--root " + fx.dir() + " show 01:00.0").status == 0);
  auto gone = pt_bind("--root " + fx.dir() + " show 01:00.1");
  CHECK(gone.status == 1);
  CHECK(gone.out.find("'01:00.1': no such PCI device") != std::string::npos);
}

TEST_CASE("udev-rules refuses a pt.conf whose device name would inject a line") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  fx.write_file(
      "/etc/pt/pt.conf",
      "[device.\"gpu\\nRUN+=\\\"/bin/sh -c x\\\"\"]\nbdf = \"0000:01:00.0\"\nboot = \"vfio\"\n");
  ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
  for (const char* cmd : {"udev-rules", "udev-match 0000:01:00.0"}) {
    CAPTURE(cmd);
    auto r = pt_bind("--root " + fx.dir() + " " + cmd);
    CHECK(r.status == 2);
    CHECK(r.out.find("device name 'gpu\\nRUN+=\"/bin/sh -c x\"' must be") != std::string::npos);
    CHECK(r.out.find("\nRUN") == std::string::npos);
  }
}

TEST_CASE("recover --recipe --reset-method takes pt-reset's methods or auto, else exit 2 listing them") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  const auto before = fx.snapshot();
  auto r = pt_bind("--root " + fx.dir() + " recover --recipe --reset-method warm 01:00.0");
  CHECK(r.status == 2);
  CHECK(r.out == "pt-bind: --reset-method 'warm': is not a reset method; use one of "
                 "device_specific, acpi, flr, af_flr, pm, bus, slot, rescan or auto\n");
  // Running the recovery checks the method the same way, before any step.
  r = pt_bind("--root " + fx.dir() + " --dry-run recover --reset-method warm 01:00.0");
  CHECK(r.status == 2);
  CHECK(r.out == "pt-bind: --reset-method 'warm': is not a reset method; use one of "
                 "device_specific, acpi, flr, af_flr, pm, bus, slot, rescan or auto\n");
  r = pt_bind("--root " + fx.dir() + " recover --recipe --reset-method flr 01:00.0");
  CHECK(r.status == 0);
  CHECK(r.out.find("pt-reset --method flr") != std::string::npos);
  r = pt_bind("--root " + fx.dir() + " recover --recipe --reset-method auto 01:00.0");
  CHECK(r.status == 0);
  CHECK(fx.snapshot() == before);
}

TEST_CASE("pt-bind list shows names from the tree's pci.ids") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  auto r = pt_bind("--root " + fx.dir() + " list --class audio");
  CHECK(r.status == 0);
  CHECK(r.out.find("0000:01:00.1  10de:228b  Audio device") != std::string::npos);
  CHECK(r.out.find(" NVIDIA Corporation GA104 High Definition Audio Controller\n") !=
        std::string::npos);
}

TEST_CASE("recover: --json --dry-run reports the steps; a lock held elsewhere stops it first (75)") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  const auto before = fx.snapshot();
  auto r = pt_bind("--root " + fx.dir() + " --json --dry-run recover --reset-method flr 01:00");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["op"] == "recover");
  CHECK(j["dry_run"] == true);
  CHECK(j["exit"] == 0);
  REQUIRE(j["steps"].size() == 6);
  // No pt.conf: pt(7)'s recipe; the GPU is on its host driver, so no reset.
  CHECK(j["steps"][0]["step"] == "reset");
  CHECK(j["steps"][0]["result"] == "skipped");
  CHECK(j["steps"][0]["detail"] == "the function is on nvidia, not vfio-pci");
  CHECK(j["steps"][1]["step"] == "attach");
  CHECK(j["steps"][1]["result"] == "planned");
  CHECK(j["steps"][1]["devices"] == nlohmann::json::array({"0000:01:00.0", "0000:01:00.1"}));
  CHECK(j["steps"][5]["argv"] ==
        nlohmann::json::array({"pt-drm", "--root", fx.dir(), "check", "0000:01:00.0"}));
  CHECK(fx.snapshot() == before);

  // The whole recovery takes the lock once, before its first step.
  ::mkdir((fx.dir() + "/run/pt").c_str(), 0700);
  int fd = ::open((fx.dir() + "/run/pt/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  auto busy = pt_bind("--root " + fx.dir() + " --lock-timeout 0.2 recover 01:00.0");
  ::close(fd);
  CHECK(busy.status == 75);
  CHECK(busy.out.find("another pt command holds the lock") != std::string::npos);
  CHECK(busy.out.find("recover 0000:01:00.0:") == std::string::npos);
  CHECK(fx.snapshot() == before);
}

TEST_CASE(
    "show of a GPU whose config space reads 64 bytes exits 0 and says so; its root port warns") {
  pt::test::Fixture fx;
  fx.add_bridge("0000:00:01.0", "", pt::test::FakeCaps{});  // no ACS
  fx.add_device(
      pt::test::FakeDevice{.bdf = "0000:01:00.0",
                           .vendor = 0x1002,
                           .device = 0x7300,
                           .parent = "0000:00:01.0",
                           .group = 1,
                           .caps = {.raw = pt::test::radeon_fiji_config().substr(0, 64)}});
  auto r = pt_bind("--root " + fx.dir() + " --json show 01:00.0");
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["config_size"] == 64);
  CHECK(j["capabilities_error"] ==
        "capabilities unreadable: config space is 64 bytes (run as root)");
  CHECK(j["acs"].is_null());
  REQUIRE(j["acs_path"].size() == 1);
  CHECK(j["acs_path"][0]["problem"] == "root port without ACS");
  r = pt_bind("--root " + fx.dir() + " show 01:00.0");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("  capabilities:     capabilities unreadable: config space is 64 bytes (run as "
                   "root)\n") != std::string::npos);
  CHECK(r.out.find("  warning: 0000:00:01.0 is a root port without ACS: ") != std::string::npos);
}

TEST_CASE("on a terminal, a command waiting for the pt lock says who holds it and for how long") {
  pt::test::Fixture fx;
  pt::test::Fixture::gpu_with_audio(fx);
  ::mkdir((fx.dir() + "/run/pt").c_str(), 0700);
  int fd = ::open((fx.dir() + "/run/pt/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  fx.add_flock(int(::getpid()), "/run/pt/lock");
  const std::string args = "--root " + fx.dir() + " --lock-timeout 0.8 detach 01:00.0";
  auto r = pt::test::run_tool_in_pty("pt-bind", args);
  CAPTURE(r.out);
  CHECK(r.status == 75);
  const std::string line =
      "\rpt-bind: waiting for the pt lock (held by pid " + std::to_string(::getpid()) + ") ... ";
  const auto first = r.out.find(line);
  REQUIRE(first != std::string::npos);
  CHECK(r.out.find(" s of 0.8 s", first) != std::string::npos);
  CHECK(r.out.find("\r\npt-bind: /run/pt/lock: another pt command holds the lock") !=
        std::string::npos);

  auto piped = pt_bind(args);
  CHECK(piped.status == 75);
  CHECK(piped.out.find("waiting for") == std::string::npos);
  CHECK(piped.out.find('\r') == std::string::npos);

  // Released within the wait: the line is cleared and the command goes on
  // (to a detach that fails on this static tree, past the lock).
  pid_t releaser = ::fork();
  REQUIRE(releaser >= 0);
  if (releaser == 0) {
    ::usleep(1500 * 1000);  // well past the 0.3 s before the line shows, even under ASan on a loaded machine
    ::_exit(0);
  }
  ::close(fd);  // the child holds the same open file description until it exits
  r = pt::test::run_tool_in_pty(
      "pt-bind", "--root " + fx.dir() + " --lock-timeout 5 --timeout 0.2 detach 01:00.0");
  CAPTURE(r.out);
  ::waitpid(releaser, nullptr, 0);
  CHECK(r.status != 75);
  // The line is redrawn while the wait lasts; the last drawing is cleared.
  const auto shown = r.out.rfind("\rpt-bind: waiting for the pt lock");
  REQUIRE(shown != std::string::npos);
  const auto end = r.out.find('\r', shown + 1);
  REQUIRE(end != std::string::npos);
  const size_t width = end - shown - 1;
  CHECK(r.out.compare(end, width + 2, "\r" + std::string(width, ' ') + "\r") == 0);
  CHECK(r.out.find("another pt command") == std::string::npos);
  CHECK(r.out.find("expected vfio-pci after the writes") != std::string::npos);
}
