// A simulated /dev/vga_arbiter for the tests, with the kernel's semantics
// (drivers/pci/vgaarb.c): one client's target, decodes updates and the
// decode count, decodes writes ignored while the bound driver has a decode
// callback, locks that take ownership from the other cards, with counts.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "pt/vgaarb.hpp"

namespace pt::test {

class FakeArbiter final : public Arbiter {
 public:
  struct Card {
    unsigned decodes = vga::kIoMem;
    unsigned owns = 0;
    unsigned locks = 0;
    unsigned io_lock_cnt = 0;
    unsigned mem_lock_cnt = 0;
  };

  // Every VGA-class function of FX's tree is a card, decoding io+mem; the
  // boot VGA device owns io+mem. Drivers are read from the tree at each
  // decodes write, so binds through the fixture's kernel count.
  explicit FakeArbiter(Fixture& fx);

  Status available() override;
  Result<std::string> status_line(const PciAddress& dev) override;
  Status command(const PciAddress& dev, std::string_view text) override;

  // What closing the file does: this client's locks are released.
  void close();
  int count() const;  // cards that decode legacy resources
  Card& card(const std::string& bdf) { return cards.at(bdf); }

  std::map<std::string, Card> cards;
  std::vector<std::string> log;            // every write, "target PCI:0000:01:00.0", "decodes none"
  std::optional<Error> unavailable;        // set: available() and every call fail with it
  std::optional<int> fail_command;         // set: the next non-target write fails with this errno
  std::map<std::string, std::string> raw;  // a status line to return verbatim for a device
  // What a driver's decode callback sets when it is bound (vfio-pci with
  // disable_vga: none): a card on such a driver reports it, as the kernel
  // does once the driver's vga_client_register ran.
  std::map<std::string, unsigned> callback_decodes;

 private:
  Status write(const std::string& text);
  Fixture& fx_;
  std::optional<std::string> target_;
  std::map<std::string, std::pair<unsigned, unsigned>>
      client_;  // this client's io, mem lock counts
};

}  // namespace pt::test
