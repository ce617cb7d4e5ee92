#include "pt/vgaarb_cmd.hpp"

#include <doctest/doctest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "fake_arbiter.hpp"
#include "fixture.hpp"
#include "pt/bind_cmd.hpp"
#include "pt/journal.hpp"

using namespace pt;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const char* kGpu = "0000:01:00.0";

// gpu_with_audio (01:00.0 nvidia, boot VGA, behind root port 00:01.0) plus a
// 3D controller on amdgpu at 02:00.0 behind 00:01.1.
void two_gpus(test::Fixture& fx) {
  test::Fixture::gpu_with_audio(fx);
  fx.add_driver("amdgpu", "amdgpu");
  fx.add_bridge("0000:00:01.1");
  fx.add_device(test::FakeDevice{.bdf = "0000:02:00.0",
                                 .vendor = 0x1002,
                                 .device = 0x7480,
                                 .class_code = 0x030200,
                                 .parent = "0000:00:01.1",
                                 .driver = "amdgpu",
                                 .group = 2});
}

struct Env {
  test::Fixture fx;
  std::optional<test::FakeArbiter> arb;
  Context ctx;
  std::string out;
  explicit Env(void (*shape)(test::Fixture&) = two_gpus) {
    shape(fx);
    arb.emplace(fx);
    ctx.root = fx.root();
    ctx.writer = &fx.kernel();
    ctx.modules = &fx.modules();
    ctx.arbiter = &*arb;
    ctx.timeout = 200ms;
    ctx.lock_timeout = 2000ms;
    ctx.now = [] { return int64_t(1700000000); };
  }
  Result<Exit> run(vgaarb::Options o) {
    ctx.dry_run = o.common.dry_run;
    std::ostringstream s;
    auto r = vgaarb::run_in(o, ctx, s);
    out = s.str();
    return r;
  }
  Result<Exit> cmd(const std::string& command, const std::string& dev = "",
                   const std::string& state = "", bool json_out = false, bool dry_run = false) {
    vgaarb::Options o;
    o.command = command;
    o.device = dev;
    o.state = state;
    o.common.json = json_out;
    o.common.dry_run = dry_run;
    return run(o);
  }
  std::vector<std::string> mutations() const {
    std::vector<std::string> m;
    for (const auto& l : arb->log)
      if (!l.starts_with("target ")) m.push_back(l);
    return m;
  }
  Journal journal() { return load_journal(ctx.root).value(); }
};

}  // namespace

TEST_CASE(
    "list --json: arbiter fields, boot_vga, driver, command bits; 3D controllers are not "
    "arbitrated") {
  Env e;
  e.arb->card(kGpu).decodes = 0;
  REQUIRE(e.cmd("list", "", "", true));
  auto j = json::parse(e.out);
  REQUIRE(j.size() == 2);
  CHECK(j[0]["device"] == kGpu);
  CHECK(j[0]["class"] == "0300");
  CHECK(j[0]["driver"] == "nvidia");
  CHECK(j[0]["boot_vga"] == true);
  CHECK(j[0]["command_io"] == true);  // the fixture's command register is 0x0007
  CHECK(j[0]["command_mem"] == true);
  CHECK(j[0]["arbitrated"] == true);
  CHECK(j[0]["arbiter"]["count"] == 0);
  CHECK(j[0]["arbiter"]["decodes"] == "none");
  CHECK(j[0]["arbiter"]["owns"] == "io+mem");
  CHECK(j[0]["arbiter"]["locks"] == "none");
  CHECK(j[0]["arbiter"]["io_locks"] == 0);
  CHECK(j[0]["arbiter"]["line"] ==
        "count:0,PCI:0000:01:00.0,decodes=none,owns=io+mem,locks=none(0:0)");
  CHECK(j[0]["note"].is_null());
  CHECK(j[1]["device"] == "0000:02:00.0");
  CHECK(j[1]["arbitrated"] == false);
  CHECK(j[1]["arbiter"].is_null());
  CHECK(j[1]["note"] == "not arbitrated (class 0302)");
  CHECK(e.mutations().empty());
}

TEST_CASE("list text: one row per display device, the lock counts as io:mem") {
  Env e;
  e.arb->card(kGpu).locks = vga::kIoMem;
  e.arb->card(kGpu).io_lock_cnt = 1;
  e.arb->card(kGpu).mem_lock_cnt = 2;
  REQUIRE(e.cmd("list"));
  CHECK(
      e.out.find(
          "0000:01:00.0  0300   nvidia        yes   io+mem  1      io+mem   io+mem  io+mem(1:2)") !=
      std::string::npos);
  CHECK(
      e.out.find("0000:02:00.0  0302   amdgpu        -     io+mem  not arbitrated (class 0302)") !=
      std::string::npos);
}

TEST_CASE(
    "list and show without an arbiter still give boot_vga, driver and command bits, and say why") {
  Env e;
  e.arb->unavailable =
      Error{0, "/tmp/x/dev/vga_arbiter", "is not a character device", Exit::failed};
  REQUIRE(e.cmd("list"));
  CHECK(
      e.out.find("note: arbiter unavailable: /tmp/x/dev/vga_arbiter: is not a character device") !=
      std::string::npos);
  CHECK(e.out.find("0000:01:00.0  0300   nvidia        yes   io+mem  -") != std::string::npos);
  REQUIRE(e.cmd("show", "01:00.0", "", true));
  auto j = json::parse(e.out);
  CHECK(j["arbiter"].is_null());
  CHECK(j["boot_vga"] == true);
  CHECK(j["note"] == "arbiter unavailable: /tmp/x/dev/vga_arbiter: is not a character device");
}

TEST_CASE("show: fields, bridges with VGA enable, journal record, kernel log") {
  Env e;
  // Root port 00:01.0 forwards VGA: Bridge Control bit 3.
  auto bridge = parse_sysfs_name("0000:00:01.0").value();
  REQUIRE(e.fx.kernel().write_config("0000:00:01.0", 0x3e, 0x0008));
  (void)bridge;
  e.fx.write_file("/dev/kmsg",
                  "6,1,1,-;vfio-pci 0000:01:00.0: vgaarb: changed VGA decodes: "
                  "olddecodes=io+mem,decodes=none:owns=io+mem\n");
  Journal jr;
  jr.vga[kGpu] = VgaRecord{"io+mem", "io+mem", true, "nvidia", 1700000000};
  REQUIRE(check_state_dir(e.ctx.root, true));
  REQUIRE(save_journal(e.ctx.root, jr));
  REQUIRE(e.cmd("show", "01:00.0"));
  CHECK(
      e.out.find(
          "  arbiter:      count:1,PCI:0000:01:00.0,decodes=io+mem,owns=io+mem,locks=none(0:0)") !=
      std::string::npos);
  CHECK(e.out.find("  bridges:      0000:00:01.0 VGA enable on") != std::string::npos);
  CHECK(e.out.find("  journal:      decodes=io+mem owns=io+mem recorded when pt-bind detached it "
                   "from nvidia") != std::string::npos);
  CHECK(e.out.find("    vfio-pci 0000:01:00.0: vgaarb: changed VGA decodes") != std::string::npos);
  REQUIRE(e.cmd("show", "01:00.0", "", true));
  auto j = json::parse(e.out);
  CHECK(j["bridges"] == json::array({{{"device", "0000:00:01.0"}, {"vga_enable", true}}}));
  CHECK(j["journal"]["decodes"] == "io+mem");
  CHECK(j["kernel_log"].size() == 1);
  CHECK(j["kernel_log_error"].is_null());
  std::filesystem::remove(e.fx.dir() + "/dev/kmsg");
  REQUIRE(e.cmd("show", "01:00.0"));
  CHECK(e.out.find("  kernel log:   unavailable: " + e.fx.dir() +
                   "/dev/kmsg: the kernel log is not readable") != std::string::npos);
  CHECK(e.mutations().empty());
}

TEST_CASE("decodes none is applied and read back under a driver without a callback") {
  Env e;
  REQUIRE(e.cmd("decodes", "01:00.0", "none"));
  CHECK(e.mutations() == std::vector<std::string>{"decodes none"});
  CHECK(e.arb->card(kGpu).decodes == 0);
  CHECK(e.out.find("0000:01:00.0  decodes io+mem -> none  (verified: count:0,") !=
        std::string::npos);
  REQUIRE(e.cmd("decodes", "01:00.0", "none"));
  CHECK(e.out == "0000:01:00.0  decodes none already\n");
  CHECK(e.mutations().size() == 1);
  REQUIRE(e.cmd("decodes", "01:00.0", "io", true));
  auto j = json::parse(e.out);
  CHECK(j["requested"] == "io");
  CHECK(j["to"] == "io+mem");
  CHECK(j["result"] == "changed");
}

TEST_CASE(
    "decodes under a driver with a decode callback is reported as ignored, naming the driver") {
  Env e;
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", kGpu, WriteKind::blocking));
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/vfio-pci/bind", kGpu, WriteKind::blocking));
  auto r = e.cmd("decodes", "01:00.0", "none");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  auto msg = r.error().describe();
  CHECK(msg.find("the kernel ignored \"decodes none\": decodes is still io+mem") !=
        std::string::npos);
  CHECK(msg.find("Its driver, vfio-pci, registered a VGA decode callback") != std::string::npos);
  CHECK(msg.find("pt-bind attach 0000:01:00.0") != std::string::npos);
  CHECK(e.arb->card(kGpu).decodes == vga::kIoMem);
}

TEST_CASE(
    "bad input changes nothing: bad values, a non-VGA device, a missing one, a 3D controller") {
  Env e;
  auto before = e.fx.snapshot();
  for (const char* v : {"io mem", "all", "IO", ""}) {
    auto r = e.cmd("decodes", "01:00.0", v);
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::usage);
    CHECK(r.error().describe().find("give one of none, io, mem or io+mem") != std::string::npos);
  }
  auto r = e.cmd("decodes", "01:00.1", "none");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(r.error().describe().find("is not a VGA device (class 0403)") != std::string::npos);
  r = e.cmd("restore", "02:00.0");
  REQUIRE_FALSE(r);
  CHECK(r.error().describe().find("display device of class 0302") != std::string::npos);
  r = e.cmd("decodes", "05:00.0", "none");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(r.error().describe().find("no such PCI device") != std::string::npos);
  r = e.cmd("decodes", "zz:00.0", "none");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  r = e.cmd("show", "01:00.1");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(e.mutations().empty());
  CHECK(e.fx.snapshot() == before);
  CHECK_FALSE(e.fx.exists("/run/pt/journal.json"));
}

TEST_CASE("mutating commands fail with exit 1 naming the path when the arbiter is unavailable") {
  Env e;
  e.arb->unavailable = Error{0, "/tree/dev/vga_arbiter", "is not a character device", Exit::failed};
  for (const char* c : {"decodes", "restore"}) {
    auto r = e.cmd(c, "01:00.0", std::string(c) == "decodes" ? "none" : "");
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::failed);
    CHECK(r.error().describe().find("/tree/dev/vga_arbiter") != std::string::npos);
  }
  vgaarb::Options o;
  o.command = "lock";
  o.device = "01:00.0";
  o.argv = {"true"};
  auto r = e.run(o);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
}

TEST_CASE("--dry-run says what would be written and writes nothing") {
  Env e;
  e.arb->card(kGpu).decodes = 0;
  REQUIRE(e.cmd("decodes", "01:00.0", "io+mem", false, true));
  CHECK(e.out.find("write /dev/vga_arbiter \"decodes io+mem\"") != std::string::npos);
  REQUIRE(e.cmd("restore", "01:00.0", "", false, true));
  CHECK(e.out.find("dry run: restore 0000:01:00.0 to decodes io+mem (no journal record") !=
        std::string::npos);
  CHECK(e.out.find("write /dev/vga_arbiter \"decodes io+mem\"") != std::string::npos);
  CHECK(e.mutations().empty());
  CHECK(e.arb->card(kGpu).decodes == 0);
  CHECK_FALSE(e.fx.exists("/run/pt"));
}

TEST_CASE("restore without a record sets io+mem, verifies, and says which it used") {
  Env e;
  e.arb->card(kGpu).decodes = 0;
  REQUIRE(e.cmd("restore", "01:00.0"));
  CHECK(e.mutations() == std::vector<std::string>{"decodes io+mem"});
  CHECK(e.arb->card(kGpu).decodes == vga::kIoMem);
  CHECK(e.out.find("decodes none -> io+mem") != std::string::npos);
  CHECK(e.out.find("no journal record: io+mem") != std::string::npos);
  CHECK(e.fx.exists("/run/pt/lock"));  // it took the pt lock
}

TEST_CASE("restore uses the journal's record, removes it once verified, keeps the others") {
  Env e;
  e.arb->card(kGpu).decodes = 0;
  Journal jr;
  jr.vga[kGpu] = VgaRecord{"io+mem", "none", true, "nvidia", 1700000000};
  jr.vga["0000:09:00.0"] = VgaRecord{"io+mem", "none", false, "nvidia", 1700000000};
  REQUIRE(check_state_dir(e.ctx.root, true));
  REQUIRE(save_journal(e.ctx.root, jr));
  REQUIRE(e.cmd("restore", "01:00.0", "", true));
  auto j = json::parse(e.out);
  CHECK(j["to"] == "io+mem");
  CHECK(j["source"] == "from the journal: decodes=io+mem when pt-bind detached it from nvidia");
  CHECK(j["journal_record_removed"] == true);
  auto after = e.journal();
  CHECK(after.vga.count(kGpu) == 0);
  CHECK(after.vga.count("0000:09:00.0") == 1);
}

TEST_CASE("restore refuses a device still on vfio-pci and keeps the record") {
  Env e;
  Journal jr;
  jr.vga[kGpu] = VgaRecord{"io+mem", "io+mem", true, "nvidia", 1700000000};
  REQUIRE(check_state_dir(e.ctx.root, true));
  REQUIRE(save_journal(e.ctx.root, jr));
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", kGpu, WriteKind::blocking));
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/vfio-pci/bind", kGpu, WriteKind::blocking));
  for (unsigned decodes : {0u, vga::kIoMem}) {
    e.arb->card(kGpu).decodes = decodes;
    auto r = e.cmd("restore", "01:00.0");
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::failed);
    CHECK(r.error().describe().find("is on vfio-pci, which decides its VGA decodes itself") !=
          std::string::npos);
    CHECK(r.error().describe().find("pt-bind attach 0000:01:00.0") != std::string::npos);
    CHECK(e.journal().vga.count(kGpu) == 1);
  }
  CHECK(e.mutations().empty());
}

TEST_CASE(
    "restore that the kernel ignores (a driver with a callback) keeps the record and exits 1") {
  Env e;
  Journal jr;
  jr.vga[kGpu] = VgaRecord{"io+mem", "io+mem", true, "nvidia", 1700000000};
  REQUIRE(check_state_dir(e.ctx.root, true));
  REQUIRE(save_journal(e.ctx.root, jr));
  e.fx.add_driver("nouveau", "nouveau");
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", kGpu, WriteKind::blocking));
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nouveau/bind", kGpu, WriteKind::blocking));
  e.arb->card(kGpu).decodes = 0;
  auto r = e.cmd("restore", "01:00.0");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  CHECK(r.error().describe().find("Its driver, nouveau, registered a VGA decode callback") !=
        std::string::npos);
  CHECK(e.journal().vga.count(kGpu) == 1);
  CHECK(e.arb->card(kGpu).decodes == 0);
}

TEST_CASE("restore of the boot VGA device that owns nothing reports the bridges' VGA routing") {
  Env e;
  e.arb->card(kGpu).decodes = 0;
  e.arb->card(kGpu).owns = 0;
  REQUIRE(e.cmd("restore", "01:00.0"));
  CHECK(e.out.find("is the boot VGA device but owns no legacy VGA resources (owns=none)") !=
        std::string::npos);
  CHECK(e.out.find("Upstream bridges: 0000:00:01.0 VGA enable off") != std::string::npos);
  CHECK(e.out.find("does not forward VGA") != std::string::npos);
  REQUIRE(e.fx.kernel().write_config("0000:00:01.0", 0x3e, 0x0008));
  e.arb->card(kGpu).decodes = 0;
  REQUIRE(e.cmd("restore", "01:00.0", "", true));
  auto j = json::parse(e.out);
  CHECK(j["bridges"] == json::array({{{"device", "0000:00:01.0"}, {"vga_enable", true}}}));
}

TEST_CASE("lock holds the lock while CMD runs, unlocks after, and exits with CMD's status") {
  Env e;
  vgaarb::Options o;
  o.command = "lock";
  o.device = "01:00.0";
  o.argv = {"sh", "-c", "exit 3"};
  auto r = e.run(o);
  REQUIRE(r);
  CHECK(int(*r) == 3);
  CHECK(e.mutations() == std::vector<std::string>{"lock io+mem", "unlock io+mem"});
  CHECK(e.arb->card(kGpu).locks == 0);
  CHECK(e.arb->card(kGpu).io_lock_cnt == 0);

  o.argv = {"sh", "-c", "kill -TERM $$"};
  r = e.run(o);
  REQUIRE(r);
  CHECK(int(*r) == 128 + SIGTERM);
  CHECK(e.arb->card(kGpu).locks == 0);

  o.argv = {"/nonexistent/cmd"};
  r = e.run(o);
  REQUIRE(r);
  CHECK(int(*r) == 127);
  CHECK(e.arb->card(kGpu).locks == 0);

  o.state = "mem";
  o.argv = {"true"};
  r = e.run(o);
  REQUIRE(r);
  CHECK(int(*r) == 0);
  CHECK(e.mutations().back() == "unlock mem");
}

TEST_CASE("lock forwards SIGTERM to CMD") {
  Env e;
  vgaarb::Options o;
  o.command = "lock";
  o.device = "01:00.0";
  // CMD signals its parent (pt-vgaarb, here this test process), which must
  // pass the signal on: CMD then dies of it instead of sleeping.
  o.argv = {"sh", "-c", "kill -TERM $PPID; sleep 5; exit 9"};
  auto start = std::chrono::steady_clock::now();
  auto r = e.run(o);
  REQUIRE(r);
  CHECK(int(*r) == 128 + SIGTERM);
  CHECK(std::chrono::steady_clock::now() - start < 4s);
  CHECK(e.arb->card(kGpu).locks == 0);
}

TEST_CASE("lock refuses none, a missing command and non-VGA devices before locking anything") {
  Env e;
  vgaarb::Options o;
  o.command = "lock";
  o.device = "01:00.0";
  o.state = "none";
  o.argv = {"true"};
  auto r = e.run(o);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  o.state = "";
  o.argv = {};
  r = e.run(o);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  o.argv = {"true"};
  o.device = "01:00.1";
  r = e.run(o);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::failed);
  o.device = "01:00.0";
  o.common.dry_run = true;
  r = e.run(o);
  REQUIRE(r);
  CHECK(e.out.find("write /dev/vga_arbiter \"lock io+mem\"") != std::string::npos);
  CHECK(e.mutations().empty());
}

TEST_CASE(
    "pt-bind detach records the arbiter's state of each VGA function before its first write") {
  Env e;
  e.arb->card(kGpu).owns = vga::kIoMem;
  // vfio-pci's callback turns decodes off as soon as it is bound: a status
  // read after the first write would record none.
  e.arb->callback_decodes["vfio-pci"] = 0;
  bind::Options o;
  o.command = "detach";
  o.devices = {"01:00"};
  std::ostringstream s;
  REQUIRE(bind::run_in(o, e.ctx, s));
  auto j = e.journal();
  REQUIRE(j.vga.count(kGpu) == 1);
  CHECK(j.vga[kGpu].decodes == "io+mem");
  CHECK(j.vga[kGpu].owns == "io+mem");
  CHECK(j.vga[kGpu].boot_vga == true);
  CHECK(j.vga[kGpu].driver == "nvidia");
  CHECK(j.vga[kGpu].time == 1700000000);
  CHECK(j.vga.count("0000:01:00.1") == 0);
  CHECK(e.fx.driver_of(kGpu) == "vfio-pci");
  CHECK(e.arb->status(parse_sysfs_name(kGpu).value())->decodes == 0);

  // The record outlives attach; an older record is not overwritten.
  o.command = "attach";
  REQUIRE(bind::run_in(o, e.ctx, s));
  CHECK(e.journal().vga.count(kGpu) == 1);
  o.command = "detach";
  REQUIRE(bind::run_in(o, e.ctx, s));
  CHECK(e.journal().vga[kGpu].decodes == "io+mem");
}

TEST_CASE(
    "the origin story: detach, attach to a driver without a callback, decodes none, restore") {
  Env e;
  e.arb->callback_decodes["vfio-pci"] = 0;
  bind::Options o;
  o.devices = {"01:00"};
  std::ostringstream s;
  o.command = "detach";
  REQUIRE(bind::run_in(o, e.ctx, s));
  auto r = e.cmd("decodes", "01:00.0", "io+mem");  // vfio-pci decides: ignored
  REQUIRE_FALSE(r);
  CHECK(r.error().describe().find("vfio-pci") != std::string::npos);
  o.command = "attach";
  REQUIRE(bind::run_in(o, e.ctx, s));
  CHECK(e.fx.driver_of(kGpu) == "nvidia");
  CHECK(e.arb->card(kGpu).decodes == 0);  // nvidia registers no callback: nothing puts it back
  REQUIRE(e.cmd("restore", "01:00.0"));
  CHECK(e.out.find("decodes none -> io+mem") != std::string::npos);
  CHECK(e.out.find("from the journal: decodes=io+mem when pt-bind detached it from nvidia") !=
        std::string::npos);
  CHECK(e.arb->card(kGpu).decodes == vga::kIoMem);
  CHECK(e.journal().vga.empty());
  CHECK(e.mutations() == std::vector<std::string>{"decodes io+mem", "decodes io+mem"});
}

TEST_CASE("pt-bind detach goes on without an arbiter and records nothing") {
  Env e;
  e.arb->unavailable = Error{ENOENT, "/dev/vga_arbiter", "no VGA arbiter", Exit::failed};
  bind::Options o;
  o.command = "detach";
  o.devices = {"01:00"};
  std::ostringstream s;
  REQUIRE(bind::run_in(o, e.ctx, s));
  CHECK(e.journal().vga.empty());
  CHECK(e.fx.driver_of(kGpu) == "vfio-pci");
}

TEST_CASE("lock hands the legacy resources back to the card that owned them before") {
  Env e([](test::Fixture& fx) {
    test::Fixture::gpu_with_audio(fx);
    fx.add_bridge("0000:00:01.1");
    fx.add_device(test::FakeDevice{.bdf = "0000:02:00.0",
                                   .class_code = 0x030000,
                                   .parent = "0000:00:01.1",
                                   .driver = "nvidia",
                                   .group = 2,
                                   .boot_vga = false});
  });
  REQUIRE(e.arb->card(kGpu).owns == vga::kIoMem);
  vgaarb::Options o;
  o.command = "lock";
  o.device = "02:00.0";
  o.argv = {"true"};
  auto r = e.run(o);
  REQUIRE(r);
  CHECK(int(*r) == 0);
  CHECK(e.mutations() ==
        std::vector<std::string>{"lock io+mem", "unlock io+mem", "lock io+mem", "unlock io+mem"});
  CHECK(e.arb->card(kGpu).owns == vga::kIoMem);
  CHECK(e.arb->card("0000:02:00.0").owns == 0);
  CHECK(e.arb->card("0000:02:00.0").locks == 0);
  CHECK(e.arb->card(kGpu).locks == 0);
}
