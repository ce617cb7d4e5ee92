#include "pt/vgaarb_ops.hpp"

#include <cerrno>

#include "pt/pci_config.hpp"
#include "pt/lock.hpp"
#include "pt/render.hpp"
#include "pt/spawn.hpp"
#include "pt/try.hpp"

namespace pt::vgaarb {

namespace {

bool decodes_took(unsigned requested, unsigned now) {
  return now == requested || now == effective_decodes(requested);
}

std::string ignored_message(const Device& d, const std::string& text, const vga::Status& now) {
  std::string drv = d.driver;
  std::string why;
  if (drv.empty())
    why = "No driver is bound, so the kernel refused it for another reason; see 'pt-vgaarb show " +
          d.addr.str() + "'";
  else
    why = "Its driver, " + drv + ", " +
          (has_decode_callback(drv) ? "registered" : "must have registered") +
          " a VGA decode callback with the arbiter, and while such a driver is bound the kernel "
          "ignores decodes "
          "written from user space (only the driver sets them; vfio-pci, i915, amdgpu, radeon and "
          "nouveau do). "
          "Return the device to a driver without a callback (pt-bind attach " +
          d.addr.str() + "; nvidia has none), then run 'pt-vgaarb restore " + d.addr.str() + "'";
  return "the kernel ignored " + show_value(text) + ": decodes is still " +
         vga::state_name(now.decodes) + ". " + why;
}

// Writes decodes STATE to DEV and proves it by reading back.
Result<Change> set_decodes(Context& ctx, const Device& d, unsigned state) {
  Change c;
  const auto before = PT_TRY(ctx.arbiter->status(d.addr));
  if (!before.valid)
    return fail(d.addr.str(), "the arbiter answers 'invalid' for it; it no longer knows the device",
                ENODEV);
  c.before = before;
  if (before.decodes == effective_decodes(state) || before.decodes == state) {
    c.after = before;
    c.already = true;
    return c;
  }
  const std::string text = std::string("decodes ") + vga::state_name(state);
  PT_TRY(ctx.arbiter->command(d.addr, text));
  const auto after = PT_TRY(ctx.arbiter->status(d.addr));
  c.after = after;
  if (after.decodes == before.decodes) return fail(d.addr.str(), ignored_message(d, text, after));
  if (!decodes_took(state, after.decodes))
    return fail(d.addr.str(),
                "wrote " + show_value(text) + " but decodes became " +
                    vga::state_name(after.decodes) + " (was " + vga::state_name(before.decodes) +
                    "); the arbiter now says " + vga::format_status(after),
                0, Exit::not_rolled_back);
  return c;
}

// Display functions and the pre-2.0 VGA class: what the arbiter could manage.
bool listed(const Device& d) {
  return d.is_display() || is_vga_class(d);
}

Row make_row(Context& ctx, const Device& d, const Status& arbiter) {
  Row r;
  r.dev = d;
  r.arbitrated = is_vga_class(d);
  if (auto cfg = load_config(ctx.root, d.addr, 64); cfg && cfg->present())
    r.command = cfg->command() & 3u;
  if (!r.arbitrated) {
    r.note = "not arbitrated (class " + render::class_hex(d.class_id()) + ")";
    return r;
  }
  if (!arbiter) {
    r.note = "arbiter unavailable: " + arbiter.error().describe();
    return r;
  }
  auto line = ctx.arbiter->status_line(d.addr);
  if (!line) {
    r.note = "arbiter: " + line.error().describe();
    return r;
  }
  r.line = *line;
  while (!r.line.empty() && r.line.back() == '\n') r.line.pop_back();
  auto st = vga::parse_status(*line);
  if (!st)
    r.note = "arbiter: unexpected status line " + show_value(r.line);
  else if (!st->valid)
    r.note = "arbiter: invalid (the kernel no longer knows this device)";
  else
    r.status = *st;
  return r;
}

}  // namespace

Status arbiter_state(Context& ctx) {
  if (!ctx.arbiter) return fail(kArbiterPath, "no arbiter in this context", ENODEV);
  return ctx.arbiter->available();
}

std::vector<Bridge> upstream_bridges(const Root& root, const Device& d) {
  std::vector<Bridge> out;
  auto parent = d.parent;
  for (int guard = 0; parent && guard < 32; ++guard) {
    Bridge b{parent->str(), std::nullopt};
    if (auto cfg = load_config(root, *parent, 64); cfg && cfg->present())
      b.vga_enable = (cfg->u16(reg::kBridgeControl) & reg::kBridgeCtlVga) != 0;
    out.push_back(b);
    auto up = read_device(root, *parent);
    parent = up ? up->parent : std::nullopt;
  }
  return out;
}

Result<Survey> survey(Context& ctx) {
  const auto all = PT_TRY(scan_devices(ctx.root, ScanOptions{.names = false}));
  Survey s{{}, arbiter_state(ctx)};
  for (const auto& d : all)
    if (listed(d)) s.rows.push_back(make_row(ctx, d, s.arbiter));
  return s;
}

Shown inspect(Context& ctx, const Device& dev) {
  Shown s{make_row(ctx, dev, arbiter_state(ctx)), upstream_bridges(ctx.root, dev),
          kmsg_vgaarb_lines(ctx.root, dev.addr), std::nullopt, std::nullopt};
  if (auto journal = load_journal(ctx.root); !journal)
    s.journal_error = journal.error();
  else if (auto it = journal->vga.find(dev.addr.str()); it != journal->vga.end())
    s.record = it->second;
  return s;
}

unsigned effective_decodes(unsigned requested) {
  return requested == 0 ? 0u : vga::kIoMem;
}

Result<Change> decodes(Context& ctx, const Device& dev, unsigned state) {
  PT_TRY(arbiter_state(ctx));
  if (ctx.dry_run) {
    Change c;
    c.before = c.after = PT_TRY(ctx.arbiter->status(dev.addr));
    return c;
  }
  const auto lock = PT_TRY(lock_unless_held(ctx));
  return set_decodes(ctx, dev, state);
}

Result<Restore> restore(Context& ctx, const Device& dev) {
  // The record is for after the return to the host driver; a parking driver
  // sets decodes itself, and an "already" now would drop the record too early.
  if (is_parking_driver(dev.driver))
    return fail(dev.addr.str(),
                "is on " + dev.driver +
                    ", which decides its VGA decodes itself; return it to its host driver first "
                    "(pt-bind attach " +
                    dev.addr.str() + "), then run pt-vgaarb restore");
  PT_TRY(arbiter_state(ctx));
  const auto lock = PT_TRY(lock_unless_dry_run(ctx));
  auto journal = PT_TRY(load_journal(ctx.root));
  const std::string bdf = dev.addr.str();
  auto it = journal.vga.find(bdf);
  Restore r;
  r.source = "no journal record: io+mem, what a VGA device decodes when nothing changed it";
  if (it != journal.vga.end()) {
    auto st = vga::parse_state(it->second.decodes);
    if (!st)
      return fail(kJournalPath,
                  "the VGA record of " + bdf + " has decodes " + show_value(it->second.decodes) +
                      ", which is not " + kStates + "; inspect it, then remove the record",
                  EINVAL);
    r.target = *st;
    r.source = "from the journal: decodes=" + it->second.decodes + " when pt-bind detached it" +
               (it->second.driver.empty() ? std::string() : " from " + it->second.driver);
    // nvidia's probe turns the boot VGA's legacy decoding off itself
    // (nv_pci_probe: vga_set_legacy_decoding(pdev, VGA_RSRC_NONE)), so the
    // record holds the driver's none, not the firmware's io+mem: putting
    // that back would leave the origin story's decodes=none in place.
    if (*st == 0 && dev.boot_vga.value_or(false)) {
      r.target = vga::kIoMem;
      r.source += "; none is what the driver's probe set, so the boot VGA gets io+mem, what the "
                  "firmware gave it";
    }
  }
  if (ctx.dry_run) {
    r.current = PT_TRY(ctx.arbiter->status(dev.addr));
    return r;
  }
  auto c = set_decodes(ctx, dev, r.target);
  if (!c) {
    Error e = c.error();
    e.message += " (restoring " + std::string(vga::state_name(r.target)) + ", " + r.source + ")";
    return std::unexpected(e);
  }
  r.change = *c;
  if (it != journal.vga.end()) {
    journal.vga.erase(it);
    PT_TRY(save_journal(ctx.root, journal));
    r.dropped = true;
  }
  r.owns_note = dev.boot_vga.value_or(false) && c->after.owns == 0;
  if (r.owns_note) r.bridges = upstream_bridges(ctx.root, dev);
  return r;
}

Result<int> run_locked(Context& ctx, const Device& dev, unsigned state,
                       const std::vector<std::string>& argv) {
  PT_TRY(arbiter_state(ctx));
  const std::string lock_text = std::string("lock ") + vga::state_name(state);
  const std::string unlock_text = std::string("unlock ") + vga::state_name(state);
  // Locking takes the legacy resources from the card that owns them, and the
  // kernel turns off that card's IO/MEM decoding (command register) when its
  // bridge cannot route VGA alone; after unlock nobody gives them back. Note
  // the owners now, to hand their resources back afterwards.
  std::vector<std::pair<PciAddress, unsigned>> owners;
  if (auto all = scan_devices(ctx.root, ScanOptions{.names = false}))
    for (const auto& d : *all)
      if (is_vga_class(d) && d.addr != dev.addr)
        if (auto st = ctx.arbiter->status(d.addr); st && st->valid && st->owns)
          owners.emplace_back(d.addr, st->owns);
  PT_TRY(ctx.arbiter->command(dev.addr, lock_text));

  // The user's command keeps what it inherits, like under flock(1).
  spawn::Options so;
  so.close_fds = false;
  so.search_path = true;
  so.forward_signals = true;
  so.exec_failure_prefix = "pt-vgaarb: ";
  auto ran = spawn::exec(ctx.root, argv, so);
  auto unlocked = ctx.arbiter->command(dev.addr, unlock_text);
  if (!ran) return fail(render::join(argv, " "), "cannot start the command", ran.error().err);
  if (!unlocked) {
    Error e = unlocked.error();
    e.message += "; the kernel drops the lock when pt-vgaarb exits";
    return std::unexpected(e);
  }
  // A lock and unlock by the former owner makes the arbiter route the
  // resources back to it and re-enable its decoding.
  for (const auto& [addr, owned] : owners) {
    auto st = ctx.arbiter->status(addr);
    if (!st || !st->valid || (st->owns & owned) == owned) continue;
    PT_TRY(ctx.arbiter->command(addr, std::string("lock ") + vga::state_name(owned)));
    PT_TRY(ctx.arbiter->command(addr, std::string("unlock ") + vga::state_name(owned)));
  }
  return ran->code;
}

}  // namespace pt::vgaarb
