#include "pt/power.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "bind_env.hpp"
#include "fixture.hpp"
#include "pt/bind.hpp"
#include "pt/bind_cmd.hpp"
#include "pt/journal.hpp"

using namespace pt;
using namespace std::chrono_literals;

namespace {

const char* kGpu = "0000:01:00.0";
const char* kAudio = "0000:01:00.1";

// gpu_with_audio with runtime PM attributes as a host driver leaves them:
// power/control "auto", d3cold allowed.
struct Env : test::BindEnv {
  Env() {
    for (const char* bdf : {kGpu, kAudio}) {
      fx.write_file(std::string("/sys/bus/pci/devices/") + bdf + "/power/control", "auto\n");
      fx.write_file(std::string("/sys/bus/pci/devices/") + bdf + "/power/runtime_status",
                    "active\n");
      fx.write_file(std::string("/sys/bus/pci/devices/") + bdf + "/d3cold_allowed", "1\n");
    }
  }
  void conf(const std::string& text) {
    fx.write_file("/etc/pt/pt.conf", text);
    ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
  }
  std::string attr(const char* bdf, const std::string& a) {
    return read_attr(ctx.root, std::string("/sys/bus/pci/devices/") + bdf + "/" + a).value_or("?");
  }
};

constexpr const char* kPolicy = R"([device.gpu]
bdf = "0000:01:00.0"
id = "10de:2484"
companions = ["0000:01:00.1"]
power_control = "on"
d3cold_allowed = false
)";

Device device(const Env& e, const char* bdf) {
  return read_device(e.ctx.root, *parse_sysfs_name(bdf)).value();
}

}  // namespace

TEST_CASE("read: runtime PM attributes and vfio-pci's disable_idle_d3") {
  Env e;
  auto a = power::read(e.ctx.root, device(e, kGpu));
  CHECK(a.control == "auto");
  CHECK(a.runtime_status == "active");
  CHECK(a.d3cold_allowed == true);
  CHECK_FALSE(power::vfio_disable_idle_d3(e.ctx.root).has_value());
  e.fx.write_file(power::kDisableIdleD3, "Y\n");
  CHECK(power::vfio_disable_idle_d3(e.ctx.root) == true);
  e.fx.write_file(power::kDisableIdleD3, "N\n");
  CHECK(power::vfio_disable_idle_d3(e.ctx.root) == false);
}

TEST_CASE("policy: settings in order, describe, and a table whose id is another card's") {
  PowerPolicy p{"on", false};
  CHECK(power::settings(p) ==
        std::vector<power::Setting>{{"power/control", "on"}, {"d3cold_allowed", "0"}});
  CHECK(power::describe(p) == "power_control = \"on\", d3cold_allowed = false");
  CHECK(power::settings(PowerPolicy{std::nullopt, true}) ==
        std::vector<power::Setting>{{"d3cold_allowed", "1"}});

  Env e;
  auto conf = parse_conf(kPolicy, "/etc/pt/pt.conf").value();
  auto gpu = power::policy_for(conf, device(e, kGpu));
  REQUIRE(gpu);
  CHECK(*gpu == std::optional<PowerPolicy>(p));
  // Companions share the table's policy; the ID guards the table's bdf only.
  CHECK(power::policy_for(conf, device(e, kAudio)).value() == std::optional<PowerPolicy>(p));
  auto wrong = parse_conf(R"([device.gpu]
bdf = "0000:01:00.0"
id = "1002:73bf"
power_control = "on"
)",
                          "/etc/pt/pt.conf")
                   .value();
  auto r = power::policy_for(wrong, device(e, kGpu));
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().message ==
        "[device.gpu] names 0000:01:00.0 with id 1002:73bf, but that function is 10de:2484; its "
        "power policy is not applied. Fix bdf or id in pt.conf");
}

TEST_CASE(
    "detach applies the policy after vfio-pci binds, journals the old values; attach restores") {
  Env e;
  e.conf(kPolicy);
  auto r = e.run("detach", {"01:00"});
  REQUIRE(r);
  CHECK(*r == Exit::ok);
  for (const char* bdf : {kGpu, kAudio}) {
    CHECK(e.fx.driver_of(bdf) == "vfio-pci");
    // vfio-pci's probe set "auto"; the policy's write came after it.
    CHECK(e.attr(bdf, "power/control") == "on");
    CHECK(e.attr(bdf, "d3cold_allowed") == "0");
    CHECK(e.journal().devices.at(bdf).power ==
          std::map<std::string, std::string>{{"power/control", "auto"}, {"d3cold_allowed", "1"}});
  }
  // Each setting is written after the function's drivers_probe.
  const auto& log = e.fx.kernel().log;
  auto at = [&](const std::string& path, const std::string& value) {
    return std::find(log.begin(), log.end(), std::pair{path, value}) - log.begin();
  };
  CHECK(at("/sys/bus/pci/drivers_probe", kGpu) <
        at("/sys/bus/pci/devices/0000:01:00.0/power/control", "on"));
  CHECK(at("/sys/bus/pci/devices/0000:01:00.0/power/control", "on") <
        at("/sys/bus/pci/devices/0000:01:00.0/d3cold_allowed", "0"));
  CHECK(e.out.find("note: 0000:01:00.0: power/control = on, d3cold_allowed = 0 (pt.conf power "
                   "policy, read back)") != std::string::npos);

  // vfio-pci's release forbids runtime PM ("on"); attach writes back "auto".
  r = e.run("attach", {"01:00"});
  REQUIRE(r);
  for (const char* bdf : {kGpu, kAudio}) {
    CHECK(e.fx.driver_of(bdf) != "vfio-pci");
    CHECK(e.attr(bdf, "power/control") == "auto");
    CHECK(e.attr(bdf, "d3cold_allowed") == "1");
  }
  CHECK(e.journal().devices.empty());
  CHECK(e.out.find("note: 0000:01:00.0: d3cold_allowed = 1, power/control = auto (restored, read "
                   "back)") != std::string::npos);
}

TEST_CASE("dry run shows the power writes with the values they replace and writes nothing") {
  Env e;
  e.conf(kPolicy);
  e.ctx.dry_run = true;
  auto before = e.fx.snapshot();
  REQUIRE(e.run("detach", {"01:00.0"}));
  CHECK(e.fx.snapshot() == before);
  CHECK(e.fx.kernel().log.empty());
  CHECK(e.out.find("    write /sys/bus/pci/devices/0000:01:00.0/power/control \"on\" (now "
                   "\"auto\"), then read it back\n"
                   "    write /sys/bus/pci/devices/0000:01:00.0/d3cold_allowed \"0\" (now \"1\"), "
                   "then read it back\n") != std::string::npos);
  bind::Options o;
  o.common.json = true;
  REQUIRE(e.run("detach", {"01:00.0"}, o));
  auto j = nlohmann::json::parse(e.out);
  CHECK(j["functions"][1]["power_writes"] ==
        nlohmann::json::parse(R"([{"path":"/sys/bus/pci/devices/0000:01:00.0/power/control",
          "value":"on","was":"auto"},{"path":"/sys/bus/pci/devices/0000:01:00.0/d3cold_allowed",
          "value":"0","was":"1"}])"));
}

TEST_CASE("a setting the kernel does not take fails the detach and rolls everything back") {
  Env e;
  e.conf(kPolicy);
  e.fx.ignore_writes("0000:01:00.0/d3cold_allowed");
  auto before = e.fx.snapshot();
  auto r = e.run("detach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::rolled_back);
  CHECK(r.error().subject == "/sys/bus/pci/devices/0000:01:00.0/d3cold_allowed");
  CHECK(r.error().message.starts_with(
      "wrote \"0\" but the kernel reads back \"1\"; the kernel did not take the power setting"));
  CHECK(r.error().message.find("Rolled back: 0000:01:00.0 (back on nvidia), 0000:01:00.1 (back "
                               "on snd_hda_intel)") != std::string::npos);
  // Drivers, overrides and power/control are as they were; the journal is empty.
  CHECK(e.fx.snapshot() == before);
  CHECK(e.attr(kGpu, "power/control") == "auto");
  CHECK(e.attr(kAudio, "power/control") == "auto");
  CHECK(e.journal().devices.empty());
}

TEST_CASE("an attach that fails after restoring power puts the policy back on rollback") {
  Env e;
  e.conf(kPolicy);
  REQUIRE(e.run("detach", {"01:00"}));
  // The GPU attaches first; the audio's bind fails after it.
  e.fx.fail_write("/sys/bus/pci/drivers_probe", kAudio, EIO);
  auto r = e.run("attach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::rolled_back);
  for (const char* bdf : {kGpu, kAudio}) {
    CHECK(e.fx.driver_of(bdf) == "vfio-pci");
    CHECK(e.attr(bdf, "power/control") == "on");
    CHECK(e.attr(bdf, "d3cold_allowed") == "0");
    // The journal still knows what to restore.
    CHECK(e.journal().devices.at(bdf).power.at("power/control") == "auto");
  }
}

TEST_CASE("an interrupted detach is undone with its power settings by the next run") {
  Env e;
  e.conf(kPolicy);
  REQUIRE(e.run("detach", {"01:00"}));
  // As a run killed after its last write leaves it: the job still journaled.
  auto j = e.journal();
  j.job = Job{"detach", 999999, 1700000000, {kAudio, kGpu}, 0, {}, {}};
  REQUIRE(save_journal(e.ctx.root, j));
  // Another device's detach first undoes the job, power included.
  e.fx.add_driver("e1000e");
  e.fx.add_device(test::FakeDevice{
      .bdf = "0000:00:06.0", .class_code = 0x020000, .driver = "e1000e", .group = 6});
  REQUIRE(e.run("detach", {"00:06.0"}));
  CHECK(e.out.find("undid an interrupted detach of 2 function(s)") != std::string::npos);
  for (const char* bdf : {kGpu, kAudio}) {
    CHECK(e.fx.driver_of(bdf) != "vfio-pci");
    CHECK(e.attr(bdf, "power/control") == "auto");
    CHECK(e.attr(bdf, "d3cold_allowed") == "1");
  }
}

TEST_CASE("a function pt did not take off a host driver gets no policy, with a note") {
  Env e;
  e.conf(kPolicy);
  // Parked on vfio-pci by someone else.
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", kGpu, WriteKind::blocking));
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/vfio-pci/bind", kGpu, WriteKind::blocking));
  e.fx.kernel().log.clear();
  REQUIRE(e.run("detach", {"01:00.0"}));
  CHECK(e.out.find("note: 0000:01:00.0: pt.conf's power_control = \"on\", d3cold_allowed = false "
                   "is not applied: pt did not take it off a host driver") != std::string::npos);
  CHECK(e.attr(kGpu, "d3cold_allowed") == "1");
}

TEST_CASE("bad power keys in pt.conf: exit 2 naming the key, nothing written") {
  Env e;
  auto before = e.fx.snapshot();
  e.conf("[device.gpu]\nbdf = \"0000:01:00.0\"\npower_control = \"off\"\n");
  before = e.fx.snapshot();
  auto r = e.run("detach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().subject == "/etc/pt/pt.conf:3:17");
  CHECK(r.error().message ==
        "device.gpu.power_control must be \"on\" (keep the function in D0 while detached) or "
        "\"auto\" (let runtime PM suspend it)");
  CHECK(e.fx.snapshot() == before);
  CHECK(e.fx.kernel().log.empty());

  e.conf("[device.gpu]\nbdf = \"0000:01:00.0\"\nd3cold_allowed = \"no\"\n");
  r = e.run("detach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().message == "device.gpu.d3cold_allowed must be true or false");
  CHECK(e.fx.kernel().log.empty());
}

TEST_CASE("a kernel without the attribute: the detach is refused before any write") {
  Env e;
  e.conf(kPolicy);
  ::unlink((e.fx.dir() + "/sys/bus/pci/devices/" + kAudio + "/d3cold_allowed").c_str());
  auto before = e.fx.snapshot();
  auto r = e.run("detach", {"01:00"});
  REQUIRE_FALSE(r);
  CHECK(r.error().subject == "/sys/bus/pci/devices/0000:01:00.1/d3cold_allowed");
  CHECK(
      r.error().message.starts_with("pt.conf sets d3cold_allowed for 0000:01:00.1, but the "
                                    "kernel has no such attribute"));
  CHECK(e.fx.snapshot() == before);
  CHECK(e.fx.kernel().log.empty());
}

// ---- stuck in D3

namespace {

std::vector<reset::MethodStatus> methods_of(const Env& e, const Device& d) {
  auto all = scan_devices(e.ctx.root).value();
  auto cfg = load_config(e.ctx.root, d.addr, 256).value();
  return reset::detect(e.ctx.root, d, cfg, all, true).methods;
}

}  // namespace

TEST_CASE("stuck: all ones behind a bridge of its own names the bus reset and the slot's power") {
  Env e;
  e.fx.add_bridge("0000:00:03.0");
  e.fx.add_device(test::FakeDevice{.bdf = "0000:03:00.0",
                                   .parent = "0000:00:03.0",
                                   .driver = "vfio-pci",
                                   .group = 3,
                                   .caps = {.raw = std::string(4096, '\xff')}});
  auto d = device(e, "0000:03:00.0");
  auto cfg = load_config(e.ctx.root, d.addr, 256).value();
  auto advice =
      power::stuck_advice(d, cfg, {"auto", "suspended", true}, "D3cold", methods_of(e, d));
  REQUIRE(advice);
  CHECK(*advice ==
        "config space reads all ones (vendor 0xffff): 0000:03:00.0 is in D3cold, powered off or "
        "gone, and FLR and PM reset cannot reach it; runtime PM has it suspended: write \"on\" to "
        "/sys/bus/pci/devices/0000:03:00.0/power/control to wake it first; try 'pt-reset --method "
        "bus 0000:03:00.0' (secondary bus reset through 0000:00:03.0); 'pt-reset --method rescan "
        "0000:03:00.0' finds it again only if its link comes back");

  // A hotplug slot: pt-reset's slot method, and its power file.
  e.fx.write_file("/sys/bus/pci/slots/5/address", "0000:03:00\n");
  advice = power::stuck_advice(d, cfg, {"on", "active", true}, "D0", methods_of(e, d));
  REQUIRE(advice);
  CHECK(advice->find("try 'pt-reset --method bus 0000:03:00.0' (secondary bus reset through "
                     "0000:00:03.0); also possible: slot; the slot's power file power-cycles it: "
                     "write 0, then 1, to /sys/bus/pci/slots/5/power") != std::string::npos);
  CHECK(advice->find("runtime PM") == std::string::npos);
}

TEST_CASE("stuck: all ones on a shared bus without a slot has no reset from outside") {
  Env e;
  e.fx.write_file(std::string("/sys/bus/pci/devices/") + kAudio + "/config",
                  std::string(4096, '\xff'));
  auto d = device(e, kAudio);
  auto cfg = load_config(e.ctx.root, d.addr, 256).value();
  auto advice = power::stuck_advice(d, cfg, power::read(e.ctx.root, d), "D0", methods_of(e, d));
  REQUIRE(advice);
  CHECK(advice->ends_with(
      "cannot reach it; no reset reaches it from outside (the bus below 0000:00:01.0 is shared "
      "and there is no hotplug slot); 'pt-reset --method rescan 0000:01:00.1' finds it again only "
      "if its link comes back; otherwise power the machine off and on"));
}

TEST_CASE(
    "stuck: D3hot in PMCSR while the kernel has D0 names FLR first; an idle D3hot is not stuck") {
  Env e;
  {
    // PMCSR (PM capability at 0x40, + 4) to D3hot, in the binary file in place.
    std::fstream f(e.fx.dir() + "/sys/bus/pci/devices/" + kGpu + "/config",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0x44);
    f.put('\x03');
    REQUIRE(f);
  }
  auto d = device(e, kGpu);
  auto cfg = load_config(e.ctx.root, d.addr, 256).value();
  REQUIRE(cfg.power_state() == 3);
  const auto methods = methods_of(e, d);
  auto advice = power::stuck_advice(d, cfg, power::read(e.ctx.root, d), "D0", methods);
  REQUIRE(advice);
  CHECK(
      advice->starts_with("the PM capability reports D3hot while the kernel has 0000:01:00.0 in "
                          "D0: the function will not answer memory or I/O; try 'pt-reset "
                          "--method flr 0000:01:00.0' (PCIe DevCap: FLReset+)"));
  // vfio-pci idling it in D3hot: the kernel set it there.
  CHECK_FALSE(power::stuck_advice(d, cfg, power::read(e.ctx.root, d), "D3hot", methods));
  // Without power_state (older kernels): a host driver's active function stands for D0.
  CHECK(power::stuck_advice(d, cfg, {"on", "active", true}, "", methods));
  CHECK_FALSE(power::stuck_advice(d, cfg, {"auto", "suspended", true}, "", methods));
  // D0 is never stuck.
  auto healthy = load_config(e.ctx.root, device(e, kAudio).addr, 256).value();
  CHECK_FALSE(power::stuck_advice(device(e, kAudio), healthy, {}, "D0", methods));
}

TEST_CASE("pt-bind show: runtime PM in text and JSON, disable_idle_d3 only on vfio-pci") {
  Env e;
  e.fx.write_file(power::kDisableIdleD3, "N\n");
  bind::Options o;
  o.common.json = true;
  REQUIRE(e.run("show", {"01:00.0"}, o));
  auto j = nlohmann::json::parse(e.out);
  CHECK(j["power"] == nlohmann::json::parse(R"({"control":"auto","runtime_status":"active",
    "d3cold_allowed":true,"vfio_disable_idle_d3":null,"stuck":null})"));
  REQUIRE(e.run("detach", {"01:00"}));
  REQUIRE(e.run("show", {"01:00.0"}));
  CHECK(e.out.find("  runtime pm:       control auto, active; d3cold_allowed 1; vfio-pci "
                   "disable_idle_d3 0\n") != std::string::npos);
  e.fx.write_file(std::string("/sys/bus/pci/devices/") + kGpu + "/config",
                  std::string(4096, '\xff'));
  REQUIRE(e.run("show", {"01:00.0"}, o));
  j = nlohmann::json::parse(e.out);
  CHECK(j["power"]["vfio_disable_idle_d3"] == false);
  CHECK(j["power"]["stuck"].get<std::string>().starts_with(
      "config space reads all ones (vendor 0xffff): 0000:01:00.0 is in D3cold"));
}
