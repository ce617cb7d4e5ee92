#include "pt/vgaarb_cmd.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "pt/config.hpp"
#include "pt/journal.hpp"
#include "pt/lock.hpp"
#include "pt/pci.hpp"
#include "pt/system.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"
#include "pt/vgaarb.hpp"

namespace pt::vgaarb {

using nlohmann::json;

namespace {

const char* kStates = "none, io, mem or io+mem";

std::string class_hex(const Device& d) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", d.class_id());
  return buf;
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

json nullable(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

// What list and show print for one display function.
struct Row {
  Device dev;
  bool arbitrated = false;
  std::optional<unsigned> command;  // IO (1) and MEM (2) enable of the PCI command register
  std::optional<vga::Status> status;
  std::string line;  // the arbiter's line as read
  std::string note;  // why there is no status
};

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
    r.note = "not arbitrated (class " + class_hex(d) + ")";
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

Status arbiter_state(Context& ctx) {
  if (!ctx.arbiter) return fail(kArbiterPath, "no arbiter in this context", ENODEV);
  return ctx.arbiter->available();
}

json row_json(const Row& r) {
  json j;
  j["device"] = r.dev.addr.str();
  j["class"] = class_hex(r.dev);
  j["driver"] = nullable(r.dev.driver);
  j["boot_vga"] = r.dev.boot_vga ? json(*r.dev.boot_vga) : json(nullptr);
  j["command_io"] = r.command ? json((*r.command & vga::kIo) != 0) : json(nullptr);
  j["command_mem"] = r.command ? json((*r.command & vga::kMem) != 0) : json(nullptr);
  j["arbitrated"] = r.arbitrated;
  if (r.status)
    j["arbiter"] = {{"count", r.status->count},
                    {"decodes", vga::state_name(r.status->decodes)},
                    {"owns", vga::state_name(r.status->owns)},
                    {"locks", vga::state_name(r.status->locks)},
                    {"io_locks", r.status->io_locks},
                    {"mem_locks", r.status->mem_locks},
                    {"line", r.line}};
  else
    j["arbiter"] = nullptr;
  j["note"] = nullable(r.note);
  return j;
}

std::string command_text(const std::optional<unsigned>& c) {
  return c ? vga::state_name(*c) : "?";
}

std::string boot_text(const Device& d) {
  return d.boot_vga ? (*d.boot_vga ? "yes" : "no") : "-";
}

Result<Exit> cmd_list(const Options& o, Context& ctx, std::ostream& out) {
  auto all = scan_devices(ctx.root, ScanOptions{.class_names = false});
  if (!all) return std::unexpected(all.error());
  auto arbiter = arbiter_state(ctx);
  std::vector<Row> rows;
  for (const auto& d : *all)
    if (listed(d)) rows.push_back(make_row(ctx, d, arbiter));
  if (o.common.json) {
    json arr = json::array();
    for (const auto& r : rows) arr.push_back(row_json(r));
    out << arr.dump(2) << "\n";
    return Exit::ok;
  }
  std::string t;
  if (!arbiter) t += "note: arbiter unavailable: " + arbiter.error().describe() + "\n";
  t += pad("DEVICE", 14) + pad("CLASS", 7) + pad("DRIVER", 14) + pad("BOOT", 6) + pad("CMD", 8) +
       pad("COUNT", 7) + pad("DECODES", 9) + pad("OWNS", 8) + "LOCKS(IO:MEM)\n";
  for (const auto& r : rows) {
    t += pad(r.dev.addr.str(), 14) + pad(class_hex(r.dev), 7) +
         pad(r.dev.driver.empty() ? "-" : r.dev.driver, 14) + pad(boot_text(r.dev), 6) +
         pad(command_text(r.command), 8);
    if (r.status) {
      const auto& s = *r.status;
      t += pad(std::to_string(s.count), 7) + pad(vga::state_name(s.decodes), 9) +
           pad(vga::state_name(s.owns), 8) + vga::state_name(s.locks) + "(" +
           std::to_string(s.io_locks) + ":" + std::to_string(s.mem_locks) + ")";
    } else if (!r.arbitrated || arbiter) {
      t += r.note;
    } else {
      t += "-";
    }
    t += "\n";
  }
  out << t;
  return Exit::ok;
}

// The one VGA-class function DEV names; a slot must hold exactly one.
Result<Device> resolve_vga(Context& ctx, const std::string& input, bool allow_display) {
  const auto spec = PT_TRY(parse_device_spec(input));
  const auto all = PT_TRY(scan_devices(ctx.root, ScanOptions{.class_names = false}));
  return PT_TRY(target::resolve(all, spec, target::vga(allow_display))).front();
}

struct Bridge {
  std::string device;
  std::optional<bool> vga_enable;  // nullopt: config space unreadable
};

// Every bridge above D, nearest first, with its Bridge Control VGA Enable.
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

std::string bridges_text(const std::vector<Bridge>& bs) {
  if (bs.empty()) return "none (on a root bus)";
  std::string t;
  for (const auto& b : bs)
    t += (t.empty() ? "" : ", ") + b.device + " VGA enable " +
         (b.vga_enable ? (*b.vga_enable ? "on" : "off") : std::string("unreadable"));
  return t;
}

json bridges_json(const std::vector<Bridge>& bs) {
  json arr = json::array();
  for (const auto& b : bs)
    arr.push_back(
        {{"device", b.device}, {"vga_enable", b.vga_enable ? json(*b.vga_enable) : json(nullptr)}});
  return arr;
}

json record_json(const VgaRecord& r) {
  return {{"decodes", r.decodes},
          {"owns", r.owns},
          {"boot_vga", r.boot_vga},
          {"driver", nullable(r.driver)},
          {"time", r.time}};
}

Result<Exit> cmd_show(const Options& o, Context& ctx, std::ostream& out) {
  auto dev = resolve_vga(ctx, o.device, true);
  if (!dev) return std::unexpected(dev.error());
  auto arbiter = arbiter_state(ctx);
  Row r = make_row(ctx, *dev, arbiter);
  auto bridges = upstream_bridges(ctx.root, *dev);
  auto log = kmsg_vgaarb_lines(ctx.root, dev->addr);
  auto journal = load_journal(ctx.root);
  std::optional<VgaRecord> record;
  if (journal)
    if (auto it = journal->vga.find(dev->addr.str()); it != journal->vga.end()) record = it->second;
  if (o.common.json) {
    json j = row_json(r);
    j["bridges"] = bridges_json(bridges);
    j["journal"] = record ? record_json(*record) : json(nullptr);
    j["journal_error"] = journal ? json(nullptr) : json(journal.error().describe());
    j["kernel_log"] = log ? json(*log) : json(nullptr);
    j["kernel_log_error"] = log ? json(nullptr) : json(log.error().describe());
    out << j.dump(2) << "\n";
    return Exit::ok;
  }
  std::string t = dev->addr.str() + "  class " + class_hex(*dev) + "  driver " +
                  (dev->driver.empty() ? std::string("none") : dev->driver) + "\n";
  t += "  boot_vga:     " +
       (dev->boot_vga ? std::string(*dev->boot_vga ? "1" : "0") : std::string("-")) + "\n";
  if (r.command)
    t += "  command:      IO " + std::string(*r.command & vga::kIo ? "on" : "off") + ", MEM " +
         (*r.command & vga::kMem ? "on" : "off") + " (PCI command register)\n";
  else
    t += "  command:      unreadable\n";
  if (r.status) {
    const auto& s = *r.status;
    t += "  arbiter:      " + r.line + "\n";
    t += "  count:        " + std::to_string(s.count) +
         " (VGA devices that decode legacy VGA resources)\n";
    t += "  decodes:      " + std::string(vga::state_name(s.decodes)) + "\n";
    t += "  owns:         " + std::string(vga::state_name(s.owns)) + "\n";
    t += "  locks:        " + std::string(vga::state_name(s.locks)) + " (io " +
         std::to_string(s.io_locks) + ", mem " + std::to_string(s.mem_locks) + ")\n";
  } else {
    t += "  arbiter:      " + r.note + "\n";
  }
  t += "  bridges:      " + bridges_text(bridges) + "\n";
  if (record)
    t += "  journal:      decodes=" + record->decodes + " owns=" + record->owns +
         " recorded when pt-bind detached it" +
         (record->driver.empty() ? std::string() : " from " + record->driver) + "\n";
  else if (!journal)
    t += "  journal:      unreadable: " + journal.error().describe() + "\n";
  if (log) {
    t += "  kernel log:   " + std::string(log->empty() ? "no vgaarb messages about it" : "") + "\n";
    for (const auto& l : *log) t += "    " + l + "\n";
  } else {
    t += "  kernel log:   unavailable: " + log.error().describe() + "\n";
  }
  out << t;
  return Exit::ok;
}

// What the arbiter's decodes becomes for a requested state. The kernel's
// vga_str_to_iostate takes "io" and "mem" as io+mem; "none" is none.
unsigned effective_decodes(unsigned requested) {
  return requested == 0 ? 0u : vga::kIoMem;
}

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

struct Change {
  vga::Status before, after;
  bool already = false;
};

// Writes decodes STATE to DEV and proves it by reading back.
Result<Change> set_decodes(Context& ctx, const Device& d, unsigned state) {
  Change c;
  auto before = ctx.arbiter->status(d.addr);
  if (!before) return std::unexpected(before.error());
  if (!before->valid)
    return fail(d.addr.str(), "the arbiter answers 'invalid' for it; it no longer knows the device",
                ENODEV);
  c.before = *before;
  if (before->decodes == effective_decodes(state) || before->decodes == state) {
    c.after = *before;
    c.already = true;
    return c;
  }
  const std::string text = std::string("decodes ") + vga::state_name(state);
  if (auto r = ctx.arbiter->command(d.addr, text); !r) return std::unexpected(r.error());
  auto after = ctx.arbiter->status(d.addr);
  if (!after) return std::unexpected(after.error());
  c.after = *after;
  if (after->decodes == before->decodes)
    return fail(d.addr.str(), ignored_message(d, text, *after));
  if (!decodes_took(state, after->decodes))
    return fail(d.addr.str(),
                "wrote " + show_value(text) + " but decodes became " +
                    vga::state_name(after->decodes) + " (was " + vga::state_name(before->decodes) +
                    "); the arbiter now says " + vga::format_status(*after),
                0, Exit::not_rolled_back);
  return c;
}

std::string change_line(const Device& d, const Change& c, unsigned requested) {
  std::string t = d.addr.str() + "  decodes ";
  if (c.already) return t + vga::state_name(c.after.decodes) + " already\n";
  t += std::string(vga::state_name(c.before.decodes)) + " -> " + vga::state_name(c.after.decodes) +
       "  (verified: " + vga::format_status(c.after) + ")\n";
  if (c.after.decodes != requested)
    t += "note: the kernel's arbiter takes " + std::string(vga::state_name(requested)) +
         " as io+mem\n";
  return t;
}

json change_json(const Device& d, const Change& c, unsigned requested) {
  return {{"device", d.addr.str()},
          {"requested", vga::state_name(requested)},
          {"from", vga::state_name(c.before.decodes)},
          {"to", vga::state_name(c.after.decodes)},
          {"result", c.already ? "already" : "changed"},
          {"line", vga::format_status(c.after)}};
}

Result<unsigned> parse_decodes_arg(const std::string& text) {
  auto st = vga::parse_state(text);
  if (!st)
    return usage_error("'" + text + "'",
                       std::string("is not a decodes value; give one of ") + kStates);
  return *st;
}

Result<Exit> cmd_decodes(const Options& o, Context& ctx, std::ostream& out) {
  auto state = parse_decodes_arg(o.state);
  if (!state) return std::unexpected(state.error());
  auto dev = resolve_vga(ctx, o.device, false);
  if (!dev) return std::unexpected(dev.error());
  if (auto a = arbiter_state(ctx); !a) return std::unexpected(a.error());
  if (ctx.dry_run) {
    auto st = ctx.arbiter->status(dev->addr);
    if (!st) return std::unexpected(st.error());
    std::string text = std::string("decodes ") + vga::state_name(*state);
    if (o.common.json)
      out << json{{"device", dev->addr.str()},
                  {"dry_run", true},
                  {"decodes", vga::state_name(st->decodes)},
                  {"writes", st->decodes == effective_decodes(*state)
                                 ? json::array()
                                 : json::array({"target PCI:" + dev->addr.str(), text})}}
                 .dump(2)
          << "\n";
    else if (st->decodes == effective_decodes(*state))
      out << "dry run: " << dev->addr.str() << " already decodes " << vga::state_name(st->decodes)
          << "; nothing would be written\n";
    else
      out << "dry run: nothing is changed\n  write " << kArbiterPath
          << " \"target PCI:" << dev->addr.str() << "\"\n  write " << kArbiterPath << " "
          << show_value(text) << "  (decodes now " << vga::state_name(st->decodes) << ")\n";
    return Exit::ok;
  }
  auto lock = Lock::acquire(ctx.root, ctx.lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  auto c = set_decodes(ctx, *dev, *state);
  if (!c) return std::unexpected(c.error());
  if (o.common.json)
    out << change_json(*dev, *c, *state).dump(2) << "\n";
  else
    out << change_line(*dev, *c, *state);
  return Exit::ok;
}

Result<Exit> cmd_restore(const Options& o, Context& ctx, std::ostream& out) {
  auto dev = resolve_vga(ctx, o.device, false);
  if (!dev) return std::unexpected(dev.error());
  // The record is for after the return to the host driver; a parking driver
  // sets decodes itself, and an "already" now would drop the record too early.
  if (is_parking_driver(dev->driver))
    return fail(dev->addr.str(),
                "is on " + dev->driver +
                    ", which decides its VGA decodes itself; return it to its host driver first "
                    "(pt-bind attach " +
                    dev->addr.str() + "), then run pt-vgaarb restore");
  if (auto a = arbiter_state(ctx); !a) return std::unexpected(a.error());
  auto lock = lock_unless_dry_run(ctx.root, ctx.dry_run, ctx.lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  auto journal = load_journal(ctx.root);
  if (!journal) return std::unexpected(journal.error());
  const std::string bdf = dev->addr.str();
  auto it = journal->vga.find(bdf);
  unsigned target = vga::kIoMem;
  std::string source =
      "no journal record: io+mem, what a VGA device decodes when nothing changed it";
  if (it != journal->vga.end()) {
    auto st = vga::parse_state(it->second.decodes);
    if (!st)
      return fail(kJournalPath,
                  "the VGA record of " + bdf + " has decodes " + show_value(it->second.decodes) +
                      ", which is not " + kStates + "; inspect it, then remove the record",
                  EINVAL);
    target = *st;
    source = "from the journal: decodes=" + it->second.decodes + " when pt-bind detached it" +
             (it->second.driver.empty() ? std::string() : " from " + it->second.driver);
  }
  if (ctx.dry_run) {
    auto st = ctx.arbiter->status(dev->addr);
    if (!st) return std::unexpected(st.error());
    bool same = st->decodes == effective_decodes(target) || st->decodes == target;
    std::string text = std::string("decodes ") + vga::state_name(target);
    if (o.common.json) {
      out << json{{"device", bdf},
                  {"dry_run", true},
                  {"decodes", vga::state_name(st->decodes)},
                  {"target", vga::state_name(target)},
                  {"source", source},
                  {"writes", same ? json::array() : json::array({"target PCI:" + bdf, text})}}
                 .dump(2)
          << "\n";
    } else {
      out << "dry run: restore " << bdf << " to decodes " << vga::state_name(target) << " ("
          << source << "); nothing is changed\n";
      if (same)
        out << "  already decodes " << vga::state_name(st->decodes)
            << "; nothing would be written\n";
      else
        out << "  write " << kArbiterPath << " \"target PCI:" << bdf << "\"\n  write "
            << kArbiterPath << " " << show_value(text) << "\n";
    }
    return Exit::ok;
  }
  auto c = set_decodes(ctx, *dev, target);
  if (!c) {
    Error e = c.error();
    e.message += " (restoring " + std::string(vga::state_name(target)) + ", " + source + ")";
    return std::unexpected(e);
  }
  bool dropped = false;
  if (it != journal->vga.end()) {
    journal->vga.erase(it);
    if (auto r = save_journal(ctx.root, *journal); !r) return std::unexpected(r.error());
    dropped = true;
  }
  std::vector<Bridge> bridges;
  bool owns_note = dev->boot_vga.value_or(false) && c->after.owns == 0;
  if (owns_note) bridges = upstream_bridges(ctx.root, *dev);
  if (o.common.json) {
    json j = change_json(*dev, *c, target);
    j["source"] = source;
    j["journal_record_removed"] = dropped;
    j["boot_vga"] = dev->boot_vga.value_or(false);
    j["bridges"] = owns_note ? bridges_json(bridges) : json(nullptr);
    out << j.dump(2) << "\n";
    return Exit::ok;
  }
  std::string t = change_line(*dev, *c, target);
  t += "  " + source + (dropped ? "; the record is removed" : "") + "\n";
  if (owns_note) {
    bool routed = true;
    for (const auto& b : bridges) routed = routed && b.vga_enable.value_or(false);
    t += "note: " + bdf +
         " is the boot VGA device but owns no legacy VGA resources (owns=none); the arbiter gives "
         "them to it at its next lock. Upstream bridges: " +
         bridges_text(bridges) + "\n";
    if (!bridges.empty() && !routed)
      t += "note: a bridge above " + bdf +
           " does not forward VGA (Bridge Control VGA Enable off), so legacy VGA "
           "cycles do not reach it until the arbiter routes them there\n";
  }
  out << t;
  return Exit::ok;
}

// ------------------------------------------------------------------ lock
volatile sig_atomic_t g_child = 0;

void forward(int sig) {
  pid_t p = g_child;
  if (p > 0) ::kill(p, sig);
}

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP};

Result<Exit> cmd_lock(const Options& o, Context& ctx, std::ostream& out) {
  unsigned state = vga::kIoMem;
  if (!o.state.empty()) {
    auto st = vga::parse_state(o.state);
    if (!st || *st == 0)
      return usage_error("'" + o.state + "'", "is not something to lock; give io, mem or io+mem");
    state = *st;
  }
  if (o.argv.empty())
    return usage_error("lock", "needs a command after '--': pt-vgaarb lock DEV -- CMD...");
  auto dev = resolve_vga(ctx, o.device, false);
  if (!dev) return std::unexpected(dev.error());
  if (auto a = arbiter_state(ctx); !a) return std::unexpected(a.error());
  const std::string lock_text = std::string("lock ") + vga::state_name(state);
  const std::string unlock_text = std::string("unlock ") + vga::state_name(state);
  std::string cmdline;
  for (const auto& a : o.argv) cmdline += (cmdline.empty() ? "" : " ") + a;
  if (ctx.dry_run) {
    out << "dry run: nothing is run\n  write " << kArbiterPath
        << " \"target PCI:" << dev->addr.str() << "\"\n  write " << kArbiterPath << " "
        << show_value(lock_text) << "\n  run " << cmdline << "\n  write " << kArbiterPath << " "
        << show_value(unlock_text) << "\n";
    return Exit::ok;
  }
  // Locking takes the legacy resources from the card that owns them, and the
  // kernel turns off that card's IO/MEM decoding (command register) when its
  // bridge cannot route VGA alone; after unlock nobody gives them back. Note
  // the owners now, to hand their resources back afterwards.
  std::vector<std::pair<PciAddress, unsigned>> owners;
  if (auto all = scan_devices(ctx.root, ScanOptions{.class_names = false}))
    for (const auto& d : *all)
      if (is_vga_class(d) && d.addr != dev->addr)
        if (auto st = ctx.arbiter->status(d.addr); st && st->valid && st->owns)
          owners.emplace_back(d.addr, st->owns);
  if (auto r = ctx.arbiter->command(dev->addr, lock_text); !r) return std::unexpected(r.error());

  // Forward SIGINT, SIGTERM and SIGHUP to CMD; blocked across fork so that
  // none arrives before the child's pid is known.
  sigset_t block, old;
  sigemptyset(&block);
  for (int s : kForwarded) sigaddset(&block, s);
  ::sigprocmask(SIG_BLOCK, &block, &old);
  struct sigaction sa {
  }, saved[3];
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; ++i) ::sigaction(kForwarded[i], &sa, &saved[i]);
  std::vector<char*> args;
  for (const auto& a : o.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s : kForwarded) ::sigaction(s, &dfl, nullptr);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    ::execvp(args[0], args.data());
    int e = errno;
    std::string msg = "pt-vgaarb: " + o.argv[0] + ": " + std::strerror(e) + "\n";
    [[maybe_unused]] auto n = ::write(2, msg.data(), msg.size());
    ::_exit(e == ENOENT ? 127 : 126);
  }
  int fork_err = errno;
  g_child = pid > 0 ? pid : 0;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  int status = 0;
  if (pid > 0)
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  g_child = 0;
  for (int i = 0; i < 3; ++i) ::sigaction(kForwarded[i], &saved[i], nullptr);
  auto unlocked = ctx.arbiter->command(dev->addr, unlock_text);
  if (pid < 0) return fail(cmdline, "cannot start the command", fork_err);
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
    const std::string give = std::string("lock ") + vga::state_name(owned);
    if (auto r = ctx.arbiter->command(addr, give); !r) return std::unexpected(r.error());
    if (auto r = ctx.arbiter->command(addr, std::string("unlock ") + vga::state_name(owned)); !r)
      return std::unexpected(r.error());
  }
  (void)out;
  int code = WIFEXITED(status)     ? WEXITSTATUS(status)
             : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                   : 1;
  return static_cast<Exit>(code);
}

}  // namespace

Result<Exit> run_in(const Options& o, Context& ctx, std::ostream& out) {
  if (o.command == "list") return cmd_list(o, ctx, out);
  if (o.command == "show") return cmd_show(o, ctx, out);
  if (o.command == "decodes") return cmd_decodes(o, ctx, out);
  if (o.command == "restore") return cmd_restore(o, ctx, out);
  if (o.command == "lock") return cmd_lock(o, ctx, out);
  return usage_error(o.command, "unknown command; see pt-vgaarb --help");
}

Result<Exit> run(const Options& o, std::ostream& out, const ObservedWriter::Observer& on_write) {
  auto sys = open_system(o.common, on_write);
  if (!sys) return std::unexpected(sys.error());
  return run_in(o, (*sys)->ctx, out);
}

}  // namespace pt::vgaarb
