#include "pt/journal.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>

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
