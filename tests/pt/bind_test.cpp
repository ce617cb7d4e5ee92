#include "pt/bind.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <sstream>

#include "bind_env.hpp"
#include "fixture.hpp"
#include "pt/bind_cmd.hpp"
#include "pt/lock.hpp"
#include "pt/rebar.hpp"

using namespace pt;
using namespace std::chrono_literals;

namespace {

using Env = test::BindEnv;
using Shape = Env::Shape;

const char* kGpu = "0000:01:00.0";
const char* kAudio = "0000:01:00.1";

std::vector<std::string> probe_order(const test::FakeKernel& k) {
  std::vector<std::string> out;
  for (const auto& [path, value] : k.log)
    if (path == "/sys/bus/pci/drivers_probe") out.push_back(value);
  return out;
}

// Fails the Kth write of a clean run of COMMAND, identified by path, value and occurrence.
void fail_kth_write(test::Fixture& fx, const std::vector<std::pair<std::string, std::string>>& clean_log, size_t k,
                    int err) {
  const auto& [path, value] = clean_log[k];
  int nth = 0;
  for (size_t i = 0; i <= k; ++i)
    if (clean_log[i] == clean_log[k]) ++nth;
  fx.fail_write(path, value, err, nth);
}

}  // namespace

TEST_CASE("detach plans every function of the slot, audio first, with its writes") {
  Env e;
  auto journal = e.journal();
  auto plan = bind::plan_detach(e.ctx, {parse_device_spec("01:00.0").value()}, {}, journal);
  REQUIRE(plan);
  REQUIRE(plan->moves.size() == 2);
  CHECK(plan->moves[0].before.addr.str() == kAudio);
  CHECK(plan->moves[1].before.addr.str() == kGpu);
  const auto& w = plan->moves[0].writes;
  REQUIRE(w.size() == 3);
  CHECK(w[0].path == "/sys/bus/pci/devices/0000:01:00.1/driver_override");
  CHECK(w[0].value == "vfio-pci");
  CHECK(w[1].path == "/sys/bus/pci/drivers/snd_hda_intel/unbind");
  CHECK(w[1].value == kAudio);
  CHECK(w[1].kind == WriteKind::blocking);
  CHECK(w[2].path == "/sys/bus/pci/drivers_probe");
  REQUIRE(plan->moves[1].record);
  CHECK(plan->moves[1].record->driver == "nvidia");
  CHECK(plan->moves[1].record->module == "nvidia");
}

TEST_CASE("detach moves GPU and audio to vfio-pci and attach brings back exactly the original tree") {
  Env e;
  auto before = e.fx.snapshot();
  auto r = e.run("detach", {"01:00"});
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  CHECK(e.fx.driver_of(kGpu) == "vfio-pci");
  CHECK(e.fx.driver_of(kAudio) == "vfio-pci");
  CHECK(e.fx.override_of(kGpu) == "vfio-pci");
  CHECK(e.fx.override_of(kAudio) == "vfio-pci");
  CHECK(e.fx.exists("/dev/vfio/1"));
  CHECK(probe_order(e.fx.kernel()) == std::vector<std::string>{kAudio, kGpu});
  auto j = e.journal();
  REQUIRE(j.devices.size() == 2);
  CHECK(j.devices.at(kGpu).driver == "nvidia");
  CHECK(j.devices.at(kAudio).driver == "snd_hda_intel");
  CHECK(j.devices.at(kAudio).to == "vfio-pci");
  CHECK_FALSE(j.job);
  CHECK(e.out.find("snd_hda_intel -> vfio-pci") != std::string::npos);

  e.fx.kernel().log.clear();
  r = e.run("attach", {"01:00.0"});
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  CHECK(probe_order(e.fx.kernel()) == std::vector<std::string>{kGpu, kAudio});
  CHECK(e.fx.snapshot() == before);
  CHECK(e.journal().devices.empty());
}

TEST_CASE("detach and attach are idempotent and keep the original drivers") {
  Env e;
  REQUIRE(e.run("detach", {"01:00"}));
  e.fx.kernel().log.clear();
  auto r = e.run("detach", {"01:00"});
  REQUIRE(r);
  CHECK(e.fx.kernel().log.empty());
  CHECK(e.out.find("0000:01:00.0  already on vfio-pci") != std::string::npos);
  CHECK(e.out.find("0000:01:00.1  already on vfio-pci") != std::string::npos);
  CHECK(e.journal().devices.at(kGpu).driver == "nvidia");

  REQUIRE(e.run("attach", {"01:00"}));
  e.fx.kernel().log.clear();
  r = e.run("attach", {"01:00"});
  REQUIRE(r);
  CHECK(e.fx.kernel().log.empty());
  CHECK(e.out.find("already on nvidia") != std::string::npos);
  CHECK(e.out.find("already on snd_hda_intel") != std::string::npos);
}

TEST_CASE("attach without a journal clears the override and lets the kernel choose") {
  Env e;
  REQUIRE(e.run("detach", {"01:00"}));
  std::filesystem::remove(e.fx.dir() + "/run/pt/journal.json");
  auto r = e.run("attach", {"01:00"});
  REQUIRE(r);
  CHECK(e.fx.driver_of(kGpu) == "nvidia");
  CHECK(e.fx.driver_of(kAudio) == "snd_hda_intel");
  CHECK(e.fx.override_of(kGpu) == "(null)");
}

TEST_CASE("a failure at any write of a detach leaves the tree as it began") {
  std::vector<std::pair<std::string, std::string>> clean;
  {
    Env e;
    REQUIRE(e.run("detach", {"01:00"}));
    clean = e.fx.kernel().log;
  }
  REQUIRE(clean.size() == 6);
  for (size_t k = 0; k < clean.size(); ++k) {
    CAPTURE(k);
    CAPTURE(clean[k].first);
    Env e;
    auto before = e.fx.snapshot();
    fail_kth_write(e.fx, clean, k, EIO);
    auto r = e.run("detach", {"01:00"});
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == (k == 0 ? Exit::failed : Exit::rolled_back));
    CHECK(r.error().subject == clean[k].first);
    CHECK(r.error().err == EIO);
    if (k > 0) CHECK(r.error().message.find("Rolled back: ") != std::string::npos);
    CHECK(e.fx.snapshot() == before);
    auto j = e.journal();
    CHECK(j.devices.empty());
    CHECK_FALSE(j.job);
  }
}

TEST_CASE("a failure at any write of an attach leaves the functions detached, journal intact") {
  std::vector<std::pair<std::string, std::string>> clean;
  {
    Env e;
    REQUIRE(e.run("detach", {"01:00"}));
    e.fx.kernel().log.clear();
    REQUIRE(e.run("attach", {"01:00"}));
    clean = e.fx.kernel().log;
  }
  REQUIRE(clean.size() == 6);
  for (size_t k = 0; k < clean.size(); ++k) {
    CAPTURE(k);
    Env e;
    REQUIRE(e.run("detach", {"01:00"}));
    auto detached = e.fx.snapshot();
    auto journal_before = journal_to_text(e.journal());
    e.fx.kernel().log.clear();
    fail_kth_write(e.fx, clean, k, EIO);
    auto r = e.run("attach", {"01:00"});
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == (k == 0 ? Exit::failed : Exit::rolled_back));
    CHECK(e.fx.snapshot() == detached);
    CHECK(journal_to_text(e.journal()) == journal_before);
  }
}

TEST_CASE("a driver that refuses the device is caught by verification and rolled back") {
  Env e;
  auto before = e.fx.snapshot();
  e.fx.refuse("vfio-pci", kGpu);
  auto r = e.run("detach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(r.error().subject == "/sys/bus/pci/devices/0000:01:00.0/driver");
  CHECK(r.error().message.find("expected vfio-pci") != std::string::npos);
  CHECK(r.error().message.find("0000:01:00.1 (back on snd_hda_intel)") != std::string::npos);
  CHECK(r.error().message.find("0000:01:00.0 (back on nvidia)") != std::string::npos);
  CHECK(e.fx.snapshot() == before);
}

TEST_CASE("when the rollback fails too, exit 4 prints the state of every function") {
  Env e;
  e.fx.refuse("vfio-pci", kGpu);
  // The audio function cannot be unbound from vfio-pci during the undo.
  e.fx.fail_write("/sys/bus/pci/drivers/vfio-pci/unbind", kAudio, EIO, 1);
  auto r = e.run("detach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::not_rolled_back);
  CHECK(r.error().message.find("State now:") != std::string::npos);
  CHECK(r.error().message.find("0000:01:00.1: driver=vfio-pci driver_override=") != std::string::npos);
  CHECK(r.error().message.find("0000:01:00.0: driver=nvidia") != std::string::npos);
  // The journal still knows where the audio function belongs.
  CHECK(e.journal().devices.at(kAudio).driver == "snd_hda_intel");
}

namespace {
// Plays KernelWriter's stuck-write verdict for one path.
class StuckWriter final : public SysfsWriter {
 public:
  StuckWriter(SysfsWriter& inner, std::string path) : inner_(inner), path_(std::move(path)) {}
  Status write(const std::string& path, std::string_view value, WriteKind kind) override {
    if (path == path_ && value == kGpu) return fail(path, "did not return within 0.2 s", ETIMEDOUT, Exit::timeout);
    return inner_.write(path, value, kind);
  }
  Status write_config(const std::string& d, uint16_t off, uint16_t v) override { return inner_.write_config(d, off, v); }
  SysfsWriter& inner_;
  std::string path_;
};
}  // namespace

TEST_CASE("a stuck write stops the run with exit 5 and the next run finishes the job") {
  Env e;
  StuckWriter stuck(e.fx.kernel(), "/sys/bus/pci/drivers/nvidia/unbind");
  e.ctx.writer = &stuck;
  auto r = e.run("detach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::timeout);
  CHECK(r.error().message.find("State now:") != std::string::npos);
  auto j = e.journal();
  REQUIRE(j.job);
  CHECK(j.job->op == "detach");
  CHECK(e.fx.driver_of(kAudio) == "vfio-pci");  // no undo after a stuck write

  e.ctx.writer = &e.fx.kernel();
  r = e.run("detach", {"01:00"});
  REQUIRE(r);
  CHECK(e.out.find("interrupted detach") != std::string::npos);
  CHECK(e.fx.driver_of(kGpu) == "vfio-pci");
  CHECK_FALSE(e.journal().job);
}

TEST_CASE("refusals change nothing") {
  SUBCASE("no IOMMU") {
    Env e;
    e.fx.no_iommu();
    auto before = e.fx.snapshot();
    auto r = e.run("detach", {"01:00"});
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::failed);
    CHECK(r.error().message.find("intel_iommu=on") != std::string::npos);
    CHECK(r.error().message.find("amd_iommu=on") != std::string::npos);
    CHECK(e.fx.snapshot() == before);
  }
  SUBCASE("a group member bound to an unrelated host driver") {
    Env e(test::Fixture::group_with_unrelated);
    auto before = e.fx.snapshot();
    auto r = e.run("detach", {"01:00.0"});
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("0000:02:00.0 (e1000e)") != std::string::npos);
    CHECK(r.error().message.find("--force-group") != std::string::npos);
    // The USB-C function shares the slot: it is a companion, not a blocker.
    CHECK(r.error().message.find("0000:01:00.2") == std::string::npos);
    CHECK(e.fx.snapshot() == before);

    bind::Options o;
    o.force_group = true;
    REQUIRE(e.run("detach", {"01:00.0"}, o));
    for (const char* d : {"0000:01:00.0", "0000:01:00.1", "0000:01:00.2", "0000:02:00.0"}) {
      CAPTURE(d);
      CHECK(e.fx.driver_of(d) == "vfio-pci");
    }
    REQUIRE(e.run("attach", {"01:00.0"}));
    CHECK(e.fx.snapshot() == before);
  }
  SUBCASE("holders, unless --force") {
    Env e;
    e.fx.add_holder(4242, "Xorg", "/dev/dri/card0");
    auto before = e.fx.snapshot();
    auto r = e.run("detach", {"01:00"});
    REQUIRE_FALSE(r);
    CHECK(r.error().err == EBUSY);
    CHECK(r.error().message.find("pid 4242 (Xorg) holds /dev/dri/card0") != std::string::npos);
    CHECK(e.fx.snapshot() == before);
    bind::Options o;
    o.force = true;
    REQUIRE(e.run("detach", {"01:00"}, o));
    CHECK(e.fx.driver_of(kGpu) == "vfio-pci");
  }
  SUBCASE("a VFIO user blocks attach") {
    Env e;
    REQUIRE(e.run("detach", {"01:00"}));
    e.fx.add_holder(999, "qemu-system-x86", "/dev/vfio/1");
    auto before = e.fx.snapshot();
    auto r = e.run("attach", {"01:00"});
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("pid 999 (qemu-system-x86)") != std::string::npos);
    CHECK(e.fx.snapshot() == before);
  }
  SUBCASE("a bridge, a missing device, an unknown driver") {
    Env e;
    auto before = e.fx.snapshot();
    auto bridge = e.run("detach", {"00:01.0"});
    REQUIRE_FALSE(bridge);
    CHECK(bridge.error().message.find("bridge") != std::string::npos);
    auto missing = e.run("detach", {"05:00.0"});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().subject == "'05:00.0'");
    CHECK(missing.error().exit == Exit::failed);
    bind::Options o;
    o.to = "no_such_driver";
    auto unknown = e.run("detach", {"01:00"}, o);
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().subject == "no_such_driver");
    auto malformed = e.run("detach", {"zz:00.0"});
    REQUIRE_FALSE(malformed);
    CHECK(malformed.error().exit == Exit::usage);
    CHECK(e.fx.snapshot() == before);
    CHECK_FALSE(e.fx.exists("/run/pt/journal.json"));
  }
}

TEST_CASE(
    "a function the kernel uses (mount, swap, up link) is refused, naming the use; --force moves "
    "it") {
  const char* kDisk = "0000:00:04.0";
  const char* kNic = "0000:00:05.0";
  SUBCASE("a mounted filesystem") {
    Env e(test::Fixture::kernel_held);
    e.fx.add_mount("254:1", "/dev/vda1", "/", "ext4");
    auto before = e.fx.snapshot();
    auto r = e.run("detach", {"00:04.0"});
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::failed);
    CHECK(r.error().err == EBUSY);
    CHECK(r.error().describe() ==
          "0000:00:04.0: backs /dev/vda1 mounted on / (ext4); unmount it, or pass --force to "
          "unbind anyway "
          "(Device or resource busy)");
    CHECK(e.fx.kernel().log.empty());
    CHECK(e.fx.snapshot() == before);
    CHECK_FALSE(e.fx.exists("/run/pt/journal.json"));
    // A dry run plans nothing either.
    bind::Options dry;
    dry.common.dry_run = true;
    e.ctx.dry_run = true;
    CHECK_FALSE(e.run("detach", {"00:04.0"}, dry));
  }
  SUBCASE("swap, and an interface that is up, in one message") {
    Env e(test::Fixture::kernel_held);
    e.fx.add_swap("/dev/vda2");
    auto before = e.fx.snapshot();
    auto r = e.run("detach", {"00:04.0", "00:05.0"});
    REQUIRE_FALSE(r);
    // Detach runs from the highest address down: the NIC is the subject,
    // the disk's finding carries its address.
    CHECK(r.error().subject == kNic);
    const auto& m = r.error().message;
    CHECK(m.starts_with(
        "has network interface eth0 up (operstate up); 0000:00:04.0 backs swap on /dev/vda2; "));
    CHECK(m.find("swapoff it") != std::string::npos);
    CHECK(m.find("ip link set eth0 down") != std::string::npos);
    CHECK(e.fx.kernel().log.empty());
    CHECK(e.fx.snapshot() == before);
    // set and unset apply the same check.
    CHECK_FALSE(e.run("set", {"00:05.0", "vfio-pci"}));
    CHECK(e.fx.kernel().log.empty());
  }
  SUBCASE("once unmounted, swapped off and down, detach and attach go through") {
    Env e(test::Fixture::kernel_held);
    e.fx.add_mount("254:1", "/dev/vda1", "/mnt", "ext2");
    REQUIRE_FALSE(e.run("detach", {"00:04.0"}));
    e.fx.write_file("/proc/self/mountinfo", "");
    e.fx.write_file("/proc/mounts", "");
    e.fx.write_file("/sys/class/net/eth0/flags", "0x1002\n");
    auto before = e.fx.snapshot();
    REQUIRE(e.run("detach", {"00:04.0", "00:05.0"}));
    CHECK(e.fx.driver_of(kDisk) == "vfio-pci");
    CHECK(e.fx.driver_of(kNic) == "vfio-pci");
    CHECK_FALSE(e.fx.exists("/sys/class/block/vda1"));
    REQUIRE(e.run("attach", {"00:04.0", "00:05.0"}));
    CHECK(e.fx.driver_of(kDisk) == "virtio-pci");
    CHECK(e.fx.exists("/sys/class/block/vda1"));
    CHECK(e.fx.read("/sys/class/block/vda1/dev") == "254:1");
  }
  SUBCASE("--force unbinds anyway") {
    Env e(test::Fixture::kernel_held);
    e.fx.add_mount("254:1", "/dev/vda1", "/mnt", "ext2");
    bind::Options o;
    o.force = true;
    REQUIRE(e.run("detach", {"00:04.0", "00:05.0"}, o));
    CHECK(e.fx.driver_of(kDisk) == "vfio-pci");
    CHECK(e.fx.driver_of(kNic) == "vfio-pci");
    REQUIRE(e.run("attach", {"00:04.0", "00:05.0"}));
    CHECK(e.fx.driver_of(kDisk) == "virtio-pci");
    CHECK(e.fx.driver_of(kNic) == "virtio-pci");
  }
}

TEST_CASE("the target driver's module is loaded first, and a failed load changes nothing") {
  Env e;
  std::filesystem::remove_all(e.fx.dir() + "/sys/bus/pci/drivers/vfio-pci");
  auto before = e.fx.snapshot();
  e.fx.modules().available.insert("vfio-pci");
  e.fx.modules().fail_with = ENOEXEC;
  auto r = e.run("detach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(e.fx.snapshot() == before);
  e.fx.modules().fail_with.reset();
  REQUIRE(e.run("detach", {"01:00"}));
  CHECK(e.fx.modules().loaded == std::vector<std::string>{"vfio-pci"});
  CHECK(e.fx.driver_of(kGpu) == "vfio-pci");
}

TEST_CASE("dry run prints the plan and writes nothing, not even the state directory") {
  Env e;
  auto before = e.fx.snapshot();
  e.ctx.dry_run = true;
  auto r = e.run("detach", {"01:00"});
  REQUIRE(r);
  CHECK(e.fx.kernel().log.empty());
  CHECK(e.fx.snapshot() == before);
  CHECK_FALSE(e.fx.exists("/run/pt"));
  CHECK(e.out.find("write /sys/bus/pci/devices/0000:01:00.1/driver_override \"vfio-pci\"") != std::string::npos);
  CHECK(e.out.find("write /sys/bus/pci/drivers/nvidia/unbind \"0000:01:00.0\"") != std::string::npos);
  CHECK(e.out.find("write /sys/bus/pci/drivers_probe \"0000:01:00.0\"") != std::string::npos);
  CHECK(e.out.find("0000:01:00.1") < e.out.find("0000:01:00.0  nvidia"));
}

namespace {
// Runs COMMAND in a child that dies (as under SIGKILL) right after its Kth write.
void run_killed_after(Env& e, const std::string& command, int k) {
  pid_t pid = ::fork();
  if (pid == 0) {
    struct Dying final : SysfsWriter {
      SysfsWriter& inner;
      int left;
      Dying(SysfsWriter& i, int n) : inner(i), left(n) {}
      Status write(const std::string& p, std::string_view v, WriteKind kind) override {
        auto r = inner.write(p, v, kind);
        if (--left == 0) ::_exit(137);
        return r;
      }
      Status write_config(const std::string& d, uint16_t off, uint16_t v) override {
        return inner.write_config(d, off, v);
      }
    } dying(e.fx.kernel(), k);
    e.ctx.writer = &dying;
    bind::Options o;
    o.command = command;
    o.devices = {"01:00"};
    std::ostringstream s;
    auto r = bind::run_in(o, e.ctx, s);
    ::_exit(r ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 137);
}
}  // namespace

TEST_CASE("after pt-bind dies mid-detach, the next detach finishes and the next attach undoes") {
  for (int k = 1; k <= 5; ++k) {
    CAPTURE(k);
    {
      Env e;
      auto before = e.fx.snapshot();
      run_killed_after(e, "detach", k);
      REQUIRE(e.journal().job);
      auto r = e.run("detach", {"01:00"});
      REQUIRE(r);
      CHECK(e.fx.driver_of(kGpu) == "vfio-pci");
      CHECK(e.fx.driver_of(kAudio) == "vfio-pci");
      CHECK(e.journal().devices.at(kAudio).driver == "snd_hda_intel");
      REQUIRE(e.run("attach", {"01:00"}));
      CHECK(e.fx.snapshot() == before);
    }
    {
      Env e;
      auto before = e.fx.snapshot();
      run_killed_after(e, "detach", k);
      auto r = e.run("attach", {"01:00"});
      REQUIRE(r);
      CHECK(e.fx.snapshot() == before);
      CHECK(e.journal().devices.empty());
      CHECK_FALSE(e.journal().job);
    }
  }
}

TEST_CASE("an interrupted job on other devices is undone before a new one starts") {
  Env e([](test::Fixture& fx) { test::Fixture::many_devices(fx, 6); });
  auto before = e.fx.snapshot();
  run_killed_after(e, "detach", 4);
  auto r = e.run("detach", {"02:00"});
  REQUIRE(r);
  CHECK(e.out.find("undid an interrupted detach") != std::string::npos);
  CHECK(e.fx.driver_of("0000:01:00.0") == "nvidia");
  CHECK(e.fx.driver_of("0000:01:00.1") == "snd_hda_intel");
  CHECK(e.fx.driver_of("0000:02:00.0") == "vfio-pci");
  REQUIRE(e.run("attach", {"02:00"}));
  CHECK(e.fx.snapshot() == before);
}

TEST_CASE("two concurrent processes serialize on the lock and end consistent") {
  Env e;
  pid_t kids[2];
  const char* commands[2] = {"detach", "attach"};
  for (int i = 0; i < 2; ++i) {
    kids[i] = ::fork();
    if (kids[i] == 0) {
      bind::Options o;
      o.command = commands[i];
      o.devices = {"01:00"};
      std::ostringstream s;
      auto r = bind::run_in(o, e.ctx, s);
      ::_exit(r ? 0 : 10 + int(r.error().exit));
    }
  }
  for (pid_t k : kids) {
    int status = 0;
    ::waitpid(k, &status, 0);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto j = e.journal();
  CHECK_FALSE(j.job);
  bool detached = e.fx.driver_of(kGpu) == "vfio-pci";
  CHECK(e.fx.driver_of(kAudio) == (detached ? "vfio-pci" : "snd_hda_intel"));
  CHECK(j.devices.size() == (detached ? 2u : 0u));
}

TEST_CASE("a held lock makes a mutating command exit 75 with nothing changed") {
  Env e;
  auto before = e.fx.snapshot();
  auto lock = Lock::acquire(e.ctx.root, 100ms);
  REQUIRE(lock);
  pid_t pid = ::fork();
  if (pid == 0) {
    e.ctx.lock_timeout = 100ms;
    bind::Options o;
    o.command = "detach";
    o.devices = {"01:00"};
    std::ostringstream s;
    auto r = bind::run_in(o, e.ctx, s);
    ::_exit(r ? 0 : int(r.error().exit));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WEXITSTATUS(status) == 75);
  CHECK(e.fx.snapshot() == before);
}

TEST_CASE("without root, a mutating command says root is needed and changes nothing") {
  if (::geteuid() != 0) {
    MESSAGE("needs to start as root to drop to nobody");
    return;
  }
  Env e;
  ::chmod(e.fx.dir().c_str(), 0755);  // let the unprivileged child read the tree
  auto before = e.fx.snapshot();
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(99);
    bind::Options o;
    o.command = "detach";
    o.devices = {"01:00"};
    std::ostringstream s;
    auto r = bind::run_in(o, e.ctx, s);
    bool says_root = !r && r.error().message.find("root") != std::string::npos;
    ::_exit(r ? 0 : (says_root ? int(r.error().exit) : 98));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(e.fx.snapshot() == before);
}

TEST_CASE("set and unset are the low-level forms") {
  Env e;
  auto before = e.fx.snapshot();
  bind::Options o;
  o.driver = "vfio-pci";
  REQUIRE(e.run("set", {"01:00.1"}, o));
  CHECK(e.fx.driver_of(kAudio) == "vfio-pci");
  CHECK(e.fx.driver_of(kGpu) == "nvidia");
  CHECK(e.journal().devices.at(kAudio).driver == "snd_hda_intel");
  REQUIRE(e.run("unset", {"01:00.1"}));
  CHECK(e.fx.driver_of(kAudio) == "snd_hda_intel");
  CHECK(e.journal().devices.empty());
  CHECK(e.fx.snapshot() == before);
}

TEST_CASE("attach leaves group members it did not detach where they are") {
  Env e(test::Fixture::group_with_unrelated);
  // Someone else parked the NIC on vfio-pci (vfio-pci.ids at boot, say).
  bind::Options set;
  set.driver = "vfio-pci";
  REQUIRE(e.run("set", {"02:00.0"}, set));
  std::filesystem::remove(e.fx.dir() + "/run/pt/journal.json");
  REQUIRE(e.run("detach", {"01:00"}));
  REQUIRE(e.run("attach", {"01:00"}));
  CHECK(e.fx.driver_of("0000:02:00.0") == "vfio-pci");
  CHECK(e.fx.driver_of(kGpu) == "nvidia");
  CHECK(e.fx.driver_of("0000:01:00.2") == "xhci_hcd");
}

TEST_CASE("a dry run says when the journal holds an interrupted job") {
  Env e;
  run_killed_after(e, "detach", 2);
  e.ctx.dry_run = true;
  REQUIRE(e.run("detach", {"01:00"}));
  CHECK(e.out.find("note: the journal holds an interrupted detach job") != std::string::npos);
}

TEST_CASE("a rollback whose reprobe fails binds the original driver directly") {
  Env e;
  auto before = e.fx.snapshot();
  // Both probes of the GPU fail, the rollback's included. (A fault counts only
  // the writes that reach it: the first one is taken by the fault before it.)
  e.fx.fail_write("/sys/bus/pci/drivers_probe", kGpu, EIO, 1);
  e.fx.fail_write("/sys/bus/pci/drivers_probe", kGpu, EIO, 1);
  auto r = e.run("detach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(e.fx.snapshot() == before);
  bool direct_bind = false;
  for (const auto& [path, value] : e.fx.kernel().log)
    if (path == "/sys/bus/pci/drivers/nvidia/bind" && value == kGpu) direct_bind = true;
  CHECK(direct_bind);
}

namespace {
// Passes every write on; after AFTER (path, value) it opens /run/pt to
// others, so the next journal save is refused even for root.
class SpoilStateAfter final : public SysfsWriter {
 public:
  SpoilStateAfter(test::Fixture& fx, std::string path, std::string value)
      : fx_(fx), path_(std::move(path)), value_(std::move(value)) {}
  Status write(const std::string& path, std::string_view value, WriteKind kind) override {
    auto r = fx_.kernel().write(path, value, kind);
    if (path == path_ && value == value_) ::chmod((fx_.dir() + "/run/pt").c_str(), 0755);
    return r;
  }
  Status write_config(const std::string& d, uint16_t off, uint16_t v) override {
    return fx_.kernel().write_config(d, off, v);
  }
  test::Fixture& fx_;
  std::string path_, value_;
};
}  // namespace

TEST_CASE("a journal save that fails after every move says the change happened (exit 4)") {
  Env e;
  SpoilStateAfter spoil(e.fx, "/sys/bus/pci/drivers_probe", kGpu);
  e.ctx.writer = &spoil;
  auto r = e.run("detach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::not_rolled_back);
  CHECK(r.error().message.find("was moved, but the journal could not record it") !=
        std::string::npos);
  CHECK(r.error().message.find("0000:01:00.0: driver=vfio-pci") != std::string::npos);
  CHECK(e.fx.driver_of(kGpu) == "vfio-pci");
  // What is on disk is the journal of before the first move: the job and the
  // original drivers, which the next run uses to finish.
  ::chmod((e.fx.dir() + "/run/pt").c_str(), 0700);
  auto j = e.journal();
  REQUIRE(j.job);
  CHECK(j.devices.at(kGpu).driver == "nvidia");
  e.ctx.writer = &e.fx.kernel();
  REQUIRE(e.run("detach", {"01:00"}));
  CHECK_FALSE(e.journal().job);
  REQUIRE(e.run("attach", {"01:00"}));
  CHECK(e.fx.driver_of(kGpu) == "nvidia");
}

TEST_CASE(
    "an interrupted job on a function removed since is nothing to undo, and other devices still "
    "move") {
  Env e([](test::Fixture& fx) { test::Fixture::many_devices(fx, 6); });
  run_killed_after(e, "detach", 4);
  auto job = e.journal().job;
  REQUIRE(job);
  REQUIRE(std::find(job->devices.begin(), job->devices.end(), "0000:01:00.0") !=
          job->devices.end());
  REQUIRE(
      e.fx.kernel().write("/sys/bus/pci/devices/0000:01:00.0/remove", "1", WriteKind::blocking));
  const std::string gone = "0000:01:00.0 of an interrupted detach of " +
                           std::to_string(job->devices.size()) + " function(s) by pid " +
                           std::to_string(job->pid) +
                           " is gone (removed or unplugged): nothing to undo for it";

  // The dry run tells what the real run does.
  e.ctx.dry_run = true;
  REQUIRE(e.run("detach", {"02:00"}));
  CHECK(e.out.find("note: " + gone) != std::string::npos);
  REQUIRE(e.journal().job);

  e.ctx.dry_run = false;
  auto r = e.run("detach", {"02:00"});
  REQUIRE(r);
  CHECK(e.out.find("note: " + gone) != std::string::npos);
  CHECK(e.out.find("undid an interrupted detach") != std::string::npos);
  CHECK(e.fx.driver_of("0000:01:00.1") == "snd_hda_intel");
  CHECK(e.fx.driver_of("0000:02:00.0") == "vfio-pci");
  auto j = e.journal();
  CHECK_FALSE(j.job);
  CHECK(j.devices.count("0000:01:00.0") == 0);
  CHECK(j.devices.count("0000:01:00.1") == 0);
  CHECK(j.devices.at("0000:02:00.0").driver == "nvidia");
}

TEST_CASE("an interrupted job whose functions are all gone is cleared, and said so") {
  Env e([](test::Fixture& fx) { test::Fixture::many_devices(fx, 6); });
  run_killed_after(e, "detach", 2);
  auto job = e.journal().job;
  REQUIRE(job);
  for (const auto& d : job->devices)
    REQUIRE(e.fx.kernel().write("/sys/bus/pci/devices/" + d + "/remove", "1", WriteKind::blocking));
  REQUIRE(e.run("attach", {"02:00"}));
  CHECK(e.out.find("is gone (removed or unplugged)") != std::string::npos);
  CHECK(e.out.find("none of its functions is left") != std::string::npos);
  CHECK_FALSE(e.journal().job);
}

TEST_CASE("an undo of an interrupted job that cannot be planned says so, in the dry run too") {
  Env e([](test::Fixture& fx) { test::Fixture::many_devices(fx, 6); });
  run_killed_after(e, "detach", 4);
  auto j = e.journal();
  REQUIRE(j.job);
  j.devices.at("0000:01:00.1").driver = "nosuchdriver";
  j.devices.at("0000:01:00.1").module = "nosuchmodule";
  REQUIRE(save_journal(e.ctx.root, j));
  for (bool dry : {true, false}) {
    CAPTURE(dry);
    e.ctx.dry_run = dry;
    auto r = e.run("detach", {"02:00"});
    REQUIRE_FALSE(r);
    CHECK(r.error().message.starts_with("undoing an interrupted detach of"));
    CHECK(r.error().message.find("failed: the journal says 0000:01:00.1 was on this driver") !=
          std::string::npos);
    CHECK(e.fx.driver_of("0000:02:00.0") == "nvidia");
  }
  CHECK(e.journal().job);
}

namespace {
// A timed-out unbind of the GPU whose writer (pid 4242) stays in the kernel;
// its message does not name the pid, so only the Error's field carries it.
class StuckWithWriter final : public SysfsWriter {
 public:
  explicit StuckWithWriter(SysfsWriter& inner) : inner_(inner) {}
  Status write(const std::string& path, std::string_view value, WriteKind kind) override {
    if (path == "/sys/bus/pci/drivers/nvidia/unbind" && value == kGpu) {
      auto e = fail(path, "did not return within 0.2 s", 0, Exit::timeout);
      e.error().writer = 4242;
      return e;
    }
    return inner_.write(path, value, kind);
  }
  Status write_config(const std::string& d, uint16_t off, uint16_t v) override {
    return inner_.write_config(d, off, v);
  }
  SysfsWriter& inner_;
};
}  // namespace

TEST_CASE(
    "a stuck unbind stays in the journal until it completes; then attach restores the driver") {
  Env e;
  StuckWithWriter stuck(e.fx.kernel());
  e.ctx.writer = &stuck;
  e.fx.write_file("/proc/4242/wchan", "nv_pci_remove");
  auto r = e.run("detach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::timeout);
  auto j = e.journal();
  REQUIRE(j.job);
  CHECK(j.job->writer == 4242);
  CHECK(j.job->write_path == "/sys/bus/pci/drivers/nvidia/unbind");
  CHECK(j.job->write_value == kGpu);
  CHECK(j.devices.at(kGpu).driver == "nvidia");
  const std::string stuck_journal = e.fx.read("/run/pt/journal.json");

  // While the writer lives every run refuses with exit 5 and keeps the record.
  e.ctx.writer = &e.fx.kernel();
  for (bool dry : {true, false}) {
    CAPTURE(dry);
    e.ctx.dry_run = dry;
    r = e.run("attach", {"01:00"});
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::timeout);
    CHECK(r.error().message.find("writer pid 4242, waiting in nv_pci_remove") != std::string::npos);
    CHECK(e.fx.read("/run/pt/journal.json") == stuck_journal);
  }
  e.ctx.dry_run = false;

  // The holder lets go: the unbind completes and the writer exits.
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", kGpu, WriteKind::blocking));
  std::filesystem::remove_all(e.fx.dir() + "/proc/4242");
  CHECK(e.fx.driver_of(kGpu) == "none");
  REQUIRE(e.run("attach", {"01:00"}));
  CHECK(e.out.find("interrupted detach") != std::string::npos);
  CHECK(e.fx.driver_of(kGpu) == "nvidia");
  CHECK(e.fx.driver_of(kAudio) == "snd_hda_intel");
  CHECK(e.journal().devices.empty());
  CHECK_FALSE(e.journal().job);
}

TEST_CASE(
    "a run killed while its unbind is stuck: attach finds the writer by its open unbind file, "
    "refuses until it is gone, then restores the driver") {
  Env e;
  // pt-bind is SIGKILLed while its writer child sits in the GPU's unbind: the
  // unbind has not happened, and nothing recorded the writer.
  pid_t pid = ::fork();
  if (pid == 0) {
    struct KilledInUnbind final : SysfsWriter {
      SysfsWriter& inner;
      explicit KilledInUnbind(SysfsWriter& i) : inner(i) {}
      Status write(const std::string& p, std::string_view v, WriteKind kind) override {
        if (p == "/sys/bus/pci/drivers/nvidia/unbind" && v == kGpu) ::_exit(137);
        return inner.write(p, v, kind);
      }
      Status write_config(const std::string& d, uint16_t off, uint16_t v) override {
        return inner.write_config(d, off, v);
      }
    } killed(e.fx.kernel());
    e.ctx.writer = &killed;
    bind::Options o;
    o.command = "detach";
    o.devices = {"01:00"};
    std::ostringstream s;
    auto r = bind::run_in(o, e.ctx, s);
    ::_exit(r ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 137);
  REQUIRE(e.journal().job);
  CHECK(e.journal().job->writer == 0);
  CHECK(e.fx.driver_of(kGpu) == "nvidia");
  // The orphaned writer, as the kernel shows it: its fd on the unbind file.
  e.fx.add_holder(5151, "pt-bind", "/sys/bus/pci/drivers/nvidia/unbind");
  e.fx.write_file("/proc/5151/wchan", "nv_pci_remove");

  for (bool dry : {true, false}) {
    CAPTURE(dry);
    e.ctx.dry_run = dry;
    const std::string journal_before = e.fx.read("/run/pt/journal.json");
    auto r = e.run("attach", {"01:00"});
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::timeout);
    CHECK(r.error().subject == "/sys/bus/pci/drivers/nvidia/unbind");
    CHECK(r.error().message.find("writer pid 5151, waiting in nv_pci_remove") != std::string::npos);
    auto j = e.journal();
    REQUIRE(j.job);
    CHECK(j.job->op == "detach");
    CHECK(j.devices.at(kGpu).driver == "nvidia");
    CHECK(j.devices.at(kAudio).driver == "snd_hda_intel");
    // The dry run writes nothing; the real run records the writer.
    if (dry) {
      CHECK(e.fx.read("/run/pt/journal.json") == journal_before);
    } else {
      CHECK(j.job->writer == 5151);
      CHECK(j.job->write_path == "/sys/bus/pci/drivers/nvidia/unbind");
    }
    CHECK(e.fx.driver_of(kGpu) == "nvidia");
  }
  e.ctx.dry_run = false;

  // The holder lets go: the unbind completes and the writer exits. The
  // function now has no driver, and the journal still says where it came from.
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", kGpu, WriteKind::blocking));
  std::filesystem::remove_all(e.fx.dir() + "/proc/5151");
  CHECK(e.fx.driver_of(kGpu) == "none");
  REQUIRE(e.run("attach", {"01:00"}));
  CHECK(e.out.find("interrupted detach") != std::string::npos);
  CHECK(e.fx.driver_of(kGpu) == "nvidia");
  CHECK(e.fx.driver_of(kAudio) == "snd_hda_intel");
  CHECK(e.journal().devices.empty());
  CHECK_FALSE(e.journal().job);
}

TEST_CASE("a process with a function's driver_override open, by its real sysfs path, is a writer") {
  Env e;
  auto j = e.journal();
  j.devices[kGpu] = JournalEntry{"nvidia", "nvidia", "", "vfio-pci", 0, 0, false};
  j.job = Job{"detach", 999999, 0, {kGpu}, 0, {}, {}};
  REQUIRE(check_state_dir(e.ctx.root, true));
  REQUIRE(save_journal(e.ctx.root, j));
  auto real = std::filesystem::canonical(e.fx.dir() + "/sys/bus/pci/devices/" + kGpu);
  const std::string attr = e.ctx.root.unprefix(real.string()) + "/driver_override";
  REQUIRE(attr.starts_with("/sys/devices/"));
  e.fx.add_holder(6262, "pt-bind", attr);
  // An unrelated process with another function's file open is no writer of this job.
  e.fx.add_holder(7373, "cat", "/sys/bus/pci/devices/0000:02:00.0/driver_override");
  auto r = e.run("attach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::timeout);
  CHECK(r.error().subject == attr);
  CHECK(e.journal().job->writer == 6262);
}

TEST_CASE("on a chipset slot, detach of one function takes nothing else: bridges and a disk stay") {
  const char* kLpc = "0000:00:1f.0";
  const char* kSata = "0000:00:1f.2";
  const char* kSmbus = "0000:00:1f.3";
  SUBCASE("the SMBus alone: the LPC bridge and the SATA controller are named, nothing changes") {
    for (bool dry : {true, false}) {
      CAPTURE(dry);
      Env e(test::Fixture::intel_chipset);
      auto before = e.fx.snapshot();
      bind::Options o;
      o.common.dry_run = dry;
      e.ctx.dry_run = dry;
      auto r = e.run("detach", {"00:1f.3"}, o);
      REQUIRE_FALSE(r);
      CHECK(r.error().exit == Exit::failed);
      CHECK(r.error().err == EBUSY);
      CHECK(r.error().subject == kSmbus);
      CHECK(r.error().message.find("0000:00:1f.0 (lpc_ich, class 0601)") != std::string::npos);
      CHECK(r.error().message.find("0000:00:1f.2 (ahci)") != std::string::npos);
      CHECK(r.error().message.find("never unbinds") != std::string::npos);
      CHECK(e.out.find("ahci/unbind") == std::string::npos);
      CHECK(e.fx.kernel().log.empty());
      CHECK(e.fx.snapshot() == before);
      CHECK_FALSE(e.fx.exists("/run/pt/journal.json"));
      // --force-group cannot move a bridge either.
      o.force_group = true;
      CHECK_FALSE(e.run("detach", {"00:1f.3"}, o));
      CHECK(e.fx.kernel().log.empty());
      CHECK(e.fx.driver_of(kLpc) == "lpc_ich");
      CHECK(e.fx.driver_of(kSata) == "ahci");
      CHECK(e.fx.driver_of(kSmbus) == "i801_smbus");
    }
  }
  SUBCASE("with the bridge unbound, the SATA controller is a blocker unless named") {
    Env e(test::Fixture::intel_chipset);
    e.fx.kernel().write("/sys/bus/pci/drivers/lpc_ich/unbind", kLpc, WriteKind::blocking);
    e.fx.kernel().log.clear();
    auto before = e.fx.snapshot();
    auto r = e.run("detach", {"00:1f.3"});
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("0000:00:1f.2 (ahci), which you did not name") !=
          std::string::npos);
    CHECK(r.error().message.find("--force-group") != std::string::npos);
    CHECK(e.fx.kernel().log.empty());
    CHECK(e.fx.snapshot() == before);
    // --force-group takes it along, and then its mounted disk refuses.
    bind::Options o;
    o.force_group = true;
    auto held = e.run("detach", {"00:1f.3"}, o);
    REQUIRE_FALSE(held);
    CHECK(held.error().subject == kSata);
    CHECK(held.error().message.find("backs /dev/sda1 mounted on / (ext4)") != std::string::npos);
    CHECK(e.fx.kernel().log.empty());
    CHECK(e.fx.snapshot() == before);
    CHECK_FALSE(e.fx.exists("/run/pt/journal.json"));
  }
  SUBCASE("a host or ISA bridge named directly is refused as a bridge") {
    Env e(test::Fixture::intel_chipset);
    auto before = e.fx.snapshot();
    for (const char* dev : {"00:00.0", "00:1f.0"}) {
      CAPTURE(dev);
      auto r = e.run("detach", {dev});
      REQUIRE_FALSE(r);
      CHECK(r.error().message.find("is a bridge (class 06") != std::string::npos);
    }
    CHECK(e.fx.kernel().log.empty());
    CHECK(e.fx.snapshot() == before);
  }
}

TEST_CASE("a driver name that is no driver is refused before any write, not rolled back") {
  Env e;
  auto before = e.fx.snapshot();
  for (const std::string& bad : std::vector<std::string>{"..", ".", "", "vfio-pci/..", "vfio\npci",
                                                         "vfio pci", std::string(65, 'a')}) {
    CAPTURE(bad);
    bind::Options o;
    o.to = bad;
    auto detach = e.run("detach", {"01:00"}, o);
    REQUIRE_FALSE(detach);
    CHECK(detach.error().exit == Exit::usage);
    CHECK(detach.error().subject.starts_with("--to '"));
    CHECK(detach.error().subject.find('\n') == std::string::npos);
    bind::Options so;
    so.driver = bad;
    auto set = e.run("set", {"01:00.0"}, so);
    REQUIRE_FALSE(set);
    CHECK(set.error().exit == Exit::usage);
    CHECK(set.error().subject.starts_with("DRIVER '"));
    CHECK(e.fx.kernel().log.empty());
    CHECK(e.fx.snapshot() == before);
    CHECK_FALSE(e.fx.exists("/run/pt/journal.json"));
  }
}

TEST_CASE(
    "one function vanishing from the bus leaves list, show and detach of the others working") {
  Env e;
  std::filesystem::remove_all(
      std::filesystem::canonical(e.fx.dir() + "/sys/bus/pci/devices/" + kAudio));
  REQUIRE(e.run("list", {}));
  CHECK(e.out.find(kGpu) != std::string::npos);
  CHECK(e.out.find(kAudio) == std::string::npos);
  REQUIRE(e.run("show", {"01:00.0"}));
  CHECK(e.out.find("driver:") != std::string::npos);
  auto named = e.run("detach", {"01:00.1"});
  REQUIRE_FALSE(named);
  CHECK(named.error().subject == "'01:00.1'");
  CHECK(named.error().message.starts_with("no such PCI device"));
  CHECK(e.fx.kernel().log.empty());
  REQUIRE(e.run("detach", {"01:00.0"}));
  CHECK(e.fx.driver_of(kGpu) == "vfio-pci");
  auto j = e.journal();
  CHECK(j.devices.count(kGpu) == 1);
  CHECK(j.devices.count(kAudio) == 0);
}

TEST_CASE("a disk that a process holds open, or with an active stack on it, is refused") {
  SUBCASE("a process holds /dev/vda") {
    Env e(test::Fixture::kernel_held);
    e.fx.add_holder(5151, "qemu-system-x86", "/dev/vda");
    auto before = e.fx.snapshot();
    auto r = e.run("detach", {"00:04.0"});
    REQUIRE_FALSE(r);
    CHECK(r.error().err == EBUSY);
    CHECK(r.error().message.find("pid 5151 (qemu-system-x86) holds /dev/vda") != std::string::npos);
    CHECK(e.fx.kernel().log.empty());
    CHECK(e.fx.snapshot() == before);
  }
  SUBCASE("an md array on vda2, nothing mounted") {
    Env e(test::Fixture::kernel_held);
    e.fx.add_stacked_block("vda2", "md0", 9, 0);
    auto before = e.fx.snapshot();
    auto r = e.run("detach", {"00:04.0"});
    REQUIRE_FALSE(r);
    CHECK(r.error().describe() ==
          "0000:00:04.0: backs /dev/md0 (on vda2), which is active; stop what is stacked on it "
          "(vgchange "
          "-an, mdadm --stop, cryptsetup close), or pass --force to unbind anyway (Device or "
          "resource busy)");
    CHECK(e.fx.kernel().log.empty());
    CHECK(e.fx.snapshot() == before);
    CHECK_FALSE(e.fx.exists("/run/pt/journal.json"));
  }
}

namespace {

// The real Fiji (pciutils tests/cap-rebar: BAR 0 256M, 256M..4G) on amdgpu
// behind its root port, alone in group 1.
void fiji(test::Fixture& fx) {
  fx.add_driver("vfio-pci", "vfio_pci").add_driver("amdgpu", "amdgpu");
  fx.add_bridge("0000:00:01.0");
  fx.add_device(test::FakeDevice{.bdf = "0000:09:00.0", .vendor = 0x1002, .device = 0x7300,
                                 .parent = "0000:00:01.0", .driver = "amdgpu", .group = 1,
                                 .caps = {.raw = test::radeon_fiji_config()}});
}

void fiji_old_kernel(test::Fixture& fx) {
  fx.add_driver("vfio-pci", "vfio_pci").add_driver("amdgpu", "amdgpu");
  fx.add_bridge("0000:00:01.0");
  fx.add_device(test::FakeDevice{.bdf = "0000:09:00.0", .vendor = 0x1002, .device = 0x7300,
                                 .parent = "0000:00:01.0", .driver = "amdgpu", .group = 1,
                                 .caps = {.raw = test::radeon_fiji_config()}, .resize_files = false});
}

int bar0(Env& e) { return rebar::read(e.ctx.root, PciAddress{0, 9, 0, 0}).value().at(0).current; }

const char* kResize = "/sys/bus/pci/devices/0000:09:00.0/resource0_resize";

}  // namespace

TEST_CASE("detach --rebar resizes while unbound, journals the size, attach puts it back") {
  Env e(fiji);
  bind::Options o;
  o.rebar = {"0=4G"};
  REQUIRE(e.run("detach", {"09:00.0"}, o));
  CHECK(e.fx.driver_of("0000:09:00.0") == "vfio-pci");
  CHECK(bar0(e) == 12);
  // Unbind, resize, then vfio-pci: the kernel refuses a resize under a driver.
  std::vector<std::string> paths;
  for (const auto& [p, v] : e.fx.kernel().log) paths.push_back(p + " " + v);
  CHECK(paths == std::vector<std::string>{
                     "/sys/bus/pci/devices/0000:09:00.0/driver_override vfio-pci",
                     "/sys/bus/pci/drivers/amdgpu/unbind 0000:09:00.0",
                     std::string(kResize) + " 12",
                     "/sys/bus/pci/drivers_probe 0000:09:00.0",
                 });
  CHECK(e.journal().devices.at("0000:09:00.0").rebar == std::map<int, int>{{0, 8}});
  CHECK(nlohmann::json::parse(e.fx.read("/run/pt/journal.json"))["devices"]["0000:09:00.0"]["rebar"] ==
        nlohmann::json{{"0", 8}});

  e.fx.kernel().log.clear();
  REQUIRE(e.run("attach", {"09:00.0"}));
  CHECK(e.fx.driver_of("0000:09:00.0") == "amdgpu");
  CHECK(bar0(e) == 8);
  paths.clear();
  for (const auto& [p, v] : e.fx.kernel().log) paths.push_back(p + " " + v);
  CHECK(paths == std::vector<std::string>{
                     "/sys/bus/pci/devices/0000:09:00.0/driver_override \n",
                     "/sys/bus/pci/drivers/vfio-pci/unbind 0000:09:00.0",
                     std::string(kResize) + " 8",
                     "/sys/bus/pci/drivers_probe 0000:09:00.0",
                 });
  CHECK(e.journal().devices.empty());
}

TEST_CASE("detach --rebar refuses sizes, BARs and devices it cannot resize, changing nothing") {
  struct Case {
    Shape shape;
    std::string request, device, message;
    Exit exit;
  };
  for (const auto& c : {
           Case{fiji, "0=8G", "09:00.0", "BAR 0 does not support 8G; it supports 256M 512M 1G 2G 4G",
                Exit::usage},
           Case{fiji, "2=1G", "09:00.0", "BAR 2 is not resizable; its Resizable BAR capability covers BAR 0",
                Exit::usage},
           Case{fiji, "0=3G", "09:00.0", "is not a power of two", Exit::usage},
           Case{test::Fixture::gpu_with_audio, "0=1G", "01:00.0", "has no Resizable BAR capability",
                Exit::usage},
           Case{fiji_old_kernel, "0=1G", "09:00.0", "resourceN_resize needs Linux 6.1 or later", Exit::failed},
       }) {
    CAPTURE(c.request);
    Env e(c.shape);
    const auto before = e.fx.snapshot();
    bind::Options o;
    o.rebar = {c.request};
    auto r = e.run("detach", {c.device}, o);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find(c.message) != std::string::npos);
    CHECK(r.error().exit == c.exit);
    CHECK(e.fx.kernel().log.empty());
    CHECK(e.fx.snapshot() == before);
  }
}

TEST_CASE("a detach --rebar that fails after the resize rolls the size back too") {
  Env e(fiji);
  e.fx.refuse("vfio-pci", "0000:09:00.0");
  bind::Options o;
  o.rebar = {"0=2G"};
  auto r = e.run("detach", {"09:00.0"}, o);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(e.fx.driver_of("0000:09:00.0") == "amdgpu");
  CHECK(bar0(e) == 8);
  int resizes = 0;
  for (const auto& [p, v] : e.fx.kernel().log)
    if (p == kResize) ++resizes;
  CHECK(resizes == 2);
  CHECK(e.journal().devices.empty());
}

TEST_CASE("detach --rebar to the size a BAR already has writes no resize") {
  Env e(fiji);
  bind::Options o;
  o.rebar = {"0=256M"};
  REQUIRE(e.run("detach", {"09:00.0"}, o));
  for (const auto& [p, v] : e.fx.kernel().log) CHECK(p != kResize);
  CHECK(e.journal().devices.at("0000:09:00.0").rebar.empty());
}
