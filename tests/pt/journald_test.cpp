#include "pt/journald.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "log_sink.hpp"

using namespace pt;
using pt::test::Fixture;
using pt::test::LogSink;

namespace {

constexpr const char* kSocket = "/run/systemd/journal/socket";

// A native-protocol datagram as KEY -> values (a key may repeat), decoding
// the binary form too.
std::multimap<std::string, std::string> fields_of(const std::string& d) {
  std::multimap<std::string, std::string> out;
  size_t i = 0;
  while (i < d.size()) {
    const auto nl = d.find('\n', i);
    REQUIRE(nl != std::string::npos);
    const std::string line = d.substr(i, nl - i);
    const auto eq = line.find('=');
    if (eq != std::string::npos) {
      out.emplace(line.substr(0, eq), line.substr(eq + 1));
      i = nl + 1;
      continue;
    }
    uint64_t n = 0;
    for (int b = 0; b < 8; ++b) n |= uint64_t(uint8_t(d[nl + 1 + b])) << (8 * b);
    out.emplace(line, d.substr(nl + 9, n));
    REQUIRE(d[nl + 9 + n] == '\n');
    i = nl + 10 + n;
  }
  return out;
}

std::string one(const std::multimap<std::string, std::string>& f, const std::string& key) {
  REQUIRE(f.count(key) == 1);
  return f.find(key)->second;
}

std::vector<std::string> all(const std::multimap<std::string, std::string>& f, const std::string& key) {
  std::vector<std::string> out;
  for (auto [a, b] = f.equal_range(key); a != b; ++a) out.push_back(a->second);
  return out;
}

WriteEvent event(std::string path, std::string value, bool failed = false, int err = 0,
                 bool timed_out = false, Exit exit = Exit::ok) {
  return WriteEvent{std::move(path), std::move(value), std::chrono::microseconds(1500), failed,
                    err, timed_out, exit};
}

}  // namespace

TEST_CASE("journald::encode: the fixed fields first, then PT_*, a value with a newline in binary form") {
  journald::Record r{journald::Kind::bind, 6, "pt-bind", "unbound", {{"PT_BDF", "0000:01:00.0"},
                                                                     {"PT_NOTE", "two\nlines"}}};
  const std::string d = journald::encode(r);
  CHECK(d.starts_with("MESSAGE_ID=98b470185afa48fd8203bb10038a19b9\nPRIORITY=6\n"
                      "SYSLOG_IDENTIFIER=pt-bind\nSYSLOG_FACILITY=3\nPT_EVENT=bind\nMESSAGE=unbound\n"
                      "PT_BDF=0000:01:00.0\nPT_NOTE\n"));
  const auto f = fields_of(d);
  CHECK(one(f, "PT_NOTE") == "two\nlines");
  CHECK(f.size() == 8);
}

TEST_CASE("journald: every kind has its own id of 32 hex digits, and a name") {
  using K = journald::Kind;
  std::vector<std::string> ids;
  for (K k : {K::bind, K::reset, K::vgaarb, K::console, K::power, K::write, K::recover_step, K::command}) {
    const std::string id(journald::message_id(k));
    CHECK(id.size() == 32);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK_FALSE(journald::kind_name(k).empty());
    for (const auto& seen : ids) CHECK(seen != id);
    ids.push_back(id);
  }
}

TEST_CASE("journald: pt.catalog has an entry for every kind, and pt(7) lists every id") {
  auto slurp = [](const char* path) {
    std::ifstream in(path);
    REQUIRE(in);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string catalog = slurp(PT_CATALOG), man = slurp(PT_MAN7);
  using K = journald::Kind;
  for (K k : {K::bind, K::reset, K::vgaarb, K::console, K::power, K::write, K::recover_step, K::command}) {
    const std::string id(journald::message_id(k));
    CAPTURE(id);
    CHECK(catalog.find("\n-- " + id + "\nSubject: ") != std::string::npos);
    CHECK(man.find(id) != std::string::npos);
  }
}

TEST_CASE("journald::send: one datagram to ROOT's journal socket; without a journal, false and no change") {
  Fixture fx;
  const auto before = fx.snapshot();
  journald::Record r{journald::Kind::reset, 4, "pt-reset", "x", {{"PT_STEP", "reset"}}};
  CHECK_FALSE(journald::send(fx.root(), r));
  CHECK(fx.snapshot() == before);

  LogSink sink(fx, kSocket);
  CHECK(journald::send(fx.root(), r));
  const auto got = sink.raw();
  REQUIRE(got.size() == 1);
  CHECK(got[0] == journald::encode(r));
}

TEST_CASE("journald::step_record: what each kernel write is, on which function") {
  std::string target;
  SUBCASE("an unbind names the driver, and the function from the value") {
    auto r = journald::step_record("pt-bind", event("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0"), target);
    REQUIRE(r);
    CHECK(r->kind == journald::Kind::bind);
    const auto f = fields_of(journald::encode(*r));
    CHECK(one(f, "PT_BDF") == "0000:01:00.0");
    CHECK(one(f, "PT_STEP") == "unbind");
    CHECK(one(f, "PT_DRIVER") == "nvidia");
    CHECK(one(f, "PT_RESULT") == "ok");
    CHECK(one(f, "PT_EXIT") == "0");
    CHECK(one(f, "PRIORITY") == "6");
    CHECK(one(f, "SYSLOG_IDENTIFIER") == "pt-bind");
    CHECK(one(f, "MESSAGE") == "pt-bind: 0000:01:00.0: unbind 0000:01:00.0 in /sys/bus/pci/drivers/nvidia/unbind: ok");
  }
  SUBCASE("a device attribute is bind, reset or power by its name") {
    auto a = journald::step_record("pt-bind", event("/sys/bus/pci/devices/0000:01:00.1/driver_override", "vfio-pci"), target);
    auto b = journald::step_record("pt-reset", event("/sys/bus/pci/devices/0000:01:00.0/reset", "1"), target);
    auto c = journald::step_record("pt-reset", event("/sys/bus/pci/devices/0000:01:00.0/power/control", "on"), target);
    auto d = journald::step_record("pt-reset", event("/sys/bus/pci/devices/0000:00:01.0/config", "@0x03e=0x0040"), target);
    REQUIRE((a && b && c && d));
    CHECK(a->kind == journald::Kind::bind);
    CHECK(b->kind == journald::Kind::reset);
    CHECK(c->kind == journald::Kind::power);
    CHECK(d->kind == journald::Kind::write);
    CHECK(one(fields_of(journald::encode(*a)), "PT_BDF") == "0000:01:00.1");
    CHECK(one(fields_of(journald::encode(*c)), "PT_STEP") == "power/control");
    CHECK(one(fields_of(journald::encode(*d)), "PT_STEP") == "config");
  }
  SUBCASE("the arbiter's decodes is logged for the device its target named; target and lock are not") {
    CHECK_FALSE(journald::step_record("pt-vgaarb", event("/dev/vga_arbiter", "target PCI:0000:01:00.0"), target));
    CHECK(target == "0000:01:00.0");
    CHECK_FALSE(journald::step_record("pt-vgaarb", event("/dev/vga_arbiter", "lock io+mem"), target));
    auto r = journald::step_record("pt-vgaarb", event("/dev/vga_arbiter", "decodes io+mem"), target);
    REQUIRE(r);
    CHECK(r->kind == journald::Kind::vgaarb);
    const auto f = fields_of(journald::encode(*r));
    CHECK(one(f, "PT_BDF") == "0000:01:00.0");
    CHECK(one(f, "PT_VALUE") == "decodes io+mem");
  }
  SUBCASE("a vtconsole bind is a console event without a function") {
    auto r = journald::step_record("pt-console", event("/sys/class/vtconsole/vtcon1/bind", "0"), target);
    REQUIRE(r);
    CHECK(r->kind == journald::Kind::console);
    const auto f = fields_of(journald::encode(*r));
    CHECK(f.count("PT_BDF") == 0);
    CHECK(one(f, "PT_STEP") == "bind");
  }
  SUBCASE("a write abandoned in the kernel: timed-out, exit 5, a warning") {
    auto r = journald::step_record(
        "pt-bind", event("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0", true, 0, true, Exit::timeout), target);
    REQUIRE(r);
    const auto f = fields_of(journald::encode(*r));
    CHECK(one(f, "PT_RESULT") == "timed-out");
    CHECK(one(f, "PT_EXIT") == "5");
    CHECK(one(f, "PRIORITY") == "4");
  }
  SUBCASE("a refused write carries its errno") {
    auto r = journald::step_record(
        "pt-reset", event("/sys/bus/pci/devices/0000:01:00.0/reset", "1", true, EBUSY, false, Exit::failed), target);
    REQUIRE(r);
    const auto f = fields_of(journald::encode(*r));
    CHECK(one(f, "PT_RESULT") == "failed");
    CHECK(one(f, "PT_EXIT") == "1");
    CHECK(one(f, "ERRNO") == std::to_string(EBUSY));
  }
}

TEST_CASE("journald::step_logger and command_end: each change, then one record of the run's end") {
  Fixture fx;
  LogSink sink(fx, kSocket);
  // Nothing changed yet in this process's session: no end record.
  journald::command_end("pt-bind", Exit::ok, "");
  CHECK(sink.raw().empty());

  std::vector<std::string> verbose;
  auto log = journald::step_logger(fx.root(), "pt-bind",
                                   [&](const WriteEvent& ev) { verbose.push_back(ev.path); });
  log(event("/sys/bus/pci/devices/0000:01:00.0/driver_override", "vfio-pci"));
  log(event("/sys/bus/pci/drivers/snd_hda_intel/unbind", "0000:01:00.1"));
  log(event("/dev/vga_arbiter", "target PCI:0000:01:00.0"));
  // The -v printer still hears every write, logged or not.
  CHECK(verbose.size() == 3);
  journald::command_end("pt-bind", Exit::rolled_back, "0000:01:00.0: bind failed");

  const auto got = sink.raw();
  REQUIRE(got.size() == 3);
  CHECK(one(fields_of(got[0]), "PT_STEP") == "driver_override");
  CHECK(one(fields_of(got[1]), "PT_BDF") == "0000:01:00.1");
  const auto end = fields_of(got[2]);
  CHECK(one(end, "MESSAGE_ID") == journald::message_id(journald::Kind::command));
  CHECK(one(end, "PT_EXIT") == "3");
  CHECK(one(end, "PT_RESULT") == "failed");
  CHECK(one(end, "PT_CHANGES") == "2");
  CHECK(one(end, "PRIORITY") == "3");
  CHECK(all(end, "PT_BDF") == std::vector<std::string>{"0000:01:00.0", "0000:01:00.1"});
  CHECK(one(end, "MESSAGE") ==
        "pt-bind: finished, exit 3 after 2 change(s) to 0000:01:00.0 0000:01:00.1: 0000:01:00.0: bind failed");

  // The session starts over: a second end with no change says nothing.
  journald::command_end("pt-bind", Exit::ok, "");
  CHECK(sink.raw().empty());
}
