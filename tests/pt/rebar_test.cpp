#include "pt/rebar.hpp"

#include <doctest/doctest.h>

#include "fixture.hpp"

using namespace pt;

namespace {

ConfigSpace raw(const std::string& bytes) {
  return ConfigSpace(std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

void put32(std::string& b, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + i] = char(v >> (8 * i) & 0xff);
}

// The Fiji GPU with one ReBAR entry at 0x200 rewritten: extended sizes in
// the control register (bits 16..31), as PCIe r6.0 sec 7.8.6.3 lays them out.
// Synthetic: no published dump of a device with such sizes was found.
std::string fiji_with(uint32_t cap, uint32_t ctrl) {
  std::string b = test::radeon_fiji_config();
  put32(b, 0x204, cap);
  put32(b, 0x208, ctrl);
  return b;
}

void add_fiji(test::Fixture& fx, const std::string& driver, bool resize_files = true) {
  fx.add_driver("amdgpu", "amdgpu");
  fx.add_driver("vfio-pci", "vfio_pci");
  fx.add_bridge("0000:00:01.0");
  fx.add_device(test::FakeDevice{.bdf = "0000:09:00.0",
                                 .vendor = 0x1002,
                                 .device = 0x7300,
                                 .parent = "0000:00:01.0",
                                 .driver = driver,
                                 .native_driver = "amdgpu",
                                 .group = 1,
                                 .caps = {.raw = test::radeon_fiji_config()},
                                 .resize_files = resize_files});
}

}  // namespace

TEST_CASE("a real Fiji's ReBAR: BAR 0 at 256M, 256M to 4G supported") {
  // pciutils tests/cap-rebar (https://github.com/pciutils/pciutils/blob/master/tests/cap-rebar):
  // 200: 15 00 01 27 | cap 0001f000 | ctrl 00000820.
  auto bars = rebar::decode(raw(test::radeon_fiji_config()));
  REQUIRE(bars.size() == 1);
  CHECK(bars[0].index == 0);
  CHECK(bars[0].current == 8);
  CHECK(bars[0].control == 0x208);
  CHECK(rebar::size_list(bars[0].supported) == "256M 512M 1G 2G 4G");
  CHECK(rebar::size_name(bars[0].current) == "256M");
}

TEST_CASE("ReBAR entries: several BARs, extended sizes from the control register") {
  // Two entries: BAR 0 (count 2 in the first control register) and BAR 2.
  std::string b =
      fiji_with(0x0000'0010u /* 1M */, 0x0001'0040u | 0x0000 /* BAR 0, 2 entries, 1M now, 256T */);
  put32(b, 0x20c, 0xffff'fff0u);  // BAR 2: every size 1M .. 128T
  put32(b, 0x210, 0x8000'0d02u);  // BAR 2, 8G now, 8E in the extended bits
  auto bars = rebar::decode(raw(b));
  REQUIRE(bars.size() == 2);
  CHECK(bars[0].index == 0);
  CHECK(bars[0].supported == ((1ull << 0) | (1ull << 28)));
  CHECK(rebar::size_list(bars[0].supported) == "1M 256T");
  CHECK(bars[1].index == 2);
  CHECK(bars[1].current == 13);
  CHECK(rebar::size_name(13) == "8G");
  CHECK((bars[1].supported >> 43 & 1) == 1);
  CHECK(rebar::size_name(43) == "8E");
  CHECK(rebar::find(bars, 2) == &bars[1]);
  CHECK(rebar::find(bars, 1) == nullptr);
}

TEST_CASE("a VF Resizable BAR capability alone is not a ReBAR of the function") {
  std::string b = test::radeon_fiji_config();
  b[0x200] = char(rebar::kExtCapVfRebar);  // the same entry, as ID 0x0024
  CHECK(rebar::decode(raw(b)).empty());
  // Conventional PCI and a space without the capability: none.
  CHECK(rebar::decode(raw(std::string(256, '\0'))).empty());
}

TEST_CASE("sizes as a person writes them") {
  struct Case {
    const char* text;
    int size;
  };
  for (auto c :
       {Case{"1M", 0}, Case{"256M", 8}, Case{"256MB", 8}, Case{"256mib", 8}, Case{"8G", 13},
        Case{"8g", 13}, Case{"16GiB", 14}, Case{"1T", 20}, Case{"512T", 29}, Case{"8E", 43}}) {
    CAPTURE(c.text);
    auto s = rebar::parse_size(c.text, "--rebar");
    REQUIRE(s);
    CHECK(*s == c.size);
    CHECK(rebar::parse_size(rebar::size_name(c.size), "--rebar").value() == c.size);
  }
  for (auto bad :
       {"", "G", "8", "3G", "0G", "8K", "8X", "8GG", "-8G", "16E", "1024M", "99999999999G"}) {
    CAPTURE(bad);
    auto s = rebar::parse_size(bad, "--rebar");
    REQUIRE_FALSE(s);
    CHECK(s.error().exit == Exit::usage);
    CHECK(s.error().subject.starts_with("--rebar '"));
  }
}

TEST_CASE("BAR=SIZE requests") {
  auto r = rebar::parse_request("0=8G", "--rebar");
  REQUIRE(r);
  CHECK(*r == rebar::Request{0, 13});
  CHECK(rebar::parse_request("5=256M", "--rebar").value() == rebar::Request{5, 8});
  for (auto bad : {"8G", "6=8G", "x=8G", "=8G", "0=", "0=8Q"}) {
    CAPTURE(bad);
    auto e = rebar::parse_request(bad, "--rebar");
    REQUIRE_FALSE(e);
    CHECK(e.error().exit == Exit::usage);
  }
}

TEST_CASE("check refuses what the function cannot take and names what it can") {
  test::Fixture fx;
  add_fiji(fx, "");
  const PciAddress a{0, 9, 0, 0};
  auto bars = rebar::read(fx.root(), a);
  REQUIRE(bars);
  CHECK(rebar::check(fx.root(), a, *bars, {0, 13 /* 8G */}).error().message ==
        "BAR 0 does not support 8G; it supports 256M 512M 1G 2G 4G");
  CHECK(rebar::check(fx.root(), a, *bars, {2, 8}).error().message ==
        "BAR 2 is not resizable; its Resizable BAR capability covers BAR 0");
  CHECK(rebar::check(fx.root(), a, {}, {0, 8}).error().exit == Exit::usage);
  CHECK(rebar::check(fx.root(), a, *bars, {0, 12 /* 4G */}));
  // The kernel's file: the bitmap of supported sizes.
  CHECK(fx.read(rebar::resize_path(a, 0)) == "0000000000001f00");
}

TEST_CASE("check on a kernel without resourceN_resize: exit 1, naming the kernel that has it") {
  test::Fixture fx;
  add_fiji(fx, "", false);
  const PciAddress a{0, 9, 0, 0};
  auto bars = rebar::read(fx.root(), a);
  REQUIRE(bars);
  auto e = rebar::check(fx.root(), a, *bars, {0, 12});
  REQUIRE_FALSE(e);
  CHECK(e.error().exit == Exit::failed);
  CHECK(e.error().message.find("needs Linux 6.1 or later") != std::string::npos);
}
