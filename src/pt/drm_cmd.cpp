#include "pt/drm_cmd.hpp"

#include <cstdio>

#include "pt/drm_verdict.hpp"
#include "pt/drm_wait.hpp"
#include "pt/pci.hpp"
#include "pt/render.hpp"
#include "pt/system.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"

namespace pt::drm {

using render::emit;
using render::json;
using render::nullable;
using render::opt;

namespace {

// A column of pt-drm's tables: padded, then one space.
std::string pad(const std::string& s, size_t width) {
  return render::pad(s, width) + " ";
}

std::string or_dash(const std::string& s) {
  return s.empty() ? "-" : s;
}

std::string mode_text(const std::optional<Mode>& m) {
  if (!m) return "-";
  return m->name + (m->refresh ? "@" + std::to_string(m->refresh) : "");
}

// DEV as the commands take it: one display function, .0 of a slot.
Result<Device> resolve_display(const Context& ctx, const std::string& text) {
  return target::read_one(ctx.root, text, target::drm_display());
}

json master_json(const Master& m) {
  return {{"exists", opt(m.exists)}, {"holder", nullable(m.holder)}, {"how", m.how}};
}

json fbcon_json(const Fbcon& f) {
  return {{"bound", f.bound},          {"foreground_console", opt(f.fg_console)},
          {"console_fb", opt(f.fb)},   {"card_fb", opt(f.card_fb)},
          {"on_card", opt(f.on_card)}, {"how", f.how}};
}

std::string master_text(const Master& m) {
  std::string s = !m.exists   ? "unknown"
                  : *m.exists ? "held" + (m.holder.empty() ? "" : " by " + m.holder)
                              : "none";
  return s + " (" + m.how + ")";
}

std::string fbcon_text(const Fbcon& f) {
  std::string s = !f.on_card ? "unknown" : *f.on_card ? "on this card" : "not on this card";
  return s + (f.how.empty() ? "" : " (" + f.how + ")");
}

// ------------------------------------------------------------------ list
Result<Exit> cmd_list(const Options& o, Context& ctx, Backend& backend, std::ostream& out) {
  auto cards = scan_cards(ctx.root);
  // libdrm's own enumeration names the PCI device of each primary node; it
  // must agree with sysfs, and fills in a device sysfs could not place.
  for (const auto& [node, addr] : backend.devices())
    for (auto& c : cards)
      if (c.node == node && !c.pci) c.pci = addr;
  json arr = json::array();
  std::string text = pad("CARD", 6) + pad("RENDER", 20) + pad("PCI", 13) + pad("PCI DRIVER", 12) +
                     pad("DRM DRIVER", 22) + pad("KMS", 4) + "CONNECTORS\n";
  for (const auto& c : cards) {
    auto k = backend.read(c);
    if (!k && k.error().exit == Exit::timeout) return std::unexpected(k.error());
    json conns = json::array();
    std::string ctext;
    for (const auto& s : c.connectors) {
      conns.push_back({{"name", s.name},
                       {"status", nullable(s.status)},
                       {"enabled", nullable(s.enabled)},
                       {"dpms", nullable(s.dpms)},
                       {"modes", s.modes}});
      ctext += (ctext.empty() ? "" : " ") + s.name + ":" + or_dash(s.status);
    }
    json j = {{"card", c.name},
              {"node", c.node},
              {"node_exists", c.node_exists},
              {"render", nullable(c.render)},
              {"by_path", nullable(c.by_path)},
              {"pci", c.pci ? json(c.pci->str()) : json(nullptr)},
              {"pci_driver", nullable(c.pci_driver)},
              {"connectors", conns}};
    if (k) {
      j["driver"] = nullable(k->driver);
      j["version"] = nullable(k->version);
      j["date"] = nullable(k->date);
      j["kms"] = opt(k->kms);
      j["error"] = nullptr;
    } else {
      j["driver"] = j["version"] = j["date"] = j["kms"] = nullptr;
      j["error"] = k.error().describe();
    }
    arr.push_back(j);
    std::string drv = k ? or_dash(k->driver) + (k->version.empty() ? "" : " " + k->version) : "?";
    std::string kms = k && k->kms ? (*k->kms ? "yes" : "no") : "?";
    text += pad(c.name, 6) + pad(c.render.empty() ? "-" : c.render, 20) +
            pad(c.pci ? c.pci->str() : "-", 13) + pad(or_dash(c.pci_driver), 12) + pad(drv, 22) +
            pad(kms, 4) + (ctext.empty() ? "-" : ctext) + "\n";
    if (!c.by_path.empty()) text += "      by-path " + c.by_path + "\n";
    if (!k) text += "      " + k.error().describe() + "\n";
  }
  if (o.common.json)
    emit(out, arr);
  else if (cards.empty())
    out << "no DRM devices under " << ctx.root.path("/sys/class/drm") << "\n";
  else
    out << render::printable(text, true);
  return Exit::ok;
}

// ------------------------------------------------------------------ show
Result<Exit> cmd_show(const Options& o, Context& ctx, Backend& backend, std::ostream& out) {
  const auto dev = PT_TRY(resolve_display(ctx, o.device));
  const auto card = card_of(ctx.root, dev.addr);
  if (!card)
    return fail(dev.addr.str(),
                "has no DRM device (driver: " + (dev.driver.empty() ? "none" : dev.driver) +
                    "); pt-drm check says why");
  PT_TRY(check_connector(*card, o.connector));
  const auto k = PT_TRY(backend.read(*card));
  auto fb = fbcon_state(ctx.root, backend, *card);

  json conns = json::array();
  std::string ctext = "  " + pad("CONNECTOR", 14) + pad("ID", 4) + pad("STATUS", 13) +
                      pad("ENABLED", 9) + pad("DPMS", 8) + pad("MODES", 6) + pad("ENCODER", 8) +
                      pad("CRTC", 5) + "MODE\n";
  for (const auto& s : card->connectors) {
    if (!o.connector.empty() && s.name != o.connector) continue;
    const KmsConnector* kc = nullptr;
    for (const auto& x : k.connectors)
      if (x.name == s.name) kc = &x;
    const KmsCrtc* crtc = kc && kc->crtc_id && !k.from_sysfs ? k.crtc(kc->crtc_id) : nullptr;
    json j = {{"name", s.name},
              {"status", nullable(s.status)},
              {"enabled", nullable(s.enabled)},
              {"dpms", nullable(s.dpms)},
              {"modes", s.modes}};
    bool known = kc && !k.from_sysfs;
    j["id"] = known ? json(kc->id) : json(nullptr);
    j["encoder"] = known ? json(kc->encoder_id) : json(nullptr);
    j["crtc"] = known ? json(kc->crtc_id) : json(nullptr);
    j["crtc_mode"] = crtc && crtc->mode ? json(mode_text(crtc->mode)) : json(nullptr);
    conns.push_back(j);
    ctext += "  " + pad(s.name, 14) + pad(known ? std::to_string(kc->id) : "-", 4) +
             pad(or_dash(s.status), 13) + pad(or_dash(s.enabled), 9) + pad(or_dash(s.dpms), 8) +
             pad(std::to_string(s.modes), 6) +
             pad(known && kc->encoder_id ? std::to_string(kc->encoder_id) : "-", 8) +
             pad(known && kc->crtc_id ? std::to_string(kc->crtc_id) : "-", 5) +
             (crtc ? mode_text(crtc->mode) : "-") + "\n";
  }
  json crtcs = json::array();
  std::string rtext =
      "  " + pad("CRTC", 5) + pad("STATE", 8) + pad("ACTIVE", 7) + pad("FB", 5) + "MODE\n";
  for (const auto& c : k.crtcs) {
    crtcs.push_back({{"id", c.id},
                     {"enabled", c.enabled},
                     {"active", opt(c.active)},
                     {"mode", c.mode ? json(mode_text(c.mode)) : json(nullptr)},
                     {"fb", c.fb_id}});
    rtext += "  " + pad(std::to_string(c.id), 5) + pad(c.enabled ? "set" : "none", 8) +
             pad(c.active ? (*c.active ? "yes" : "no") : "-", 7) + pad(std::to_string(c.fb_id), 5) +
             mode_text(c.mode) + "\n";
  }
  json planes = json::array();
  std::string ptext;
  for (const auto& p : k.planes) {
    planes.push_back({{"id", p.id}, {"crtc", p.crtc_id}, {"fb", p.fb_id}});
    ptext +=
        " " + std::to_string(p.id) + (p.crtc_id ? "->crtc " + std::to_string(p.crtc_id) : ":idle");
  }
  if (o.common.json) {
    json j = {{"device", dev.addr.str()},
              {"pci_driver", nullable(dev.driver)},
              {"card", card->name},
              {"node", card->node},
              {"render", nullable(card->render)},
              {"by_path", nullable(card->by_path)},
              {"driver", nullable(k.driver)},
              {"version", nullable(k.version)},
              {"date", nullable(k.date)},
              {"kms", opt(k.kms)},
              {"crtc_state_read", !k.from_sysfs},
              {"connectors", conns},
              {"crtcs", crtcs},
              {"planes", planes},
              {"master", master_json(k.master)},
              {"fbcon", fbcon_json(fb)}};
    emit(out, j);
    return Exit::ok;
  }
  std::string text = dev.addr.str() + "  " + card->name + "  " + or_dash(k.driver) +
                     (k.version.empty() ? "" : " " + k.version + " (" + k.date + ")") +
                     "  PCI driver " + or_dash(dev.driver) + "\n";
  text += "  nodes:   " + card->node + (card->render.empty() ? "" : " " + card->render) +
          (card->by_path.empty() ? "" : " " + card->by_path) + "\n";
  text +=
      "  kms:     " +
      std::string(!k.kms   ? "unknown"
                  : *k.kms ? "yes"
                           : "no") +
      (k.from_sysfs ? " (from sysfs; CRTCs, encoders and planes are not read under --root)" : "") +
      "\n";
  text += "  master:  " + master_text(k.master) + "\n";
  text += "  fbcon:   " + fbcon_text(fb) + "\n";
  text += ctext;
  if (!k.from_sysfs) {
    text += rtext;
    text += "  planes: " + (ptext.empty() ? std::string(" none") : ptext) + "\n";
  }
  out << render::printable(text, true);
  return Exit::ok;
}

// ------------------------------------------------------------------ check
Result<Exit> cmd_check(const Options& o, Context& ctx, Backend& backend, std::ostream& out) {
  const auto dev = PT_TRY(resolve_display(ctx, o.device));
  const Health h = examine(ctx.root, backend, dev);
  const VerdictInput& in = h.input;
  const auto& card = h.card;
  const auto& k = h.kms;
  const auto& fb = h.fbcon;
  // A read that never returned is no verdict on the display: exit 5, not 6.
  if (h.stuck) return std::unexpected(*h.stuck);
  auto v = judge(in);
  if (o.common.json) {
    json conns = json::array();
    for (const auto& c : v.connectors)
      conns.push_back({{"name", c.name}, {"lit", c.lit}, {"reason", c.reason}});
    json j = {{"device", in.device},
              {"verdict", v.state},
              {"exit", int(v.exit)},
              {"summary", v.summary},
              {"pci_driver", nullable(in.driver)},
              {"card", card ? json(card->name) : json(nullptr)},
              {"kms", opt(in.kms)},
              {"crtc_state_read", k ? json(!k->from_sysfs) : json(nullptr)},
              {"connectors", conns},
              {"master", k ? master_json(k->master) : json(nullptr)},
              {"fbcon", fb ? fbcon_json(*fb) : json(nullptr)}};
    emit(out, j);
  } else {
    out << v.state << ": " << v.summary << "\n";
    for (const auto& c : v.connectors)
      out << "  " << pad(c.name, 14) << (c.lit ? "lit  " : "dark ") << c.reason << "\n";
    if (fb && (v.exit != Exit::ok || o.common.verbose))
      out << "  fbcon: " << fbcon_text(*fb) << "\n";
    if (k && (v.exit != Exit::ok || o.common.verbose))
      out << "  master: " << master_text(k->master) << "\n";
  }
  return v.exit;
}

// ------------------------------------------------------------------ probe
Result<Exit> cmd_probe(const Options& o, Context& ctx, Backend&, std::ostream& out) {
  const auto dev = PT_TRY(resolve_display(ctx, o.device));
  const auto card = card_of(ctx.root, dev.addr);
  if (!card)
    return fail(dev.addr.str(), "has no DRM device to probe (driver: " +
                                    (dev.driver.empty() ? "none" : dev.driver) + ")");
  PT_TRY(check_connector(*card, o.connector));
  std::vector<SysfsConnector> targets;
  for (const auto& c : card->connectors)
    if (o.connector.empty() || c.name == o.connector) targets.push_back(c);
  if (targets.empty()) return fail(card->name, "has no connectors to probe");
  if (ctx.dry_run) {
    json arr = json::array();
    std::string text =
        "dry run: " + std::to_string(targets.size()) + " write(s); nothing is changed\n";
    for (const auto& c : targets) {
      arr.push_back({{"connector", c.name}, {"write", c.path + "/status"}, {"value", "detect"}});
      text += "  write " + c.path + "/status \"detect\"\n";
    }
    if (o.common.json)
      emit(out, arr);
    else
      out << render::printable(text, true);
    return Exit::ok;
  }
  json arr = json::array();
  std::string text;
  const auto probed = PT_TRY(probe(ctx, dev.addr, targets));
  for (const auto& p : probed) {
    const SysfsConnector& c = p.before;
    arr.push_back({{"connector", c.name},
                   {"before", {{"status", nullable(c.status)}, {"modes", c.modes}}},
                   {"after", {{"status", nullable(p.status)}, {"modes", p.modes}}},
                   {"changed", p.changed}});
    text += pad(c.name, 14) + or_dash(c.status) + " -> " + or_dash(p.status) + ", " +
            std::to_string(c.modes) + " -> " + std::to_string(p.modes) + " modes" +
            (p.changed ? "  (changed)" : "  (unchanged)") + "\n";
  }
  if (o.common.json)
    emit(out, arr);
  else
    out << render::printable(text, true);
  return Exit::ok;
}

// ------------------------------------------------------------------ wait
Result<Exit> cmd_wait(const Options& o, Context& ctx, Backend& backend, std::ostream& out) {
  const auto dev = PT_TRY(resolve_display(ctx, o.device));
  const auto ready = PT_TRY(wait_ready(ctx, backend, dev, o.device, o.trace));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", ready.waited_ms);
  if (o.common.json)
    emit(out, {{"device", dev.addr.str()},
               {"card", ready.card},
               {"ready", true},
               {"waited_ms", ready.waited_ms}});
  else
    out << dev.addr.str() << ": " << ready.card << " is ready (KMS readable) after " << buf
        << " ms\n";
  return Exit::ok;
}

}  // namespace

Result<Exit> run_in(const Options& o, Context& ctx, Backend& backend, std::ostream& out) {
  if (o.command == "list") return cmd_list(o, ctx, backend, out);
  if (o.command == "show") return cmd_show(o, ctx, backend, out);
  if (o.command == "probe") return cmd_probe(o, ctx, backend, out);
  if (o.command == "wait") return cmd_wait(o, ctx, backend, out);
  if (o.command == "check") return cmd_check(o, ctx, backend, out);
  return usage_error("pt-drm", "unknown command '" + o.command + "'");
}

Result<Exit> run(const Options& o, std::ostream& out, const ObservedWriter::Observer& on_write) {
  auto sys = PT_TRY(open_system(o.common, on_write));
  auto backend = make_bounded_backend(make_backend(sys->ctx.root), sys->ctx.root, sys->ctx.timeout);
  return run_in(o, sys->ctx, *backend, out);
}

}  // namespace pt::drm
