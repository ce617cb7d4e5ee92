// The state engine on fixture trees: every field read from where the kernel
// keeps it, nothing written, diffs field by field, snapshot files checked.
#include "pt/state.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fake_arbiter.hpp"
#include "fixture.hpp"
#include "pt/bind.hpp"
#include "pt/journal.hpp"
#include "pt/pci_config.hpp"

using namespace pt;
using namespace std::chrono_literals;
using nlohmann::json;
using pt::test::FakeArbiter;
using pt::test::Fixture;

namespace {

struct Env {
  Fixture fx;
  std::optional<FakeArbiter> arb;
  std::unique_ptr<drm::Backend> backend;
  explicit Env(void (*shape)(Fixture&) = Fixture::gpu_with_display) {
    shape(fx);
    fx.add_fbcon(true);
    arb.emplace(fx);
    backend = drm::make_root_backend(fx.root());
  }
  state::Snapshot collect(const std::string& dev = "01:00") {
    auto s = state::collect(fx.root(), dev, state::Sources{&*arb, backend.get()});
    REQUIRE_MESSAGE(s, (s ? "" : s.error().describe()));
    return *s;
  }
  // Patches config space bytes of BDF (the file the kernel serves), in
  // place: the file is binary, its trailing zeros included.
  void poke(const std::string& bdf, size_t off, std::initializer_list<uint8_t> bytes) {
    std::fstream f(fx.dir() + "/sys/bus/pci/devices/" + bdf + "/config",
                   std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(f);
    f.seekp(std::streamoff(off));
    for (uint8_t b : bytes) f.put(char(b));
    REQUIRE(f);
  }
};

const state::Function& fn(const state::Snapshot& s, const std::string& bdf) {
  for (const auto& f : s.functions)
    if (f.bdf == bdf) return f;
  FAIL("no function " << bdf);
  throw;
}

bool has_change(const std::vector<state::Change>& cs, const std::string& line) {
  for (const auto& c : cs)
    if (c.describe() == line) return true;
  return false;
}

std::string lines(const std::vector<state::Change>& cs) {
  std::string t;
  for (const auto& c : cs) t += c.describe() + "\n";
  return t;
}

std::string write_temp(const std::string& content) {
  char tmpl[] = "/tmp/pt-snapshot-XXXXXX";
  int fd = ::mkstemp(tmpl);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, content.data(), content.size()) == ssize_t(content.size()));
  ::close(fd);
  return tmpl;
}

}  // namespace

TEST_CASE("collect reads each field of the GPU and its audio function") {
  Env e;
  const auto s = e.collect("01:00.1");  // a function names its slot
  REQUIRE(s.functions.size() == 2);
  CHECK(s.device == "01:00.1");
  const auto& g = fn(s, "0000:01:00.0");
  CHECK(g.in_slot);
  CHECK(g.vendor == "10de");
  CHECK(g.device_id == "2484");
  // Names from the tree's /usr/share/misc/pci.ids (the fixture's excerpt).
  CHECK(g.vendor_name == "NVIDIA Corporation");
  CHECK(g.device_name == "GA104 [GeForce RTX 3070]");
  CHECK(g.class_id == "0300");
  CHECK(g.class_name == "VGA compatible controller");
  CHECK(g.driver == "nvidia");
  CHECK(g.driver_override == "");
  CHECK(g.iommu_group == 1);
  CHECK(g.vfio_node == "");
  CHECK(g.boot_vga == true);
  CHECK(g.power_state == "D0");
  CHECK(g.pm_state == "D0");
  REQUIRE(g.command);
  CHECK(*g.command == 0x0007);
  CHECK(state::command_bits(*g.command) == std::vector<std::string>{"io", "mem", "master"});
  REQUIRE(g.kernel_reset_methods);
  CHECK(*g.kernel_reset_methods == std::vector<std::string>{"flr", "bus"});
  CHECK(std::find(g.reset_methods.begin(), g.reset_methods.end(), "flr") != g.reset_methods.end());
  REQUIRE(g.vga);
  CHECK(g.vga->decodes == "io+mem");
  CHECK(g.vga->owns == "io+mem");
  CHECK(g.vga->locks == "none");
  CHECK(g.framebuffers.size() == 1);
  CHECK(g.framebuffers[0].starts_with("fb0 "));
  REQUIRE(g.drm);
  CHECK(g.drm->card == "card0");
  CHECK(g.drm->node == "/dev/dri/card0");
  CHECK(g.drm->render == "/dev/dri/renderD128");
  REQUIRE(g.drm->connectors.size() == 1);
  CHECK(g.drm->connectors[0].name == "HDMI-A-1");
  CHECK(g.drm->connectors[0].status == "connected");
  CHECK(g.drm->connectors[0].modes == 5);
  CHECK(g.holders.empty());
  CHECK_FALSE(g.journal.has_value());

  const auto& a = fn(s, "0000:01:00.1");
  CHECK(a.vendor_name == "NVIDIA Corporation");
  CHECK(a.device_name == "GA104 High Definition Audio Controller");
  CHECK(a.class_id == "0403");
  CHECK(a.class_name == "Audio device");
  CHECK(a.driver == "snd_hda_intel");
  CHECK_FALSE(a.vga.has_value());
  CHECK(a.vga_error == "");  // not a VGA device: no arbiter to ask
  CHECK_FALSE(a.drm.has_value());
  REQUIRE(s.vtconsoles.size() >= 1);
  bool fbcon = false;
  for (const auto& v : s.vtconsoles) fbcon |= v.name == "frame buffer device" && v.bound;
  CHECK(fbcon);
  CHECK(s.active_vt == "tty1");
  CHECK(s.journal_job == "");
  CHECK(s.journal_error == "");
}

TEST_CASE("collect writes nothing, neither to sysfs nor to the arbiter") {
  Env e;
  const auto before = e.fx.snapshot();
  e.collect();
  CHECK(e.fx.snapshot() == before);
  CHECK(e.fx.kernel().log.empty());
  for (const auto& w : e.arb->log) CHECK(w.starts_with("target "));
}

TEST_CASE("link, AER counters and runtime PM come from config space and sysfs") {
  Env e;
  // LnkCap 8 GT/s x16, LnkSta 2.5 GT/s x4 (a link trained down).
  e.poke("0000:01:00.0", 0x5c, {0x03, 0x01, 0x00, 0x00});
  e.poke("0000:01:00.0", 0x62, {0x41, 0x00});
  const std::string dev = "/sys/bus/pci/devices/0000:01:00.0/";
  e.fx.write_file(dev + "aer_dev_correctable", "RxErr 2\nBadTLP 1\nTOTAL_ERR_COR 3\n");
  e.fx.write_file(dev + "aer_dev_nonfatal", "Undefined 0\nTOTAL_ERR_NONFATAL 0\n");
  e.fx.write_file(dev + "aer_dev_fatal", "TOTAL_ERR_FATAL 1\n");
  e.fx.write_file(dev + "power/runtime_status", "suspended\n");
  e.fx.write_file(dev + "power/control", "auto\n");
  const auto g = fn(e.collect(), "0000:01:00.0");
  REQUIRE(g.link);
  CHECK(g.link->speed == "2.5 GT/s");
  CHECK(g.link->width == 4);
  CHECK(g.link->max_speed == "8.0 GT/s");
  CHECK(g.link->max_width == 16);
  REQUIRE(g.aer);
  CHECK(g.aer->correctable == 3);
  CHECK(g.aer->nonfatal == 0);
  CHECK(g.aer->fatal == 1);
  CHECK(g.runtime_status == "suspended");
  CHECK(g.runtime_control == "auto");
  // No AER files on the audio function: no counters, not zeros.
  CHECK_FALSE(fn(e.collect(), "0000:01:00.1").aer.has_value());
}

TEST_CASE("d3cold_allowed and vfio-pci's disable_idle_d3: JSON, diff, an older snapshot without them") {
  Env e;
  const std::string dev = "/sys/bus/pci/devices/0000:01:00.0/";
  e.fx.write_file(dev + "d3cold_allowed", "1\n");
  e.fx.write_file("/sys/module/vfio_pci/parameters/disable_idle_d3", "N\n");
  const auto a = e.collect();
  CHECK(fn(a, "0000:01:00.0").d3cold_allowed == true);
  // Only a function on vfio-pci gets the parameter.
  CHECK_FALSE(fn(a, "0000:01:00.0").vfio_disable_idle_d3.has_value());
  CHECK_FALSE(fn(a, "0000:01:00.1").d3cold_allowed.has_value());
  Context ctx = e.fx.context();
  REQUIRE(ctx.writer->write(dev + "driver_override", "vfio-pci", WriteKind::attribute));
  REQUIRE(
      ctx.writer->write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0", WriteKind::blocking));
  REQUIRE(ctx.writer->write("/sys/bus/pci/drivers_probe", "0000:01:00.0", WriteKind::blocking));
  e.fx.write_file(dev + "d3cold_allowed", "0\n");
  const auto b = e.collect();
  CHECK(fn(b, "0000:01:00.0").d3cold_allowed == false);
  CHECK(fn(b, "0000:01:00.0").vfio_disable_idle_d3 == false);
  json doc = state::to_json(b);
  const json& p = doc["functions"][0]["power"];
  CHECK(p["d3cold_allowed"] == false);
  CHECK(p["vfio_disable_idle_d3"] == false);
  CHECK(doc["functions"][1]["power"]["d3cold_allowed"].is_null());
  doc["format"] = state::kFormat;
  doc = json::parse(doc.dump());  // as a file reads back
  auto back = state::from_json(doc, "f");
  REQUIRE_MESSAGE(back, (back ? "" : back.error().describe()));
  CHECK(*back == b);
  std::vector<std::string> fields;
  for (const auto& c : state::diff(a, b))
    if (c.field.starts_with("power.")) fields.push_back(c.describe());
  CHECK(fields == std::vector<std::string>{"0000:01:00.0 power.d3cold_allowed: true -> false",
                                           "0000:01:00.0 power.vfio_disable_idle_d3: (none) -> false"});
  // A snapshot written before these fields reads as unknown.
  for (auto& f : doc["functions"]) {
    f["power"].erase("d3cold_allowed");
    f["power"].erase("vfio_disable_idle_d3");
  }
  auto old = state::from_json(doc, "f");
  REQUIRE_MESSAGE(old, (old ? "" : old.error().describe()));
  CHECK_FALSE(fn(*old, "0000:01:00.0").d3cold_allowed.has_value());
  doc["functions"][0]["power"]["d3cold_allowed"] = "yes";
  CHECK_FALSE(state::from_json(doc, "f"));
}

TEST_CASE("warnings: PMCSR in D3hot while the kernel has D0 is stuck-d3, naming the reset") {
  Env e;
  e.poke("0000:01:00.0", 0x44, {0x03});
  const auto s = e.collect();
  REQUIRE(s.warnings.size() == 1);
  CHECK(s.warnings[0].kind == "stuck-d3");
  CHECK(s.warnings[0].message.starts_with(
      "the PM capability reports D3hot while the kernel has 0000:01:00.0 in D0"));
  CHECK(s.warnings[0].message.find("try 'pt-reset --method flr 0000:01:00.0'") != std::string::npos);
  CHECK(fn(s, "0000:01:00.0").pm_state == "D3hot");
}

TEST_CASE("a function on vfio-pci: override, /dev/vfio node, no DRM card; diff names each field") {
  Env e;
  const auto before = e.collect();
  Context ctx = e.fx.context();
  const std::string dev = "/sys/bus/pci/devices/0000:01:00.0/";
  REQUIRE(ctx.writer->write(dev + "driver_override", "vfio-pci", WriteKind::attribute));
  REQUIRE(
      ctx.writer->write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0", WriteKind::blocking));
  REQUIRE(ctx.writer->write("/sys/bus/pci/drivers_probe", "0000:01:00.0", WriteKind::blocking));
  REQUIRE(e.fx.driver_of("0000:01:00.0") == "vfio-pci");
  e.arb->card("0000:01:00.0").decodes = 0;
  const auto after = e.collect();
  const auto& g = fn(after, "0000:01:00.0");
  CHECK(g.driver == "vfio-pci");
  CHECK(g.driver_override == "vfio-pci");
  CHECK(g.vfio_node == "/dev/vfio/1");
  CHECK_FALSE(g.drm.has_value());
  REQUIRE(g.vga);
  CHECK(g.vga->decodes == "none");

  const auto changes = state::diff(before, after);
  INFO(lines(changes));
  CHECK(has_change(changes, "0000:01:00.0 driver: nvidia -> vfio-pci"));
  CHECK(has_change(changes, "0000:01:00.0 driver_override: (none) -> vfio-pci"));
  CHECK(has_change(changes, "0000:01:00.0 vfio_node: (none) -> /dev/vfio/1"));
  CHECK(has_change(changes, "0000:01:00.0 vga.decodes: io+mem -> none"));
  // A part that went is one line, not one per field inside it.
  CHECK(has_change(changes, "0000:01:00.0 drm: present -> (none)"));
  for (const auto& c : changes) CHECK_FALSE(c.field.starts_with("drm."));
  // The audio function did not move; its group's /dev/vfio node appeared.
  for (const auto& c : changes)
    if (c.function == "0000:01:00.1")
      CHECK(c.describe() == "0000:01:00.1 vfio_node: (none) -> /dev/vfio/1");
  CHECK(state::diff(after, before).size() == changes.size());
  CHECK(state::diff(before, before).empty());
}

TEST_CASE("refresh reads again what a step changes, and only that") {
  Env e;
  e.fx.add_holder(4242, "Xorg", "/dev/dri/card0");
  const auto full = e.collect();
  const auto base = state::volatile_part(full);
  // What refresh leaves out is gone from the base, the rest is the collect's.
  const auto& bg = fn(base, "0000:01:00.0");
  CHECK(bg.holders.empty());
  CHECK_FALSE(bg.drm);
  CHECK(bg.reset_methods.empty());
  CHECK_FALSE(bg.link);
  CHECK(bg.driver == fn(full, "0000:01:00.0").driver);
  CHECK(bg.vga == fn(full, "0000:01:00.0").vga);
  CHECK(base.vtconsoles == full.vtconsoles);

  // A collect of the steps' depth reads the same, less the names, which
  // come from pci.ids.
  const state::Sources src{&*e.arb, e.backend.get()};
  auto light = state::collect(e.fx.root(), "01:00", src, state::Depth::steps);
  REQUIRE(light);
  auto unnamed = [](state::Snapshot s) {
    for (auto& f : s.functions) f.class_name.clear(), f.vendor_name.reset(), f.device_name.reset();
    return s;
  };
  INFO(lines(state::diff(unnamed(base), unnamed(*light))));
  CHECK(unnamed(state::volatile_part(*light)) == unnamed(base));

  // Nothing changed: a refresh equals the base, field by field.
  auto same = state::refresh(e.fx.root(), base, src);
  REQUIRE(same);
  INFO(lines(state::diff(base, *same)));
  CHECK(state::diff(base, *same).empty());
  CHECK(*same == base);

  // A step's changes show, and nothing refresh does not read.
  Context ctx = e.fx.context();
  REQUIRE(ctx.writer->write("/sys/bus/pci/devices/0000:01:00.0/driver_override", "vfio-pci",
                            WriteKind::attribute));
  REQUIRE(
      ctx.writer->write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0", WriteKind::blocking));
  REQUIRE(ctx.writer->write("/sys/bus/pci/drivers_probe", "0000:01:00.0", WriteKind::blocking));
  e.arb->card("0000:01:00.0").decodes = 0;
  const auto after = state::refresh(e.fx.root(), base, src);
  REQUIRE(after);
  const auto cs = state::diff(base, *after);
  INFO(lines(cs));
  CHECK(has_change(cs, "0000:01:00.0 driver: nvidia -> vfio-pci"));
  CHECK(has_change(cs, "0000:01:00.0 driver_override: (none) -> vfio-pci"));
  CHECK(has_change(cs, "0000:01:00.0 vga.decodes: io+mem -> none"));
  for (const auto& c : cs) {
    CHECK_FALSE(c.field.starts_with("drm"));
    CHECK_FALSE(c.field.starts_with("holders"));
  }
  // The function list is the base's: refresh does not rescan the slot.
  REQUIRE(after->functions.size() == base.functions.size());
  for (size_t i = 0; i < base.functions.size(); ++i)
    CHECK(after->functions[i].bdf == base.functions[i].bdf);
}

TEST_CASE("the IOMMU group's other members come after the slot, marked") {
  Env e(Fixture::group_with_unrelated);
  const auto s = e.collect("0000:01:00.0");
  std::vector<std::string> bdfs;
  for (const auto& f : s.functions) bdfs.push_back(f.bdf);
  CHECK(bdfs ==
        std::vector<std::string>{"0000:01:00.0", "0000:01:00.1", "0000:01:00.2", "0000:02:00.0"});
  CHECK(fn(s, "0000:01:00.2").in_slot);
  CHECK_FALSE(fn(s, "0000:02:00.0").in_slot);
  // The group's other members are named too; pci.ids lists no 10de:1ada.
  CHECK(fn(s, "0000:01:00.2").vendor_name == "NVIDIA Corporation");
  CHECK_FALSE(fn(s, "0000:01:00.2").device_name.has_value());
  CHECK(fn(s, "0000:02:00.0").vendor_name == "Intel Corporation");
  CHECK(fn(s, "0000:02:00.0").device_name == "82574L Gigabit Network Connection");
}

TEST_CASE("without the tree's pci.ids the names are null, in the snapshot's JSON too") {
  Env e;
  REQUIRE(::unlink((e.fx.dir() + "/usr/share/misc/pci.ids").c_str()) == 0);
  const auto s = e.collect("01:00.0");
  const auto& g = fn(s, "0000:01:00.0");
  CHECK_FALSE(g.vendor_name.has_value());
  CHECK_FALSE(g.device_name.has_value());
  CHECK(g.class_name == "");
  const auto j = state::to_json(s);
  CHECK(j["functions"][0]["vendor_name"].is_null());
  CHECK(j["functions"][0]["device_name"].is_null());
  CHECK(j["functions"][0]["class_name"].is_null());
}

TEST_CASE("holders, the journal's records and a job in flight") {
  Env e;
  e.fx.add_holder(4242, "Xorg", "/dev/dri/card0");
  Journal j;
  j.devices["0000:01:00.1"] = JournalEntry{.driver = "snd_hda_intel", .to = "vfio-pci"};
  j.vga["0000:01:00.0"] = VgaRecord{.decodes = "none", .owns = "io+mem"};
  j.consoles["0000:01:00.0"] = {ConsoleChange{.kind = "vtconsole", .name = "frame buffer device"}};
  j.job = Job{.op = "detach", .pid = 1};
  REQUIRE(check_state_dir(e.fx.root(), true));
  REQUIRE(save_journal(e.fx.root(), j));
  const auto s = e.collect();
  const auto& g = fn(s, "0000:01:00.0");
  REQUIRE(g.holders.size() == 1);
  CHECK(g.holders[0].pid == 4242);
  CHECK(g.holders[0].command == "Xorg");
  CHECK(g.holders[0].node == "/dev/dri/card0");
  REQUIRE(g.journal_vga);
  CHECK(g.journal_vga->decodes == "none");
  CHECK(g.journal_consoles == std::vector<std::string>{"vtconsole frame buffer device"});
  const auto& a = fn(s, "0000:01:00.1");
  REQUIRE(a.journal);
  CHECK(a.journal->from_driver == "snd_hda_intel");
  CHECK(a.journal->to == "vfio-pci");
  CHECK(s.journal_job == "detach");

  // The same holder under a new pid is no change; a new holder is.
  auto moved = s;
  for (auto& f : moved.functions)
    if (f.bdf == "0000:01:00.0") f.holders[0].pid = 5151;
  CHECK(state::diff(s, moved).empty());
  for (auto& f : moved.functions)
    if (f.bdf == "0000:01:00.0") f.holders.push_back({77, "nvidia-smi", "/dev/nvidia0"});
  const auto cs = state::diff(s, moved);
  INFO(lines(cs));
  CHECK(has_change(cs, "0000:01:00.0 holders[nvidia-smi /dev/nvidia0]: (none) -> present"));

  // The first holder of a function that had none is one change, and so is
  // the last one going: not also the empty list, "holders: (none) -> (none)".
  auto first = s;
  for (auto& f : first.functions)
    if (f.bdf == "0000:01:00.1") f.holders.push_back({88, "qemu-system-x86", "/dev/vfio/4"});
  const auto added = state::diff(s, first);
  INFO(lines(added));
  REQUIRE(added.size() == 1);
  CHECK(added[0].describe() ==
        "0000:01:00.1 holders[qemu-system-x86 /dev/vfio/4]: (none) -> present");
  const auto gone = state::diff(first, s);
  INFO(lines(gone));
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].describe() ==
        "0000:01:00.1 holders[qemu-system-x86 /dev/vfio/4]: present -> (none)");
}

TEST_CASE("a stuck DRM read is reported as stuck, not waited on") {
  struct Hung final : drm::Backend {
    Result<drm::Kms> read(const drm::Card&) override {
      std::this_thread::sleep_for(30s);
      return drm::Kms{};
    }
    std::vector<std::pair<std::string, PciAddress>> devices() override { return {}; }
    std::optional<int> console_fb(int) override { return std::nullopt; }
  };
  Env e;
  // The card node must exist for a KMS read to be tried.
  e.fx.write_file("/dev/dri/card0", "");
  auto bounded = drm::make_bounded_backend(std::make_unique<Hung>(), e.fx.root(), 300ms);
  const auto start = std::chrono::steady_clock::now();
  auto s = state::collect(e.fx.root(), "01:00.0", state::Sources{&*e.arb, bounded.get()});
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  REQUIRE(s);
  const auto& g = fn(*s, "0000:01:00.0");
  REQUIRE(g.drm);
  CHECK(g.drm->kms == "stuck");
  CHECK(g.drm->kms_error.find("/dev/dri/card0") != std::string::npos);
}

TEST_CASE("no arbiter: the VGA fields say why") {
  Env e;
  e.arb->unavailable = Error{ENOENT, "/dev/vga_arbiter", "no VGA arbiter", Exit::failed};
  const auto g = fn(e.collect(), "0000:01:00.0");
  CHECK_FALSE(g.vga.has_value());
  CHECK(g.vga_error.find("/dev/vga_arbiter") != std::string::npos);
}

TEST_CASE("a device that is not there is an error naming it") {
  Env e;
  auto s = state::collect(e.fx.root(), "05:00", state::Sources{&*e.arb, e.backend.get()});
  REQUIRE_FALSE(s);
  CHECK(s.error().subject.find("05:00") != std::string::npos);
  auto bad = state::collect(e.fx.root(), "zz:00", state::Sources{&*e.arb, e.backend.get()});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().exit == Exit::usage);
}

TEST_CASE("a snapshot file reads back equal to what was collected") {
  Env e;
  e.fx.add_holder(4242, "Xorg", "/dev/dri/card0");
  e.poke("0000:01:00.0", 0x5c, {0x03, 0x01, 0x00, 0x00});
  e.fx.write_file("/sys/bus/pci/devices/0000:01:00.0/aer_dev_fatal", "TOTAL_ERR_FATAL 2\n");
  auto s = e.collect();
  CHECK_FALSE(s.con2fb.has_value());  // no fbdev device under --root
  s.con2fb = std::map<int, int>{{1, 0}, {2, 0}, {7, 1}};
  json doc = state::to_json(s);
  CHECK(doc["con2fb"] == json({{"1", 0}, {"2", 0}, {"7", 1}}));
  doc["format"] = state::kFormat;
  const std::string path = write_temp(doc.dump(2));
  auto back = state::load(path);
  REQUIRE_MESSAGE(back, (back ? "" : back.error().describe()));
  CHECK(*back == s);
  CHECK(state::to_json(*back) == state::to_json(s));
  ::unlink(path.c_str());
}

TEST_CASE("a bad snapshot file is refused with exit 2, naming the file and what is wrong") {
  Env e;
  json good = state::to_json(e.collect());
  good["format"] = state::kFormat;
  auto refused = [](const std::string& content, const std::string& expect) {
    CAPTURE(expect);
    const std::string path = write_temp(content);
    auto r = state::load(path);
    ::unlink(path.c_str());
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::usage);
    CHECK(r.error().subject == path);
    CHECK_MESSAGE(r.error().message.find(expect) != std::string::npos, r.error().message);
  };
  refused("", "not JSON");
  refused("{\"format\": 1, ", "not JSON");
  refused("[1, 2]", "not an object");
  auto wrong = good;
  wrong["format"] = 2;
  refused(wrong.dump(), "format 2 is not 1");
  wrong = good;
  wrong.erase("format");
  refused(wrong.dump(), "snapshot.format is missing");
  wrong = good;
  wrong["functions"][0]["driver"] = 7;
  refused(wrong.dump(), "0000:01:00.0.driver is not a string");
  wrong = good;
  wrong["functions"][0].erase("power");
  refused(wrong.dump(), "0000:01:00.0.power is missing");
  wrong = good;
  wrong["functions"][0]["bdf"] = "gpu";
  refused(wrong.dump(), "functions[0].bdf");
  wrong = good;
  wrong["functions"][0]["vga"]["decodes"] = "all";
  refused(wrong.dump(), "not none, io, mem or io+mem");
  wrong = good;
  wrong["functions"][0]["command"]["value"] = "7";
  refused(wrong.dump(), "not a register");
  wrong = good;
  wrong["functions"][1] = wrong["functions"][0];
  refused(wrong.dump(), "twice");
  wrong = good;
  wrong["functions"][0]["iommu_group"] = -1;
  refused(wrong.dump(), "iommu_group is not a number");
  wrong = good;
  wrong["con2fb"] = {{"0", 1}};
  refused(wrong.dump(), "not a console 1-63");
  wrong = good;
  wrong["con2fb"] = {{"1", 99}};
  refused(wrong.dump(), "framebuffer 0-31");
  wrong = good;
  wrong["device"] = "x";
  refused(wrong.dump(), "not a PCI address");
  // Larger than any snapshot: refused before parsing.
  refused(std::string(state::kMaxSnapshotBytes + 10, ' '), "");

  // Not a regular file, or no file at all.
  auto fifo = std::string("/tmp/pt-snapshot-fifo-") + std::to_string(::getpid());
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto r = state::load(fifo);
  ::unlink(fifo.c_str());
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  r = state::load("/nonexistent/pt.snap");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().subject == "/nonexistent/pt.snap");
}

TEST_CASE("diff: a function that appears or goes, and system-wide fields") {
  Env e;
  auto a = e.collect();
  auto b = a;
  b.functions.pop_back();
  b.vtconsoles[0].bound = !b.vtconsoles[0].bound;
  b.journal_job = "attach";
  a.con2fb = std::map<int, int>{{1, 0}};
  b.con2fb = std::map<int, int>{{1, 1}};
  const auto cs = state::diff(a, b);
  INFO(lines(cs));
  CHECK(has_change(cs, "con2fb: 1=fb0 -> 1=fb1"));
  CHECK(state::con2fb_text({{1, 0}, {2, 0}, {3, 0}, {5, 0}, {4, 1}}) == "1-3+5=fb0 4=fb1");
  CHECK(has_change(cs, "0000:01:00.1 present: yes -> (none)"));
  CHECK(has_change(cs, "journal.job: (none) -> attach"));
  bool vt = false;
  for (const auto& c : cs) vt |= c.function.empty() && c.field.starts_with("vtconsoles[");
  CHECK(vt);
}

// ---------------------------------------------------------------- warnings

namespace {

std::string warning_lines(const std::vector<state::Warning>& ws) {
  std::string t;
  for (const auto& w : ws) t += w.kind + " | " + w.device + " | " + w.message + "\n";
  return t;
}

// S with its warnings taken away: what must not change when one appears.
state::Snapshot without_warnings(state::Snapshot s) {
  s.warnings.clear();
  return s;
}

}  // namespace

TEST_CASE("warnings: a ready machine and a root port with ACS have none") {
  Env e;
  auto s = state::collect(e.fx.root(), "01:00",
                          state::Sources{&*e.arb, e.backend.get(), &e.fx.modules()});
  REQUIRE(s);
  CHECK_MESSAGE(s->warnings.empty(), warning_lines(s->warnings));
  CHECK(state::to_json(*s)["warnings"] == json::array());
}

TEST_CASE("warnings: no IOMMU groups and no vfio-pci, from bind's readiness hints") {
  Env e;
  const auto ready = e.collect();
  e.fx.no_iommu();
  std::filesystem::remove_all(e.fx.dir() + "/sys/bus/pci/drivers/vfio-pci");
  auto s = state::collect(e.fx.root(), "01:00",
                          state::Sources{&*e.arb, e.backend.get(), &e.fx.modules()});
  REQUIRE(s);
  const auto hints = bind::readiness_hints(e.fx.root(), &e.fx.modules(), {});
  REQUIRE(hints.size() == 2);
  CHECK(s->warnings == std::vector<state::Warning>{{"no-iommu", "", hints[0].message},
                                                   {"no-vfio-pci", "", hints[1].message}});
  CHECK(hints[0].message.starts_with("no IOMMU: add intel_iommu=on"));
  CHECK(hints[1].message.starts_with("vfio-pci is not available"));
  // Only the groups went: every other field reads as before.
  auto grouped = without_warnings(*s);
  for (auto& f : grouped.functions) {
    CHECK_FALSE(f.iommu_group.has_value());
    f.iommu_group = 1;
  }
  CHECK(grouped == ready);
  // Without a module loader to ask, vfio-pci is not looked for.
  auto unasked = e.collect();
  CHECK(unasked.warnings == std::vector<state::Warning>{{"no-iommu", "", hints[0].message}});
}

TEST_CASE("warnings: a root port without ACS on the GPU's path, as pt-bind show words it") {
  Env e;
  const auto isolated = e.collect();
  // The ACS extended capability's header gone: the root port has none.
  e.poke("0000:00:01.0", 0x100, {0, 0, 0, 0});
  const auto s = e.collect("01:00.1");
  const auto gaps = acs_gaps(e.fx.root(), *parse_sysfs_name("0000:01:00.0"));
  REQUIRE(gaps.size() == 1);
  CHECK(acs_gap_warning(gaps[0]).starts_with("0000:00:01.0 is a root port without ACS: "));
  CHECK(s.warnings ==
        std::vector<state::Warning>{{"acs", "0000:01:00.0", acs_gap_warning(gaps[0])}});
  auto rest = without_warnings(s);
  rest.device = isolated.device;
  CHECK(rest == isolated);

  // ACS there but RR and UF off: named by the bits.
  e.poke("0000:00:01.0", 0x100, {0x0d, 0x00, 0x01, 0x00});
  e.poke("0000:00:01.0", 0x106, {0x09, 0x00});
  const auto off = e.collect();
  REQUIRE(off.warnings.size() == 1);
  CHECK(off.warnings[0].kind == "acs");
  CHECK(off.warnings[0].message.starts_with(
      "0000:00:01.0 is a root port with ACS RR- UF- (disabled): "));
}

TEST_CASE("warnings: a 64-byte config space is reported, not decoded") {
  Env e;
  const auto full = e.collect();
  std::filesystem::resize_file(e.fx.dir() + "/sys/bus/pci/devices/0000:01:00.0/config", 64);
  const auto s = e.collect();
  CHECK(s.warnings == std::vector<state::Warning>{
                          {"config-unreadable", "0000:01:00.0",
                           "capabilities unreadable: config space is 64 bytes (run as root)"}});
  // The header still reads; what lives in capabilities is unknown.
  const auto& g = fn(s, "0000:01:00.0");
  CHECK(g.command == fn(full, "0000:01:00.0").command);
  CHECK(g.pm_state == "");
  CHECK_FALSE(g.link.has_value());
  CHECK(fn(s, "0000:01:00.1") == fn(full, "0000:01:00.1"));
  CHECK(s.vtconsoles == full.vtconsoles);
}

TEST_CASE("warnings: config space reading all ones is a function stuck powered off") {
  Env e;
  const auto full = e.collect();
  e.fx.write_file("/sys/bus/pci/devices/0000:01:00.1/config", std::string(4096, '\xff'));
  const auto s = e.collect();
  CHECK(s.warnings == std::vector<state::Warning>{
                          {"stuck-d3", "0000:01:00.1",
                           "config space reads all ones (vendor 0xffff): 0000:01:00.1 is in "
                           "D3cold, powered off or gone, and FLR and PM reset cannot reach it; no "
                           "reset reaches it from outside (the bus below 0000:00:01.0 is shared "
                           "and there is no hotplug slot); 'pt-reset --method rescan "
                           "0000:01:00.1' finds it again only if its link comes back; otherwise "
                           "power the machine off and on"}});
  const auto& a = fn(s, "0000:01:00.1");
  CHECK_FALSE(a.command.has_value());
  CHECK(a.pm_state == "");
  CHECK(a.reset_methods.empty());
  CHECK(fn(s, "0000:01:00.0") == fn(full, "0000:01:00.0"));
}

TEST_CASE("warnings: in JSON, read back, an older snapshot without them, and diff") {
  Env e;
  e.poke("0000:00:01.0", 0x100, {0, 0, 0, 0});
  const auto s = e.collect();
  REQUIRE(s.warnings.size() == 1);
  json doc = state::to_json(s);
  CHECK(doc["warnings"] ==
        json::array(
            {{{"kind", "acs"}, {"device", "0000:01:00.0"}, {"message", s.warnings[0].message}}}));
  doc["format"] = state::kFormat;
  doc = json::parse(doc.dump());  // as a file reads back
  auto back = state::from_json(doc, "f");
  REQUIRE_MESSAGE(back, (back ? "" : back.error().describe()));
  CHECK(*back == s);

  // A file pt wrote before warnings existed loads, with none.
  json old = doc;
  old.erase("warnings");
  auto older = state::from_json(old, "f");
  REQUIRE_MESSAGE(older, (older ? "" : older.error().describe()));
  CHECK(older->warnings.empty());
  CHECK(without_warnings(*older) == without_warnings(s));

  // A warning that came is a change of its function; one that went too.
  auto cs = state::diff(*older, s);
  INFO(lines(cs));
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].describe() == "0000:01:00.0 warning acs: (none) -> " + s.warnings[0].message);
  cs = state::diff(s, *older);
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].describe() == "0000:01:00.0 warning acs: " + s.warnings[0].message + " -> (none)");
  CHECK(state::diff(s, s).empty());
  auto machine = s;
  machine.warnings.push_back({"no-iommu", "", "no IOMMU: x"});
  cs = state::diff(s, machine);
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].describe() == "warning no-iommu: (none) -> no IOMMU: x");

  // Warnings are checked like every other field.
  json bad = doc;
  bad["warnings"][0]["device"] = "gpu";
  auto r = state::from_json(bad, "f");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().message.find("warnings holds device 'gpu'") != std::string::npos);
  bad = doc;
  bad["warnings"][0].erase("message");
  CHECK_FALSE(state::from_json(bad, "f"));
  bad = doc;
  bad["warnings"] = "none";
  CHECK_FALSE(state::from_json(bad, "f"));
}
