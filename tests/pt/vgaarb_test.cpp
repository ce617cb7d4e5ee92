#include "pt/vgaarb.hpp"

#include <doctest/doctest.h>

#include "fake_arbiter.hpp"
#include "fixture.hpp"

using namespace pt;

namespace {
// Status lines as the Debian 5.10, 6.1 and 6.12 kernels printed them in the
// VM testbed, identical on all three (tests/fuzz/corpus/vgaarb holds them).
const char* kBochs = "count:2,PCI:0000:00:01.0,decodes=io+mem,owns=io+mem,locks=none(0:0)\n";
const char* kVirtio = "count:2,PCI:0000:01:00.0,decodes=io+mem,owns=none,locks=none(0:0)\n";
const char* kNone = "count:1,PCI:0000:01:00.0,decodes=none,owns=none,locks=none(0:0)\n";
const char* kLocked = "count:2,PCI:0000:01:00.0,decodes=io+mem,owns=io+mem,locks=io+mem(1:1)\n";
const char* kLocked2 = "count:2,PCI:0000:01:00.0,decodes=io+mem,owns=io+mem,locks=io+mem(2:2)\n";
}  // namespace

TEST_CASE("the status line of a card that decodes and owns everything") {
  auto s = vga::parse_status(kBochs);
  REQUIRE(s);
  CHECK(s->valid);
  CHECK(s->count == 2);
  CHECK(s->device == "0000:00:01.0");
  CHECK(s->decodes == vga::kIoMem);
  CHECK(s->owns == vga::kIoMem);
  CHECK(s->locks == 0);
  CHECK(s->io_locks == 0);
  CHECK(s->mem_locks == 0);
}

TEST_CASE("status lines after decodes none and with locks held") {
  auto v = vga::parse_status(kVirtio);
  REQUIRE(v);
  CHECK(v->owns == 0);
  auto n = vga::parse_status(kNone);
  REQUIRE(n);
  CHECK(n->count == 1);
  CHECK(n->decodes == 0);
  auto l = vga::parse_status(kLocked);
  REQUIRE(l);
  CHECK(l->locks == vga::kIoMem);
  CHECK(l->io_locks == 1);
  CHECK(l->mem_locks == 1);
  auto l2 = vga::parse_status(kLocked2);
  REQUIRE(l2);
  CHECK(l2->io_locks == 2);
  CHECK(l2->mem_locks == 2);
}

TEST_CASE("every state word in every field, and the lock counts apart") {
  for (const char* d : {"none", "io", "mem", "io+mem"})
    for (const char* o : {"none", "io", "mem", "io+mem"})
      for (const char* l : {"none", "io", "mem", "io+mem"}) {
        std::string line = std::string("count:1,PCI:0000:3b:00.0,decodes=") + d + ",owns=" + o +
                           ",locks=" + l + "(3:4294967295)";
        auto s = vga::parse_status(line);
        REQUIRE_MESSAGE(s, line);
        CHECK(std::string(vga::state_name(s->decodes)) == d);
        CHECK(std::string(vga::state_name(s->owns)) == o);
        CHECK(std::string(vga::state_name(s->locks)) == l);
        CHECK(s->io_locks == 3);
        CHECK(s->mem_locks == 4294967295u);
        CHECK(vga::format_status(*s) == line);
      }
}

TEST_CASE("invalid: no target, or the card went away") {
  for (const char* t : {"invalid", "invalid\n"}) {
    auto s = vga::parse_status(t);
    REQUIRE(s);
    CHECK_FALSE(s->valid);
    CHECK(vga::format_status(*s) == "invalid");
  }
}

TEST_CASE("wide PCI domains (VMD) and a negative count parse") {
  auto s = vga::parse_status("count:-1,PCI:10000:e1:00.0,decodes=none,owns=none,locks=none(0:0)");
  REQUIRE(s);
  CHECK(s->count == -1);
  CHECK(s->device == "10000:e1:00.0");
}

TEST_CASE("anything a kernel does not print is refused") {
  for (const char* bad : {"", "\n", "invalid\n\n",
                          "count:2,PCI:0000:00:01.0,decodes=io+mem,owns=io+mem,locks=none(0:0)\n\n",
                          "count:2,PCI:0000:00:01.0,decodes=io+mem,owns=io+mem,locks=none(0:0",
                          "count:02,PCI:0000:00:01.0,decodes=io,owns=io,locks=io(0:0)",
                          "count:2,PCI:0000:00:01.0,decodes=all,owns=io,locks=io(0:0)",
                          "count:2,PCI:0000:00:01.0,decodes=io mem,owns=io,locks=io(0:0)",
                          "count:2,PCI:00:01.0,decodes=io,owns=io,locks=io(0:0)",
                          "count:2,PCI:0000:00:01.8,decodes=io,owns=io,locks=io(0:0)",
                          "count:2,PCI:0000:00:01.0,decodes=io,owns=io,locks=io(4294967296:0)",
                          "count:-0,PCI:0000:00:01.0,decodes=io,owns=io,locks=io(0:0)",
                          "count:2147483648,PCI:0000:00:01.0,decodes=io,owns=io,locks=io(0:0)",
                          "count:,PCI:0000:00:01.0,decodes=io,owns=io,locks=io(0:0)",
                          "count:2,PCI:0000:00:01.0,decodes=io,owns=io,locks=io(0:0) ",
                          "COUNT:2,PCI:0000:00:01.0,decodes=io,owns=io,locks=io(0:0)"})
    CHECK_MESSAGE(!vga::parse_status(bad), bad);
}

TEST_CASE("state words are exactly the four") {
  CHECK(vga::parse_state("io+mem") == vga::kIoMem);
  CHECK(vga::parse_state("none") == 0u);
  CHECK(vga::parse_state("io") == vga::kIo);
  CHECK(vga::parse_state("mem") == vga::kMem);
  for (const char* bad : {"all", "io mem", "IO", "io+", "mem+io", "", "none "})
    CHECK_FALSE(vga::parse_state(bad));
}

TEST_CASE("VGA class: 0300 and 0001 are arbitrated, 0302 and 0380 are not") {
  Device d;
  for (auto [cls, vga] : {std::pair{0x030000u, true},
                          {0x000100u, true},
                          {0x030200u, false},
                          {0x038000u, false},
                          {0x040300u, false}}) {
    d.class_code = cls;
    CHECK(is_vga_class(d) == vga);
  }
  CHECK(has_decode_callback("vfio-pci"));
  CHECK(has_decode_callback("amdgpu"));
  CHECK_FALSE(has_decode_callback("nvidia"));
  CHECK_FALSE(has_decode_callback(""));
}

TEST_CASE("the kernel arbiter under --root: a regular file is not the kernel's device") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  auto gpu = parse_sysfs_name("0000:01:00.0").value();
  {
    KernelArbiter a(fx.root(), std::chrono::milliseconds(100));
    auto r = a.available();
    REQUIRE_FALSE(r);
    CHECK(r.error().describe().find("no VGA arbiter") != std::string::npos);
  }
  fx.write_file("/dev/vga_arbiter",
                "count:1,PCI:0000:01:00.0,decodes=io+mem,owns=io+mem,locks=none(0:0)\n");
  auto before = fx.snapshot();
  KernelArbiter a(fx.root(), std::chrono::milliseconds(100));
  auto r = a.available();
  REQUIRE_FALSE(r);
  CHECK(r.error().subject == fx.dir() + "/dev/vga_arbiter");
  CHECK(r.error().message.find("not a character device") != std::string::npos);
  CHECK_FALSE(a.status_line(gpu));
  CHECK_FALSE(a.command(gpu, "decodes none"));
  CHECK(fx.snapshot() == before);
}

TEST_CASE("kernel log: the last vgaarb messages about one device, from kmsg records") {
  test::Fixture fx;
  auto gpu = parse_sysfs_name("0000:01:00.0").value();
  CHECK_FALSE(kmsg_vgaarb_lines(fx.root(), gpu));  // no /dev/kmsg: unreadable, said so
  fx.write_file("/dev/kmsg",
                "6,120,1000,-;pci 0000:00:01.0: vgaarb: setting as boot VGA device\n"
                " SUBSYSTEM=pci\n"
                " DEVICE=+pci:0000:00:01.0\n"
                "6,121,1001,-;pci 0000:01:00.0: vgaarb: VGA device added: "
                "decodes=io+mem,owns=none,locks=none\n"
                "6,122,1002,-;virtio-pci 0000:01:00.0: enabling device (0000 -> 0003)\n"
                "6,300,9000,-;vfio-pci 0000:01:00.0: vgaarb: changed VGA decodes: "
                "olddecodes=io+mem,decodes=none:owns=none\n"
                "6,301,9001,-;virtio-pci 0000:01:00.0: vgaarb: VGA decodes changed: "
                "olddecodes=none,decodes=io+mem:owns=none\n");
  auto lines = kmsg_vgaarb_lines(fx.root(), gpu);
  REQUIRE(lines);
  REQUIRE(lines->size() == 3);
  CHECK((*lines)[0] ==
        "pci 0000:01:00.0: vgaarb: VGA device added: decodes=io+mem,owns=none,locks=none");
  CHECK((*lines)[1] ==
        "vfio-pci 0000:01:00.0: vgaarb: changed VGA decodes: "
        "olddecodes=io+mem,decodes=none:owns=none");
  // 6.12 words it the other way round.
  CHECK((*lines)[2] ==
        "virtio-pci 0000:01:00.0: vgaarb: VGA decodes changed: "
        "olddecodes=none,decodes=io+mem:owns=none");
  auto last = kmsg_vgaarb_lines(fx.root(), gpu, 1);
  REQUIRE(last);
  REQUIRE(last->size() == 1);
  CHECK(last->front().starts_with("virtio-pci"));
}

TEST_CASE("the fake arbiter plays the kernel: targets, decodes, callbacks, count, locks") {
  test::Fixture fx;
  test::Fixture::gpu_with_audio(fx);
  test::FakeArbiter a(fx);
  auto gpu = parse_sysfs_name("0000:01:00.0").value();
  auto audio = parse_sysfs_name("0000:01:00.1").value();
  CHECK_FALSE(a.status_line(audio));  // not a VGA device: ENODEV, like the kernel's target
  auto s = a.status(gpu);
  REQUIRE(s);
  CHECK(s->count == 1);
  CHECK(s->owns == vga::kIoMem);  // the boot VGA device
  REQUIRE(a.command(gpu, "decodes none"));
  CHECK(a.status(gpu)->decodes == 0);
  CHECK(a.count() == 0);
  REQUIRE(a.command(gpu, "decodes io"));
  CHECK(a.status(gpu)->decodes == vga::kIoMem);
  REQUIRE(
      fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0", WriteKind::blocking));
  REQUIRE(
      fx.kernel().write("/sys/bus/pci/drivers/vfio-pci/bind", "0000:01:00.0", WriteKind::blocking));
  REQUIRE(a.command(gpu, "decodes none"));  // accepted, and ignored
  CHECK(a.status(gpu)->decodes == vga::kIoMem);
  REQUIRE(a.command(gpu, "lock io+mem"));
  REQUIRE(a.command(gpu, "lock io+mem"));
  CHECK(vga::format_status(*a.status(gpu)) ==
        "count:1,PCI:0000:01:00.0,decodes=io+mem,owns=io+mem,locks=io+mem(2:2)");
  REQUIRE(a.command(gpu, "unlock io+mem"));
  CHECK(a.status(gpu)->io_locks == 1);
  a.close();
  CHECK(a.card("0000:01:00.0").locks == 0);
  CHECK_FALSE(a.command(gpu, "unlock io+mem"));  // nothing of this client's is locked
  CHECK_FALSE(a.command(gpu, "decodes all"));
}
