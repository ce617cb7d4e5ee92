#include "fake_arbiter.hpp"

#include <cerrno>

#include "pt/pci.hpp"

namespace pt::test {

namespace {
// vga_str_to_iostate: a prefix match, and io, mem and io+mem all mean both.
std::optional<unsigned> kernel_state(std::string_view s) {
  if (s.starts_with("none")) return 0u;
  if (s.starts_with("io+mem") || s.starts_with("io") || s.starts_with("mem")) return vga::kIoMem;
  return std::nullopt;
}
}  // namespace

FakeArbiter::FakeArbiter(Fixture& fx) : fx_(fx) {
  auto all = scan_devices(fx.root(), ScanOptions{.names = false});
  if (!all) return;
  for (const auto& d : *all) {
    if (!is_vga_class(d)) continue;
    Card c;
    if (d.boot_vga.value_or(false)) c.owns = vga::kIoMem;
    cards[d.addr.str()] = c;
  }
}

int FakeArbiter::count() const {
  int n = 0;
  for (const auto& [bdf, c] : cards)
    if (c.decodes) ++n;
  return n;
}

Status FakeArbiter::available() {
  if (unavailable) return std::unexpected(*unavailable);
  return {};
}

Status FakeArbiter::write(const std::string& text) {
  log.push_back(text);
  if (text.starts_with("target ")) {
    auto bdf = text.substr(std::string_view("target PCI:").size());
    if (!text.starts_with("target PCI:") || !cards.count(bdf))
      return fail(kArbiterPath, "no such VGA device", ENODEV);
    target_ = bdf;
    return {};
  }
  if (fail_command) {
    int e = *fail_command;
    fail_command.reset();
    return fail(kArbiterPath, "writing \"" + text + "\" failed (injected)", e);
  }
  if (!target_) return fail(kArbiterPath, "no target", ENODEV);
  Card& c = cards.at(*target_);
  if (text.starts_with("decodes ")) {
    auto st = kernel_state(std::string_view(text).substr(8));
    if (!st) return fail(kArbiterPath, "bad state", EPROTO);
    // "don't let userspace futz with kernel driver decodes"
    if (has_decode_callback(fx_.driver_of(*target_))) return {};
    unsigned removed = c.decodes & ~*st & c.locks;
    c.decodes = *st;
    if (removed) {
      c.locks &= ~removed;
      if (removed & vga::kIo) c.io_lock_cnt = 0;
      if (removed & vga::kMem) c.mem_lock_cnt = 0;
    }
    return {};
  }
  if (text.starts_with("lock ")) {
    auto st = kernel_state(std::string_view(text).substr(5));
    if (!st || *st == 0) return fail(kArbiterPath, "bad state", EPROTO);
    for (auto& [bdf, other] : cards) {
      if (bdf == *target_) continue;
      if (other.locks & *st)
        return fail(kArbiterPath, "writing \"" + text + "\" would wait for " + bdf + "'s lock", 0,
                    Exit::timeout);
      other.owns &= ~*st;
    }
    c.owns |= *st;
    c.locks |= *st;
    ++c.io_lock_cnt;
    ++c.mem_lock_cnt;
    auto& mine = client_[*target_];
    ++mine.first;
    ++mine.second;
    return {};
  }
  if (text.starts_with("unlock ")) {
    auto rest = std::string_view(text).substr(7);
    auto st = rest.starts_with("all") ? std::optional<unsigned>(vga::kIoMem) : kernel_state(rest);
    if (!st) return fail(kArbiterPath, "bad state", EPROTO);
    auto& mine = client_[*target_];
    if (((*st & vga::kIo) && mine.first == 0) || ((*st & vga::kMem) && mine.second == 0))
      return fail(kArbiterPath, "not locked by this client", EINVAL);
    if (*st & vga::kIo) --mine.first, --c.io_lock_cnt;
    if (*st & vga::kMem) --mine.second, --c.mem_lock_cnt;
    if (c.io_lock_cnt == 0) c.locks &= ~vga::kIo;
    if (c.mem_lock_cnt == 0) c.locks &= ~vga::kMem;
    return {};
  }
  return fail(kArbiterPath, "unknown command", EPROTO);
}

Result<std::string> FakeArbiter::status_line(const PciAddress& dev) {
  if (unavailable) return std::unexpected(*unavailable);
  if (auto r = write("target PCI:" + dev.str()); !r) return std::unexpected(r.error());
  if (auto it = raw.find(dev.str()); it != raw.end()) return it->second;
  Card& c = cards.at(dev.str());
  if (auto it = callback_decodes.find(fx_.driver_of(dev.str())); it != callback_decodes.end())
    c.decodes = it->second;
  vga::Status s{true,   count(), dev.str(),     c.decodes,
                c.owns, c.locks, c.io_lock_cnt, c.mem_lock_cnt};
  return vga::format_status(s) + "\n";
}

Status FakeArbiter::command(const PciAddress& dev, std::string_view text) {
  if (unavailable) return std::unexpected(*unavailable);
  if (auto r = write("target PCI:" + dev.str()); !r) return r;
  return write(std::string(text));
}

void FakeArbiter::close() {
  for (auto& [bdf, n] : client_) {
    Card& c = cards.at(bdf);
    c.io_lock_cnt -= n.first;
    c.mem_lock_cnt -= n.second;
    if (c.io_lock_cnt == 0) c.locks &= ~vga::kIo;
    if (c.mem_lock_cnt == 0) c.locks &= ~vga::kMem;
  }
  client_.clear();
  target_.reset();
}

}  // namespace pt::test
