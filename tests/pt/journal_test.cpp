#include "pt/journal.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "fixture.hpp"

using namespace pt;

namespace {
Journal sample() {
  Journal j;
  j.devices["0000:01:00.0"] = JournalEntry{"nvidia", "nvidia", "", "vfio-pci", 0, 1700000000};
  j.devices["0000:01:00.1"] =
      JournalEntry{"snd_hda_intel", "snd_hda_intel", "", "vfio-pci", 2, 1700000000};
  j.job = Job{"detach", 123, 1700000001, {"0000:01:00.1", "0000:01:00.0"}, 0, {}, {}};
  return j;
}
}  // namespace

TEST_CASE("the journal round-trips through its JSON form") {
  auto text = journal_to_text(sample());
  auto back = journal_from_text(text, "j");
  REQUIRE(back);
  CHECK(back->devices.size() == 2);
  CHECK(back->devices.at("0000:01:00.1").driver == "snd_hda_intel");
  CHECK(back->devices.at("0000:01:00.1").attach_order == 2);
  CHECK(back->devices.at("0000:01:00.0").driver_override.empty());
  REQUIRE(back->job);
  CHECK(back->job->pid == 123);
  CHECK(back->job->devices == std::vector<std::string>{"0000:01:00.1", "0000:01:00.0"});
  CHECK(text.find("\"driver_override\": null") != std::string::npos);
}

TEST_CASE("a job's stuck write round-trips and is absent when there is none") {
  CHECK(journal_to_text(sample()).find("stuck_write") == std::string::npos);
  Journal j = sample();
  j.job->writer = 4242;
  j.job->write_path = "/sys/bus/pci/drivers/nvidia/unbind";
  j.job->write_value = "0000:01:00.0";
  auto back = journal_from_text(journal_to_text(j), "j");
  REQUIRE(back);
  REQUIRE(back->job);
  CHECK(back->job->writer == 4242);
  CHECK(back->job->write_path == "/sys/bus/pci/drivers/nvidia/unbind");
  CHECK(back->job->write_value == "0000:01:00.0");
}

TEST_CASE("arbiter and console records round-trip and stay out of bind-only journals") {
  CHECK(journal_to_text(sample()).find("\"vga\"") == std::string::npos);
  CHECK(journal_to_text(sample()).find("\"consoles\"") == std::string::npos);
  Journal j = sample();
  j.vga["0000:01:00.0"] = VgaRecord{"io+mem", "io+mem", true, "nvidia", 1700000002};
  j.consoles["0000:01:00.0"] = {
      ConsoleChange{"framebuffer", "efi-framebuffer.0", "efifb", "efi-framebuffer.0", 5, {}},
      ConsoleChange{"vtconsole",
                    "frame buffer device",
                    "",
                    "vtcon1",
                    6,
                    {ServedFb{"fb0", "virtio_gpudrmfb", {1, 2, 3}}}}};
  auto back = journal_from_text(journal_to_text(j), "j");
  REQUIRE(back);
  REQUIRE(back->vga.count("0000:01:00.0") == 1);
  const auto& v = back->vga.at("0000:01:00.0");
  CHECK(v.decodes == "io+mem");
  CHECK(v.owns == "io+mem");
  CHECK(v.boot_vga);
  CHECK(v.driver == "nvidia");
  CHECK(v.time == 1700000002);
  const auto& c = back->consoles.at("0000:01:00.0");
  REQUIRE(c.size() == 2);
  CHECK(c[0].kind == "framebuffer");
  CHECK(c[0].name == "efi-framebuffer.0");
  CHECK(c[0].driver == "efifb");
  CHECK(c[1].kind == "vtconsole");
  CHECK(c[1].name == "frame buffer device");
  CHECK(c[1].driver.empty());
  CHECK(c[1].node == "vtcon1");
  CHECK(c[1].time == 6);
  REQUIRE(c[1].served.size() == 1);
  CHECK(c[1].served[0].node == "fb0");
  CHECK(c[1].served[0].name == "virtio_gpudrmfb");
  CHECK(c[1].served[0].consoles == std::vector<int>{1, 2, 3});
  CHECK(c[0].served.empty());
}

TEST_CASE("SR-IOV records round-trip; a bad autoprobe is refused") {
  CHECK(journal_to_text(sample()).find("\"sriov\"") == std::string::npos);
  Journal j = sample();
  j.sriov["0000:4d:00.0"] = SriovRecord{1, "1", 4, "vfio-pci", 1700000003};
  j.sriov["0000:02:00.0"] = SriovRecord{0, "", 2, "vfio-pci", 1700000004};
  auto back = journal_from_text(journal_to_text(j), "j");
  REQUIRE(back);
  CHECK(*back == j);
  auto text = journal_to_text(j);
  auto at = text.find("\"autoprobe\": \"1\"");
  REQUIRE(at != std::string::npos);
  text.replace(at, 16, "\"autoprobe\": \"2\"");
  auto bad = journal_from_text(text, "j");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("sriov.0000:4d:00.0.autoprobe") != std::string::npos);
}

TEST_CASE("an SR-IOV record keeps the driver of each VF; a key that is no VF is refused") {
  Journal j = sample();
  j.sriov["0000:01:00.0"] =
      SriovRecord{0, "1", 2, "auto", 1700000005,
                  {{"0000:01:00.1", "ptd-vfio-variant"}, {"0000:01:00.2", "vfio-pci"}}};
  const auto text = journal_to_text(j);
  CHECK(text.find("\"0000:01:00.1\": \"ptd-vfio-variant\"") != std::string::npos);
  auto back = journal_from_text(text, "j");
  REQUIRE(back);
  CHECK(*back == j);
  auto edited = text;
  edited.replace(edited.find("\"0000:01:00.2\": \"vfio-pci\""), 26, "\"01:00.2\": \"vfio-pci\"");
  auto bad = journal_from_text(edited, "j");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("sriov.0000:01:00.0.drivers.01:00.2") != std::string::npos);
}

TEST_CASE("the state directory is created 0700 and the journal is written atomically") {
  test::Fixture fx;
  REQUIRE(check_state_dir(fx.root(), true));
  struct stat st {};
  REQUIRE(::stat((fx.dir() + "/run/pt").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(save_journal(fx.root(), sample()));
  CHECK_FALSE(fx.exists("/run/pt/journal.json.tmp"));
  REQUIRE(::stat((fx.dir() + "/run/pt/journal.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto j = load_journal(fx.root());
  REQUIRE(j);
  CHECK(j->devices.size() == 2);
}

TEST_CASE("a missing journal is empty") {
  test::Fixture fx;
  auto j = load_journal(fx.root());
  REQUIRE(j);
  CHECK(j->devices.empty());
  CHECK_FALSE(j->job);
}

TEST_CASE("a journal others can write is refused") {
  test::Fixture fx;
  REQUIRE(check_state_dir(fx.root(), true));
  REQUIRE(save_journal(fx.root(), sample()));
  ::chmod((fx.dir() + "/run/pt/journal.json").c_str(), 0666);
  auto j = load_journal(fx.root());
  REQUIRE_FALSE(j);
  CHECK(j.error().subject == "/run/pt/journal.json");
  CHECK(j.error().message.find("others can write") != std::string::npos);
}

TEST_CASE("a journal owned by another user is refused") {
  test::Fixture fx;
  REQUIRE(check_state_dir(fx.root(), true));
  REQUIRE(save_journal(fx.root(), sample()));
  const std::string p = fx.dir() + "/run/pt/journal.json";
  uid_t other = ::geteuid() == 0 ? 65534 : 0;
  if (::chown(p.c_str(), other, other) != 0) {
    MESSAGE("cannot chown as this user; ownership refusal not exercised");
    return;
  }
  auto j = load_journal(fx.root());
  REQUIRE_FALSE(j);
  CHECK(j.error().message.find("owned by uid") != std::string::npos);
}

TEST_CASE("a state directory open to others is refused") {
  test::Fixture fx;
  std::filesystem::create_directories(fx.dir() + "/run/pt");
  ::chmod((fx.dir() + "/run/pt").c_str(), 0755);
  auto r = check_state_dir(fx.root(), true);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("0700") != std::string::npos);
}

TEST_CASE("a corrupt journal is an error that says what to do") {
  auto r = journal_from_text("{not json", "/run/pt/journal.json");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("remove it") != std::string::npos);
  auto v = journal_from_text(R"({"version":9,"devices":{}})", "/run/pt/journal.json");
  REQUIRE_FALSE(v);
  CHECK(v.error().message.find("newer pt") != std::string::npos);
}

TEST_CASE("a journal that is a symlink is refused, not followed") {
  test::Fixture fx;
  REQUIRE(check_state_dir(fx.root(), true));
  fx.write_file("/run/elsewhere.json", journal_to_text(sample()));
  REQUIRE(::symlink((fx.dir() + "/run/elsewhere.json").c_str(),
                    (fx.dir() + "/run/pt/journal.json").c_str()) == 0);
  auto j = load_journal(fx.root());
  REQUIRE_FALSE(j);
  CHECK(j.error().subject == "/run/pt/journal.json");
  CHECK(j.error().message == "cannot open the journal");
  CHECK(j.error().err == ELOOP);
}

namespace {
// Each bad journal of the corpus and a part of the message that names what
// is wrong with it. A file without a line here fails the test, so nobody adds
// a bad journal that is not checked.
const std::map<std::string, std::string> kBadJournals = {
    {"attach-order-huge", "devices.0000:01:00.0.attach_order must be an integer"},
    {"attach-order-overflow", "devices.0000:01:00.0.attach_order must be an integer from"},
    {"attach-order-string", "devices.0000:01:00.0.attach_order must be an integer"},
    {"boot-string", "devices.0000:01:00.0.boot must be true or false"},
    {"consoles-console-fraction",
     "consoles.0000:01:00.0[0].served[0].consoles[0] must be an integer"},
    {"consoles-object", "consoles.0000:01:00.0 must be an array"},
    {"consoles-served-null", "consoles.0000:01:00.0[0].served must be an array"},
    {"device-key-bad", "devices.01:00.0 '01:00.0' is not a PCI address"},
    {"devices-array", "devices must be an object, not array"},
    {"devices-missing", "devices is missing"},
    {"devices-null", "devices must be an object, not null"},
    {"driver-missing", "devices.0000:01:00.0.driver is missing"},
    {"driver-number", "devices.0000:01:00.0.driver must be a string or null"},
    {"duplicate-device", "'0000:01:00.0' appears twice"},
    {"duplicate-field", "'driver' appears twice"},
    {"duplicate-version", "'version' appears twice"},
    {"entry-null", "devices.0000:01:00.0 must be an object, not null"},
    {"job-array", "job must be an object or null"},
    {"job-device-bad", "job.devices[0] 'gpu' is not a PCI address"},
    {"job-devices-null", "job.devices must be an array, not null"},
    {"job-missing", "job is missing"},
    {"job-op-unknown", "job.op 'explode' is not detach"},
    {"job-pid-fraction", "job.pid must be an integer from 0 to 2147483647, not the fraction 12.5"},
    {"job-stuck-write-null", "job.stuck_write must be an object, not null"},
    {"job-writer-negative", "job.stuck_write.writer must be an integer from 1"},
    {"not-json", "not valid JSON"},
    {"time-fraction", "devices.0000:01:00.0.time must be an integer"},
    {"top-array", "(top level) must be an object"},
    {"version-fraction", "unknown journal version 1.9"},
    {"version-string", "unknown journal version \"1\""},
    {"version-two", "unknown journal version 2"},
    {"vga-boot-number", "vga.0000:01:00.0.boot_vga must be true or false"},
    {"vga-null", "vga must be an object, not null"},
};
}  // namespace

TEST_CASE("every bad journal of the corpus is refused, naming the file and the field") {
  size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(PT_JOURNAL_CORPUS)) {
    const std::string name = entry.path().stem().string();
    CAPTURE(name);
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    auto r = journal_from_text(text.str(), "/run/pt/journal.json");
    REQUIRE_FALSE(r);
    CHECK(r.error().subject == "/run/pt/journal.json");
    CHECK(r.error().err == EINVAL);
    CHECK(r.error().exit == Exit::failed);
    CHECK(r.error().message.find("remove it") != std::string::npos);
    auto it = kBadJournals.find(name);
    REQUIRE_MESSAGE(it != kBadJournals.end(), "add the expected message of " << name);
    CHECK_MESSAGE(r.error().message.find(it->second) != std::string::npos, r.error().message);
    ++seen;
  }
  CHECK(seen == kBadJournals.size());
}

TEST_CASE("a loaded bad journal is refused with exit 1, records kept on disk") {
  test::Fixture fx;
  REQUIRE(check_state_dir(fx.root(), true));
  const std::string text = R"({"version": 1, "devices": null, "job": null})";
  fx.write_file("/run/pt/journal.json", text);
  ::chmod((fx.dir() + "/run/pt/journal.json").c_str(), 0600);
  auto j = load_journal(fx.root());
  REQUIRE_FALSE(j);
  CHECK(j.error().exit == Exit::failed);
  CHECK(j.error().message.find("field devices must be an object, not null") != std::string::npos);
  CHECK(fx.read("/run/pt/journal.json") == text);
}

TEST_CASE("a journal the writer wrote reads back whole, boot claims and all") {
  Journal j = sample();
  j.devices["0000:02:00.0"] = JournalEntry{"", "", "", "vfio-pci", 0, 5, true};
  j.devices["0000:01:00.0"].attach_order = -3;
  auto back = journal_from_text(journal_to_text(j), "j");
  REQUIRE(back);
  CHECK(back->devices.at("0000:02:00.0").boot);
  CHECK(back->devices.at("0000:01:00.0").attach_order == -3);
  CHECK(journal_to_text(*back) == journal_to_text(j));
}

TEST_CASE("a hard link planted at the old temporary name is not written through") {
  test::Fixture fx;
  REQUIRE(check_state_dir(fx.root(), true));
  fx.write_file("/etc/victim", "precious\n");
  REQUIRE(::link((fx.dir() + "/etc/victim").c_str(),
                 (fx.dir() + "/run/pt/journal.json.tmp").c_str()) == 0);
  REQUIRE(save_journal(fx.root(), sample()));
  CHECK(fx.read("/etc/victim") == "precious");
  REQUIRE(load_journal(fx.root()));
  CHECK(load_journal(fx.root())->devices.size() == 2);
  // No temporary file of its own is left behind.
  for (const auto& f : std::filesystem::directory_iterator(fx.dir() + "/run/pt"))
    CHECK_FALSE(f.path().string().ends_with(".journal.json.tmp"));
}

TEST_CASE("state under a --root tree whose /run leads out of the tree is refused") {
  test::Fixture fx;
  const std::string outside = fx.dir() + ".outside";
  std::filesystem::create_directories(outside);
  std::filesystem::remove_all(fx.dir() + "/run");
  REQUIRE(::symlink(outside.c_str(), (fx.dir() + "/run").c_str()) == 0);
  auto dir = check_state_dir(fx.root(), true);
  REQUIRE_FALSE(dir);
  CHECK(dir.error().subject == "/run");
  CHECK(dir.error().message.find("leads out of the --root tree") != std::string::npos);
  auto saved = save_journal(fx.root(), sample());
  REQUIRE_FALSE(saved);
  CHECK(saved.error().subject == "/run");
  auto loaded = load_journal(fx.root());
  REQUIRE_FALSE(loaded);
  CHECK(loaded.error().subject == "/run");
  CHECK(std::filesystem::is_empty(outside));
  std::filesystem::remove_all(outside);
}

TEST_CASE("a /run/pt that is a symlink out of the tree is refused and nothing is written there") {
  test::Fixture fx;
  const std::string outside = fx.dir() + ".outside";
  std::filesystem::create_directories(outside);
  ::chmod(outside.c_str(), 0700);
  std::filesystem::create_directories(fx.dir() + "/run");
  REQUIRE(::symlink(outside.c_str(), (fx.dir() + "/run/pt").c_str()) == 0);
  CHECK_FALSE(check_state_dir(fx.root(), true));
  CHECK_FALSE(save_journal(fx.root(), sample()));
  CHECK(std::filesystem::is_empty(outside));
  std::filesystem::remove_all(outside);
}
