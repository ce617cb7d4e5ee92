#include "pt/vgaarb_ops.hpp"

#include <doctest/doctest.h>

#include "fake_arbiter.hpp"
#include "pt/journal.hpp"
#include "fixture.hpp"

using namespace pt;
using namespace std::chrono_literals;

namespace {

// gpu_with_audio: 01:00.0 VGA on nvidia, the boot VGA device.
struct Env {
  test::Fixture fx;
  std::optional<test::FakeArbiter> arb;
  Context ctx;
  Device gpu;
  Env() {
    test::Fixture::gpu_with_audio(fx);
    arb.emplace(fx);
    ctx = fx.context();
    ctx.arbiter = &*arb;
    ctx.lock_timeout = 2000ms;
    gpu = read_device(fx.root(), PciAddress{0, 1, 0, 0}).value();
  }
};

}  // namespace

TEST_CASE("decodes: a dry run only reads; a real one writes and proves the change") {
  Env e;
  e.ctx.dry_run = true;
  auto dry = vgaarb::decodes(e.ctx, e.gpu, 0);
  REQUIRE(dry);
  CHECK(dry->before.decodes == vga::kIoMem);
  CHECK(e.arb->card("0000:01:00.0").decodes == vga::kIoMem);
  e.ctx.dry_run = false;
  auto c = vgaarb::decodes(e.ctx, e.gpu, 0);
  REQUIRE(c);
  CHECK_FALSE(c->already);
  CHECK(c->after.decodes == 0);
  auto again = vgaarb::decodes(e.ctx, e.gpu, 0);
  REQUIRE(again);
  CHECK(again->already);
}

TEST_CASE("restore without a journal record returns to io+mem and says so") {
  Env e;
  REQUIRE(vgaarb::decodes(e.ctx, e.gpu, 0));
  auto r = vgaarb::restore(e.ctx, e.gpu);
  REQUIRE(r);
  CHECK(r->target == vga::kIoMem);
  CHECK(r->source.starts_with("no journal record"));
  CHECK_FALSE(r->dropped);
  CHECK(r->change.after.decodes == vga::kIoMem);
}

TEST_CASE("restore: a journaled none on the boot VGA is the driver's, and io+mem comes back") {
  Env e;
  REQUIRE(e.gpu.boot_vga.value_or(false));
  REQUIRE(vgaarb::decodes(e.ctx, e.gpu, 0));  // what nvidia's probe leaves
  Journal j;
  j.vga["0000:01:00.0"] = VgaRecord{"none", "none", true, "nvidia", 1};
  REQUIRE(save_journal(e.ctx.root, j));
  auto r = vgaarb::restore(e.ctx, e.gpu);
  REQUIRE(r);
  CHECK(r->target == vga::kIoMem);
  CHECK(r->source.find("from the journal: decodes=none") == 0);
  CHECK(r->source.find("the boot VGA gets io+mem") != std::string::npos);
  CHECK(r->dropped);
  CHECK(e.arb->card("0000:01:00.0").decodes == vga::kIoMem);
  CHECK(load_journal(e.ctx.root).value().vga.empty());
}

TEST_CASE("restore: a journaled none on a VGA function that is not the boot VGA stays none") {
  Env e;
  e.gpu.boot_vga = false;
  REQUIRE(vgaarb::decodes(e.ctx, e.gpu, 0));
  Journal j;
  j.vga["0000:01:00.0"] = VgaRecord{"none", "none", false, "nvidia", 1};
  REQUIRE(save_journal(e.ctx.root, j));
  auto r = vgaarb::restore(e.ctx, e.gpu);
  REQUIRE(r);
  CHECK(r->target == 0);
  CHECK(e.arb->card("0000:01:00.0").decodes == 0);
}

TEST_CASE("run_locked runs the command under the lock and returns its status") {
  Env e;
  auto ok = vgaarb::run_locked(e.ctx, e.gpu, vga::kIoMem, {"sh", "-c", "exit 3"});
  REQUIRE(ok);
  CHECK(*ok == 3);
  CHECK(e.arb->card("0000:01:00.0").locks == 0);
  auto missing = vgaarb::run_locked(e.ctx, e.gpu, vga::kIoMem, {"/nonexistent/pt-test-cmd"});
  REQUIRE(missing);
  CHECK(*missing == 127);
}
