// DRM topology from /sys/class/drm on fixture trees: cards, render nodes,
// connectors, by-path links, PCI devices, debugfs master, fbcon.
#include "pt/drm.hpp"

#include <doctest/doctest.h>

#include "fixture.hpp"

using namespace pt;
using pt::test::FakeConnector;
using pt::test::FakeDrmCard;
using pt::test::Fixture;

namespace {

// gpu_with_audio (nvidia on 01:00.0) with a card0 of two connectors and the
// boot display on 00:02.0 as card1.
void two_cards(Fixture& fx) {
  Fixture::gpu_with_audio(fx);
  fx.add_drm_card(FakeDrmCard{.bdf = "0000:01:00.0",
                              .minor = 0,
                              .render = 128,
                              .driver_name = "nvidia-drm",
                              .connectors = {FakeConnector{.name = "HDMI-A-1", .modes = 5},
                                             FakeConnector{.name = "DP-1",
                                                           .status = "disconnected",
                                                           .enabled = "disabled",
                                                           .dpms = "Off",
                                                           .modes = 0}},
                              .fb = 0});
  fx.add_driver("bochs-drm", "bochs");
  fx.add_device(pt::test::FakeDevice{.bdf = "0000:00:02.0",
                                     .vendor = 0x1234,
                                     .device = 0x1111,
                                     .class_code = 0x030000,
                                     .driver = "bochs-drm",
                                     .boot_vga = true});
  fx.add_drm_card(FakeDrmCard{.bdf = "0000:00:02.0",
                              .minor = 1,
                              .driver_name = "bochs-drm",
                              .connectors = {FakeConnector{.name = "Virtual-1"}},
                              .by_path = false,
                              .master = "Xorg",
                              .fb = 1});
}

}  // namespace

TEST_CASE("scan_cards maps each card to its PCI device, nodes and connectors") {
  Fixture fx;
  two_cards(fx);
  auto cards = drm::scan_cards(fx.root());
  REQUIRE(cards.size() == 2);
  const auto& c0 = cards[0];
  CHECK(c0.name == "card0");
  CHECK(c0.minor == 0);
  CHECK(c0.node == "/dev/dri/card0");
  CHECK(c0.node_exists);
  CHECK(c0.render == "/dev/dri/renderD128");
  CHECK(c0.by_path == "/dev/dri/by-path/pci-0000:01:00.0-card");
  REQUIRE(c0.pci);
  CHECK(c0.pci->str() == "0000:01:00.0");
  CHECK(c0.pci_driver == "nvidia");
  REQUIRE(c0.connectors.size() == 2);
  // list_dir sorts: DP-1 before HDMI-A-1.
  CHECK(c0.connectors[0].name == "DP-1");
  CHECK(c0.connectors[0].status == "disconnected");
  CHECK(c0.connectors[0].enabled == "disabled");
  CHECK(c0.connectors[0].dpms == "Off");
  CHECK(c0.connectors[0].modes == 0);
  CHECK(c0.connectors[0].path == "/sys/class/drm/card0-DP-1");
  CHECK(c0.connectors[1].name == "HDMI-A-1");
  CHECK(c0.connectors[1].status == "connected");
  CHECK(c0.connectors[1].modes == 5);
  const auto& c1 = cards[1];
  CHECK(c1.name == "card1");
  CHECK(c1.render.empty());
  CHECK(c1.by_path.empty());
  CHECK(c1.pci->str() == "0000:00:02.0");
  CHECK(c1.pci_driver == "bochs-drm");
  CHECK(drm::cards_of(cards, *c1.pci).size() == 1);
  CHECK(drm::cards_of(cards, PciAddress{0, 1, 0, 1}).empty());
}

TEST_CASE("a card disappears with its driver and comes back on bind") {
  Fixture fx;
  two_cards(fx);
  REQUIRE(
      fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0", WriteKind::blocking));
  auto cards = drm::scan_cards(fx.root());
  REQUIRE(cards.size() == 1);  // card0's class link dangles and is skipped
  CHECK(cards[0].name == "card1");
  CHECK_FALSE(fx.exists("/dev/dri/card0"));
  REQUIRE(
      fx.kernel().write("/sys/bus/pci/drivers/nvidia/bind", "0000:01:00.0", WriteKind::blocking));
  cards = drm::scan_cards(fx.root());
  REQUIRE(cards.size() == 2);
  CHECK(cards[0].connectors.size() == 2);
  CHECK(cards[0].node_exists);
}

namespace {
// A virtio-vga GPU on virtio-pci behind a root port, as in the VM testbed.
void add_virtio_gpu(Fixture& fx) {
  fx.add_driver("virtio-pci", "virtio_pci");
  fx.add_bridge("0000:00:02.0");
  fx.add_device(pt::test::FakeDevice{.bdf = "0000:01:00.0",
                                     .vendor = 0x1af4,
                                     .device = 0x1050,
                                     .class_code = 0x030000,
                                     .parent = "0000:00:02.0",
                                     .driver = "virtio-pci"});
}
}  // namespace

TEST_CASE("5.10's virtio-gpu layout: the card under virtioN still maps to the PCI function") {
  Fixture fx;
  add_virtio_gpu(fx);
  fx.add_drm_card(FakeDrmCard{.bdf = "0000:01:00.0",
                              .render = 128,
                              .driver_name = "virtio_gpu",
                              .connectors = {FakeConnector{.name = "Virtual-1"}},
                              .under_virtio = true});
  auto cards = drm::scan_cards(fx.root());
  REQUIRE(cards.size() == 1);
  REQUIRE(cards[0].pci);
  CHECK(cards[0].pci->str() == "0000:01:00.0");
  CHECK(cards[0].render == "/dev/dri/renderD128");
  CHECK(cards[0].connectors.size() == 1);
}

TEST_CASE("find_card: the card of one PCI device, topology only, as scan_cards maps it") {
  Fixture fx;
  two_cards(fx);
  auto c0 = drm::find_card(fx.root(), PciAddress{0, 1, 0, 0});
  REQUIRE(c0);
  CHECK(c0->name == "card0");
  CHECK(c0->minor == 0);
  CHECK(c0->node == "/dev/dri/card0");
  CHECK(c0->node_exists);
  REQUIRE(c0->pci);
  CHECK(c0->pci->str() == "0000:01:00.0");
  // What wait does not need stays empty: no connector reads, no render node.
  CHECK(c0->connectors.empty());
  CHECK(c0->render.empty());
  CHECK(c0->pci_driver.empty());
  auto c1 = drm::find_card(fx.root(), PciAddress{0, 0, 2, 0});
  REQUIRE(c1);
  CHECK(c1->name == "card1");
  CHECK_FALSE(drm::find_card(fx.root(), PciAddress{0, 1, 0, 1}));
  // Unbound: the class link dangles, so no card.
  REQUIRE(
      fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0", WriteKind::blocking));
  CHECK_FALSE(drm::find_card(fx.root(), PciAddress{0, 1, 0, 0}));
  CHECK(drm::find_card(fx.root(), PciAddress{0, 0, 2, 0}));
  // The root backend calls it KMS by its connectors, which find_card leaves out.
  REQUIRE(
      fx.kernel().write("/sys/bus/pci/drivers/nvidia/bind", "0000:01:00.0", WriteKind::blocking));
  auto back = drm::find_card(fx.root(), PciAddress{0, 1, 0, 0});
  REQUIRE(back);
  auto backend = drm::make_root_backend(fx.root());
  auto kms = backend->kms_readable(*back);
  REQUIRE(kms);
  CHECK(*kms);
}

TEST_CASE("find_card: 5.10's virtio-gpu layout, and a render-only card is no KMS") {
  Fixture fx;
  add_virtio_gpu(fx);
  fx.add_drm_card(FakeDrmCard{
      .bdf = "0000:01:00.0", .render = 128, .driver_name = "virtio_gpu", .under_virtio = true});
  auto c = drm::find_card(fx.root(), PciAddress{0, 1, 0, 0});
  REQUIRE(c);
  CHECK(c->name == "card0");
  auto backend = drm::make_root_backend(fx.root());
  auto kms = backend->kms_readable(*c);
  REQUIRE(kms);
  CHECK_FALSE(*kms);
}

TEST_CASE("no /sys/class/drm: no cards") {
  Fixture fx;
  Fixture::gpu_on_root_bus(fx);
  CHECK(drm::scan_cards(fx.root()).empty());
}

TEST_CASE("master from debugfs clients") {
  Fixture fx;
  two_cards(fx);
  auto m0 = drm::master_from_debugfs(fx.root(), 0);
  REQUIRE(m0);
  CHECK(m0->exists == false);
  auto m1 = drm::master_from_debugfs(fx.root(), 1);
  REQUIRE(m1);
  CHECK(m1->exists == true);
  CHECK(m1->holder == "Xorg (pid 1234)");
  CHECK_FALSE(drm::master_from_debugfs(fx.root(), 7));
}

TEST_CASE("the root backend reads sysfs only and says so") {
  Fixture fx;
  two_cards(fx);
  auto cards = drm::scan_cards(fx.root());
  auto b = drm::make_backend(fx.root());
  auto k = b->read(cards[0]);
  REQUIRE(k);
  CHECK(k->from_sysfs);
  CHECK(k->kms == true);
  CHECK(k->driver == "nvidia-drm");
  CHECK(k->connectors.size() == 2);
  CHECK(k->crtcs.empty());
  CHECK(k->master.exists == false);
  CHECK(b->devices().empty());
  CHECK_FALSE(b->console_fb(1));
}

TEST_CASE("fbcon: bound, this card's framebuffer, and the console map") {
  Fixture fx;
  two_cards(fx);
  auto cards = drm::scan_cards(fx.root());
  auto b = drm::make_root_backend(fx.root());
  SUBCASE("no vtconsole bound: not on the card") {
    fx.add_fbcon(false);
    auto f = drm::fbcon_state(fx.root(), *b, cards[0]);
    CHECK_FALSE(f.bound);
    CHECK(f.on_card == false);
    CHECK(f.card_fb == 0);
  }
  SUBCASE("bound, but the console map cannot be read under --root") {
    fx.add_fbcon(true);
    auto f = drm::fbcon_state(fx.root(), *b, cards[1]);
    CHECK(f.bound);
    CHECK(f.card_fb == 1);
    CHECK(f.fg_console == 1);
    CHECK_FALSE(f.on_card);
    CHECK(f.how.find("under --root") != std::string::npos);
  }
}

TEST_CASE("card_of and check_connector: the card of a device, and connectors by name") {
  Fixture fx;
  two_cards(fx);
  auto card = drm::card_of(fx.root(), PciAddress{0, 1, 0, 0});
  REQUIRE(card);
  CHECK(card->name == "card0");
  CHECK_FALSE(drm::card_of(fx.root(), PciAddress{0, 1, 0, 1}));
  REQUIRE(drm::connector_of(*card, "DP-1"));
  CHECK(drm::connector_of(*card, "DP-1")->status == "disconnected");
  CHECK_FALSE(drm::connector_of(*card, "DP-9"));
  CHECK(drm::check_connector(*card, ""));
  CHECK(drm::check_connector(*card, "HDMI-A-1"));
  auto bad = drm::check_connector(*card, "DP-9");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "no such connector on card0; its connectors are: DP-1, HDMI-A-1");
}

TEST_CASE("examine: the verdict's input, with KMS and fbcon when the card can be read") {
  Fixture fx;
  two_cards(fx);
  auto b = drm::make_root_backend(fx.root());
  auto dev = read_device(fx.root(), PciAddress{0, 1, 0, 0});
  REQUIRE(dev);
  auto h = drm::examine(fx.root(), *b, *dev);
  CHECK(h.input.device == "0000:01:00.0");
  CHECK(h.input.driver == "nvidia");
  CHECK(h.input.card);
  CHECK(h.input.node);
  CHECK(h.input.kms == true);
  REQUIRE(h.input.connectors.size() == 2);
  CHECK(h.input.connectors[0].name == "DP-1");
  CHECK_FALSE(h.input.connectors[0].crtc_id);  // from sysfs: no CRTC state
  REQUIRE(h.card);
  REQUIRE(h.kms);
  CHECK(h.kms->from_sysfs);
  CHECK(h.fbcon);

  REQUIRE(fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0",
                            WriteKind::blocking));
  dev = read_device(fx.root(), PciAddress{0, 1, 0, 0});
  REQUIRE(dev);
  h = drm::examine(fx.root(), *b, *dev);
  CHECK(h.input.driver.empty());
  CHECK_FALSE(h.input.card);
  CHECK_FALSE(h.card);
  CHECK_FALSE(h.kms);
  CHECK_FALSE(h.fbcon);
}

TEST_CASE("probe writes detect under the lock and reads each connector back") {
  Fixture fx;
  two_cards(fx);
  fx.on_detect("card0-HDMI-A-1", "disconnected", 0);
  Context ctx;
  ctx.root = fx.root();
  ctx.writer = &fx.kernel();
  ctx.lock_timeout = std::chrono::milliseconds(1000);
  auto card = drm::card_of(fx.root(), PciAddress{0, 1, 0, 0});
  REQUIRE(card);
  auto p = drm::probe(ctx, PciAddress{0, 1, 0, 0}, card->connectors);
  REQUIRE(p);
  REQUIRE(p->size() == 2);
  // In the card's order: DP-1 (unchanged), then HDMI-A-1.
  CHECK((*p)[0].before.name == "DP-1");
  CHECK((*p)[0].status == "disconnected");
  CHECK_FALSE((*p)[0].changed);
  CHECK((*p)[1].before.name == "HDMI-A-1");
  CHECK((*p)[1].before.status == "connected");
  CHECK((*p)[1].status == "disconnected");
  CHECK((*p)[1].modes == 0);
  CHECK((*p)[1].changed);
  REQUIRE(fx.kernel().log.size() == 2);
  CHECK(fx.kernel().log[0].first == "/sys/class/drm/card0-DP-1/status");
  CHECK(fx.kernel().log[1].first == "/sys/class/drm/card0-HDMI-A-1/status");
}
