#include "pt/reset.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <sstream>

#include "fixture.hpp"
#include "pt/rebar.hpp"
#include "pt/reset_cmd.hpp"

#include <nlohmann/json.hpp>

using namespace pt;
using namespace std::chrono_literals;

namespace {

// GPU + audio on vfio-pci behind a root port, the way pt-bind leaves them.
void parked_pair(test::Fixture& fx) {
  test::Fixture::gpu_with_audio(fx);
  for (const char* d : {"0000:01:00.1", "0000:01:00.0"}) {
    fx.kernel().write(std::string("/sys/bus/pci/devices/") + d + "/driver_override", "vfio-pci", WriteKind::attribute);
    fx.kernel().write(std::string("/sys/bus/pci/drivers/") + (d[11] == '0' ? "nvidia" : "snd_hda_intel") + "/unbind",
                      d, WriteKind::blocking);
    fx.kernel().write("/sys/bus/pci/drivers_probe", d, WriteKind::blocking);
  }
  fx.kernel().log.clear();
}

// A GPU alone behind its root port, on vfio-pci, with the kernel's reset_method.
void solo(test::Fixture& fx) {
  fx.add_driver("vfio-pci", "vfio_pci").add_driver("nouveau", "nouveau");
  fx.add_bridge("0000:00:02.0");
  fx.add_device(test::FakeDevice{.bdf = "0000:02:00.0", .class_code = 0x030000, .parent = "0000:00:02.0",
                                 .driver = "vfio-pci", .native_driver = "nouveau", .group = 7,
                                 .reset_methods = std::vector<std::string>{"flr", "pm", "bus"}});
  fx.write_file("/sys/bus/pci/devices/0000:02:00.0/driver_override", "vfio-pci\n");
}

struct Env {
  test::Fixture fx;
  Context ctx;
  std::string out;
  explicit Env(void (*shape)(test::Fixture&)) {
    shape(fx);
    ctx.root = fx.root();
    ctx.writer = &fx.kernel();
    ctx.modules = &fx.modules();
    ctx.timeout = 500ms;
  }
  Result<Exit> run(std::string command, std::vector<std::string> devices, std::optional<std::string> method = {},
                   bool force = false, bool json = false) {
    reset::CliOptions o;
    o.command = std::move(command);
    o.devices = std::move(devices);
    o.method = std::move(method);
    o.force = force;
    o.common.json = json;
    std::ostringstream s;
    auto r = reset::run_in(o, ctx, s);
    out = s.str();
    return r;
  }
  reset::DeviceMethods methods(const std::string& bdf) {
    auto all = scan_devices(ctx.root).value();
    auto addr = *parse_sysfs_name(bdf);
    const Device* d = nullptr;
    for (const auto& x : all)
      if (x.addr == addr) d = &x;
    REQUIRE(d);
    return reset::detect(ctx.root, *d, load_config(ctx.root, addr).value(), all,
                         reset::kernel_has_reset_method(ctx.root, all));
  }
  bool logged(const std::string& path, const std::string& value) {
    for (const auto& [p, v] : fx.kernel().log)
      if (p == path && v == value) return true;
    return false;
  }
};

}  // namespace

TEST_CASE("methods of a GPU sharing its bus with the audio function") {
  Env e(parked_pair);
  auto dm = e.methods("0000:01:00.0");
  REQUIRE(dm.methods.size() == reset::kMethods.size());
  CHECK(dm.find("flr")->available);
  CHECK(dm.find("flr")->kernel == true);
  CHECK(dm.find("pm")->available);
  CHECK(dm.find("pm")->reason == "NoSoftRst- (D3hot->D0 resets the function)");
  auto bus = dm.find("bus");
  CHECK_FALSE(bus->available);
  CHECK(bus->reason == "shares bus 01 with 0000:01:00.1 (vfio-pci)");
  CHECK(bus->kernel == true);  // the kernel listed bus before the audio function appeared
  CHECK(bus->disagrees());
  CHECK_FALSE(dm.find("slot")->available);
  CHECK(dm.find("rescan")->available);
  CHECK(dm.find("acpi")->reason == "no ACPI companion (no firmware_node)");
}

TEST_CASE("reasons for missing methods: NoSoftRst, no PM, root bus, D3") {
  test::Fixture fx;
  fx.add_driver("vfio-pci", "vfio_pci");
  fx.add_device(test::FakeDevice{.bdf = "0000:00:03.0", .driver = "vfio-pci", .group = 3,
                                 .caps = {.no_soft_reset = true, .flr = false}});
  fx.add_device(test::FakeDevice{.bdf = "0000:00:04.0", .driver = "vfio-pci", .group = 4,
                                 .caps = {.pm = false, .pcie = false}});
  fx.add_device(test::FakeDevice{.bdf = "0000:00:05.0", .group = 5,
                                 .caps = {.power_state = 3, .af = true, .af_flr = true}});
  fx.add_device(test::FakeDevice{.bdf = "0000:00:06.0", .driver = "vfio-pci", .group = 6,
                                 .caps = {.power_state = 3}});
  auto all = scan_devices(fx.root()).value();
  auto detect = [&](int i) {
    return reset::detect(fx.root(), all[size_t(i)], load_config(fx.root(), all[size_t(i)].addr).value(), all, true);
  };
  auto nsr = detect(0);
  CHECK(nsr.find("pm")->reason == "NoSoftRst+ (state is kept across D3hot)");
  CHECK(nsr.find("flr")->reason == "PCIe DevCap: FLReset-");
  CHECK(nsr.find("bus")->reason == "device is on a root bus");
  auto bare = detect(1);
  CHECK(bare.find("pm")->reason == "no PM capability");
  CHECK(bare.find("flr")->reason == "not a PCI Express function");
  auto d3 = detect(2);
  CHECK_FALSE(d3.find("pm")->available);
  CHECK(d3.find("pm")->reason.find("D3") != std::string::npos);
  CHECK(d3.find("af_flr")->available);
  // vfio-pci idles a function in D3hot itself; the kernel wakes it for a reset.
  auto idle = detect(3);
  CHECK(idle.find("pm")->available);
  CHECK(idle.find("pm")->reason.find("woken first") != std::string::npos);
}

TEST_CASE("on a kernel without reset_method the kernel column is unknown") {
  Env e(parked_pair);
  e.fx.write_file("/proc/sys/kernel/osrelease", "5.10.0-32-amd64\n");
  for (const char* d : {"0000:01:00.0", "0000:01:00.1"})
    std::filesystem::remove(e.fx.dir() + "/sys/devices/pci0000:00/0000:00:01.0/" + d + "/reset_method");
  auto dm = e.methods("0000:01:00.0");
  CHECK_FALSE(dm.find("flr")->kernel.has_value());
  CHECK(dm.find("flr")->available);
  REQUIRE(e.run("methods", {"01:00.0"}));
  CHECK(e.out.find("no reset_method attribute") != std::string::npos);
}

TEST_CASE("methods --json has the documented shape") {
  Env e(parked_pair);
  REQUIRE(e.run("methods", {"01:00.0"}, {}, false, true));
  auto j = nlohmann::json::parse(e.out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["device"] == "0000:01:00.0");
  CHECK(j[0]["methods"][2]["name"] == "flr");
  CHECK(j[0]["methods"][2]["available"] == true);
  CHECK(j[0]["methods"][2]["kernel"] == true);
  CHECK(j[0]["methods"][7]["kernel"].is_null());
}

TEST_CASE("the kernel path selects the method, resets, and restores reset_method") {
  Env e(solo);
  const std::string dev = "/sys/bus/pci/devices/0000:02:00.0/";
  auto r = e.run("reset", {"02:00.0"});
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  REQUIRE(e.fx.kernel().log.size() == 3);
  CHECK(e.fx.kernel().log[0] == std::pair<std::string, std::string>{dev + "reset_method", "flr"});
  CHECK(e.fx.kernel().log[1] == std::pair<std::string, std::string>{dev + "reset", "1"});
  CHECK(e.fx.kernel().log[2] == std::pair<std::string, std::string>{dev + "reset_method", "flr pm bus"});
  CHECK(e.fx.read(dev + "reset_method") == "flr pm bus");
  CHECK(e.fx.resets("0000:02:00.0") == 1);
  CHECK(e.out.find("0000:02:00.0  flr  ok") != std::string::npos);
}

TEST_CASE("a reset_method list the kernel no longer accepts falls back to default") {
  Env e(solo);
  const std::string dev = "/sys/bus/pci/devices/0000:02:00.0/";
  e.fx.fail_write(dev + "reset_method", "flr pm bus", EINVAL);
  REQUIRE(e.run("reset", {"02:00.0"}));
  CHECK(e.logged(dev + "reset_method", "default"));
}

TEST_CASE("reset_method is restored after a failed reset") {
  Env e(solo);
  const std::string dev = "/sys/bus/pci/devices/0000:02:00.0/";
  e.fx.fail_write(dev + "reset", "1", EIO);
  auto r = e.run("reset", {"02:00.0"}, "pm");
  REQUIRE_FALSE(r);
  CHECK(r.error().subject == dev + "reset");
  CHECK(e.logged(dev + "reset_method", "pm"));
  CHECK(e.fx.read(dev + "reset_method") == "flr pm bus");
}

TEST_CASE("verification names the register a reset lost") {
  Env e(solo);
  e.fx.corrupt_on_reset("0000:02:00.0");
  auto r = e.run("reset", {"02:00.0"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::not_rolled_back);
  CHECK(r.error().message.find("BAR0 reads 0x00000000, expected 0xf0000000") != std::string::npos);
}

TEST_CASE("a bus reset of a shared bus needs every function named and parked") {
  Env e(test::Fixture::gpu_with_audio);
  auto host = e.run("reset", {"01:00.0"}, "bus");
  REQUIRE_FALSE(host);
  CHECK(host.error().message.find("0000:01:00.1") != std::string::npos);

  // Both parked: naming the GPU implies its same-slot audio companion, and
  // the bus is reset as one unit through the bridge.
  Env p(parked_pair);
  auto both = p.run("reset", {"01:00.0"}, "bus");
  REQUIRE(both);
  CHECK(p.logged("/sys/bus/pci/devices/0000:00:01.0/config", "@0x03e=0x0040"));
  CHECK(p.logged("/sys/bus/pci/devices/0000:00:01.0/config", "@0x03e=0x0000"));
  CHECK(p.out.find("0000:01:00.0  bus  ok") != std::string::npos);
  CHECK(p.out.find("0000:01:00.1  bus  ok") != std::string::npos);
}

TEST_CASE("where the kernel cannot be asked, pt performs PM and FLR itself on a parked function") {
  Env e(solo);
  e.fx.write_file("/proc/sys/kernel/osrelease", "5.10.0-32-amd64\n");
  std::filesystem::remove(e.fx.dir() + "/sys/devices/pci0000:00/0000:00:02.0/0000:02:00.0/reset_method");
  auto r = e.run("reset", {"02:00.0"}, "pm");
  REQUIRE(r);
  CHECK(e.logged("/sys/bus/pci/devices/0000:02:00.0/config", "@0x044=0x0003"));
  CHECK(e.logged("/sys/bus/pci/devices/0000:02:00.0/config", "@0x044=0x0000"));
  CHECK(e.logged("/sys/bus/pci/devices/0000:02:00.0/config", "@0x004=0x0007"));  // command restored last
  CHECK(e.fx.resets("0000:02:00.0") == 0);
  // FLR is the kernel's first method there, so the reset file does it.
  REQUIRE(e.run("reset", {"02:00.0"}, "flr"));
  CHECK(e.fx.resets("0000:02:00.0") == 1);
}

TEST_CASE("rescan re-applies driver_override and takes the function back from the host driver") {
  Env e(solo);
  auto r = e.run("reset", {"02:00.0"}, "rescan");
  REQUIRE(r);
  CHECK(e.fx.driver_of("0000:02:00.0") == "vfio-pci");
  CHECK(e.fx.override_of("0000:02:00.0") == "vfio-pci");
  CHECK(e.logged("/sys/bus/pci/devices/0000:00:02.0/rescan", "1"));
  // The fixture's kernel, like the real one, binds the native driver on rescan
  // when no override is set; here the override came back first.
  CHECK(e.logged("/sys/bus/pci/devices/0000:02:00.0/driver_override", "vfio-pci"));
  CHECK(e.logged("/sys/bus/pci/drivers/nouveau/unbind", "0000:02:00.0"));
}

TEST_CASE("refusals change nothing") {
  SUBCASE("a held device on its host driver, unless --force") {
    Env e(test::Fixture::gpu_with_audio);
    e.fx.add_holder(4242, "Xorg", "/dev/dri/card0");
    auto r = e.run("reset", {"01:00.0"});
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("pid 4242 (Xorg)") != std::string::npos);
    CHECK(e.fx.kernel().log.empty());
    REQUIRE(e.run("reset", {"01:00.0"}, {}, true));
    CHECK(e.fx.resets("0000:01:00.0") == 1);
  }
  SUBCASE("the boot VGA with its console bound") {
    Env e(test::Fixture::gpu_with_audio);
    e.fx.add_vtconsole(1, "(M) frame buffer device", true);
    auto r = e.run("reset", {"01:00.0"});
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("console") != std::string::npos);
    CHECK(e.fx.kernel().log.empty());
  }
  SUBCASE("a bridge, an unknown method, no method at all") {
    Env e(parked_pair);
    auto bridge = e.run("reset", {"00:01.0"});
    REQUIRE_FALSE(bridge);
    CHECK(bridge.error().message.find("bridge") != std::string::npos);
    auto bad = e.run("reset", {"01:00.0"}, "warm");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().exit == Exit::usage);
    CHECK(e.fx.kernel().log.empty());
  }
}

TEST_CASE("independent devices are reset in parallel, once each") {
  Env e([](test::Fixture& fx) {
    fx.add_driver("vfio-pci", "vfio_pci");
    for (int i = 0; i < 4; ++i) {
      std::string port = "0000:00:0" + std::to_string(i + 2) + ".0";
      std::string gpu = "0000:0" + std::to_string(i + 2) + ":00.0";
      fx.add_bridge(port);
      fx.add_device(test::FakeDevice{.bdf = gpu, .class_code = 0x030000, .parent = port, .driver = "vfio-pci",
                                     .group = 10 + i, .reset_methods = std::vector<std::string>{"flr", "bus"}});
    }
  });
  auto r = e.run("reset", {"02:00.0", "03:00.0", "04:00.0", "05:00.0", "02:00"});
  REQUIRE(r);
  for (int i = 2; i <= 5; ++i) CHECK(e.fx.resets("0000:0" + std::to_string(i) + ":00.0") == 1);
}

TEST_CASE("dry run lists the steps and writes nothing") {
  Env e(solo);
  e.ctx.dry_run = true;
  REQUIRE(e.run("reset", {"02:00.0"}));
  CHECK(e.fx.kernel().log.empty());
  CHECK(e.out.find("write /sys/bus/pci/devices/0000:02:00.0/reset_method \"flr\"") != std::string::npos);
  CHECK(e.out.find("write /sys/bus/pci/devices/0000:02:00.0/reset \"1\"") != std::string::npos);
}

TEST_CASE("a bus reset refuses a function on the bus that is neither named nor a companion") {
  Env e(parked_pair);
  // A second device on bus 01, in another slot, on vfio-pci but not named.
  e.fx.add_device(test::FakeDevice{.bdf = "0000:01:01.0", .class_code = 0x020000, .parent = "0000:00:01.0",
                                   .driver = "vfio-pci", .group = 1});
  auto r = e.run("reset", {"01:00.0"}, "bus");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("0000:01:01.0: not named; name it too") != std::string::npos);
  CHECK(e.fx.kernel().log.empty());
}

TEST_CASE("a VM holding the VFIO group blocks a reset") {
  Env e(solo);
  e.fx.add_holder(999, "qemu-system-x86", "/dev/vfio/7");
  auto r = e.run("reset", {"02:00.0"});
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("pid 999 (qemu-system-x86)") != std::string::npos);
  CHECK(e.fx.resets("0000:02:00.0") == 0);
}

TEST_CASE("the automatic choice follows the kernel where it leaves a method out") {
  Env e(solo);
  // The kernel offers pm and bus but not flr (a no-FLR quirk) although DevCap says FLR+.
  e.fx.write_file("/sys/devices/pci0000:00/0000:00:02.0/0000:02:00.0/reset_method", "pm bus\n");
  REQUIRE(e.run("reset", {"02:00.0"}));
  CHECK(e.logged("/sys/bus/pci/devices/0000:02:00.0/reset_method", "pm"));
}

TEST_CASE("a function kept awake for the reset gets its power/control back, also after a failure") {
  Env e(solo);
  const std::string control = "/sys/bus/pci/devices/0000:02:00.0/power/control";
  e.fx.write_file("/sys/devices/pci0000:00/0000:00:02.0/0000:02:00.0/power/control", "auto\n");
  REQUIRE(e.run("reset", {"02:00.0"}));
  CHECK(e.fx.kernel().log.front() == std::pair<std::string, std::string>{control, "on"});
  CHECK(e.fx.kernel().log.back() == std::pair<std::string, std::string>{control, "auto"});
  CHECK(e.fx.read(control) == "auto");

  e.fx.kernel().log.clear();
  e.fx.fail_write("/sys/bus/pci/devices/0000:02:00.0/reset", "1", EIO);
  REQUIRE_FALSE(e.run("reset", {"02:00.0"}));
  CHECK(e.fx.kernel().log.back() == std::pair<std::string, std::string>{control, "auto"});
  CHECK(e.fx.read(control) == "auto");
}

TEST_CASE("methods from a short or all-ones config space say so instead of a verdict") {
  const std::string fiji = test::radeon_fiji_config();
  for (const auto& [raw, why] : std::vector<std::pair<std::string, std::string>>{
           {fiji.substr(0, 64), "capabilities unreadable: config space is 64 bytes (run as root)"},
           {std::string(4096, '\xff'),
            "config space reads all ones: the device is powered off or gone"}}) {
    test::Fixture fx;
    fx.add_driver("vfio-pci", "vfio_pci");
    fx.add_bridge("0000:00:01.0");
    fx.add_device(test::FakeDevice{.bdf = "0000:01:00.0",
                                   .parent = "0000:00:01.0",
                                   .driver = "vfio-pci",
                                   .group = 1,
                                   .reset_methods = std::vector<std::string>{"flr", "bus"},
                                   .caps = {.raw = raw}});
    auto all = scan_devices(fx.root()).value();
    const Device& d = all.back();
    REQUIRE(d.addr == PciAddress{0, 1, 0, 0});
    auto dm = reset::detect(fx.root(), d, load_config(fx.root(), d.addr).value(), all, true);
    for (const char* name : {"flr", "af_flr", "pm"}) {
      CAPTURE(name);
      auto m = dm.find(name);
      REQUIRE(m);
      CHECK_FALSE(m->known);
      CHECK_FALSE(m->available);
      CHECK(m->reason == why);
      CHECK_FALSE(m->disagrees());  // the kernel's flr is not contradicted by bytes pt never read
    }
    CHECK(dm.find("flr")->kernel == true);
    // What needs no config space is still decided.
    CHECK(dm.find("bus")->known);
    CHECK(dm.find("bus")->available);

    // The text marks the unknowns "?"; no verdict from missing bytes appears.
    reset::CliOptions o;
    o.command = "methods";
    o.devices = {"01:00.0"};
    Context ctx = fx.context();
    std::ostringstream s;
    REQUIRE(reset::run_in(o, ctx, s));
    const std::string text = s.str();
    CHECK(text.find("  flr              ?     yes     " + why + "\n") != std::string::npos);
    CHECK(text.find("  pm               ?     no      " + why + "\n") != std::string::npos);
    for (const char* verdict :
         {"not a PCI Express function", "no PM capability", "no Advanced Features", "FLReset-"})
      CHECK(text.find(verdict) == std::string::npos);
  }
}

namespace {

// The real Fiji (pciutils tests/cap-rebar) alone behind its root port, BAR 0
// resized to 1G beforehand; DRIVER "" leaves it unbound.
void fiji_at_1g(test::Fixture& fx, const std::string& driver, bool shrinks = true) {
  fx.add_driver("vfio-pci", "vfio_pci").add_driver("amdgpu", "amdgpu");
  fx.add_bridge("0000:00:02.0");
  std::string cfg = test::radeon_fiji_config();
  cfg[0x209] = 10;  // ReBAR control of BAR 0: 1G
  fx.add_device(test::FakeDevice{.bdf = "0000:02:00.0", .vendor = 0x1002, .device = 0x7300,
                                 .parent = "0000:00:02.0", .driver = driver, .native_driver = "amdgpu",
                                 .group = 7, .reset_methods = std::vector<std::string>{"bus"},
                                 .caps = {.raw = cfg}});
  if (shrinks) fx.shrink_rebar_on_reset("0000:02:00.0");
}

}  // namespace

TEST_CASE("a reset that shrinks a Resizable BAR: unbound, restored through resourceN_resize") {
  Env e([](test::Fixture& fx) { fiji_at_1g(fx, ""); });
  auto r = e.run("reset", {"02:00.0"}, std::nullopt, false, true);
  REQUIRE(r);
  // The simulated reset left BAR 0 at 256M; pt wrote the recorded size back.
  CHECK(e.logged("/sys/bus/pci/devices/0000:02:00.0/resource0_resize", "10"));
  auto bars = rebar::read(e.ctx.root, PciAddress{0, 2, 0, 0}).value();
  CHECK(bars.at(0).current == 10);
  auto j = nlohmann::json::parse(e.out);
  CHECK(j[0]["rebar_restored"] ==
        nlohmann::json::array({{{"bar", 0}, {"before", "1G"}, {"after_reset", "256M"}, {"restored_via", "resize"}}}));
}

TEST_CASE("a reset that shrinks a Resizable BAR of a bound function: the control register, as the kernel") {
  Env e([](test::Fixture& fx) { fiji_at_1g(fx, "vfio-pci"); });
  auto r = e.run("reset", {"02:00.0"});
  REQUIRE(r);
  // 0x0a20: size 10 (1G) over the entry's BAR index 0 and count 1.
  CHECK(e.logged("/sys/bus/pci/devices/0000:02:00.0/config", "@0x208=0x0a20"));
  CHECK_FALSE(e.logged("/sys/bus/pci/devices/0000:02:00.0/resource0_resize", "10"));
  CHECK(rebar::read(e.ctx.root, PciAddress{0, 2, 0, 0}).value().at(0).current == 10);
  CHECK(e.out.find("note: 0000:02:00.0 BAR 0 came back 256M; restored to 1G in its Resizable BAR control "
                   "register, verified\n") != std::string::npos);
}

TEST_CASE("a reset that keeps the Resizable BARs reports nothing about them") {
  Env e([](test::Fixture& fx) { fiji_at_1g(fx, "", false); });
  auto r = e.run("reset", {"02:00.0"}, std::nullopt, false, true);
  REQUIRE(r);
  auto j = nlohmann::json::parse(e.out);
  CHECK(j[0]["rebar_restored"] == nlohmann::json::array());
  CHECK_FALSE(e.logged("/sys/bus/pci/devices/0000:02:00.0/resource0_resize", "10"));
  CHECK(rebar::read(e.ctx.root, PciAddress{0, 2, 0, 0}).value().at(0).current == 10);
}
