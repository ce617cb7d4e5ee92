#include "pt/drm.hpp"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "pt/lock.hpp"
#include "pt/sysfs.hpp"
#include "pt/try.hpp"

namespace fs = std::filesystem;

namespace pt::drm {

namespace {

// The nearest PCI function at or above REAL (a resolved sysfs path): virtio
// GPUs hang their DRM device under the PCI function on 6.x and under its
// virtioN child on 5.10.
std::optional<PciAddress> pci_ancestor(fs::path real) {
  for (; !real.empty() && real != real.root_path(); real = real.parent_path())
    if (auto a = parse_sysfs_name(real.filename().string())) return a;
  return std::nullopt;
}

std::optional<fs::path> resolve(const std::string& real) {
  std::error_code ec;
  auto p = fs::canonical(real, ec);
  if (ec) return std::nullopt;
  return p;
}

// "card0"; a number no minor could be ("card99999999999") is no card.
bool is_card_name(const std::string& n) {
  return n.size() > 4 && n.rfind("card", 0) == 0 && parse_index(std::string_view(n).substr(4));
}

int count_lines(const std::string& s) {
  if (s.empty()) return 0;
  return int(std::count(s.begin(), s.end(), '\n')) + (s.back() == '\n' ? 0 : 1);
}

}  // namespace

const KmsCrtc* Kms::crtc(uint32_t id) const {
  for (const auto& c : crtcs)
    if (c.id == id) return &c;
  return nullptr;
}

std::vector<Card> scan_cards(const Root& root) {
  std::vector<Card> cards;
  const std::string cls = root.path("/sys/class/drm");
  auto entries = list_dir(cls);
  std::vector<std::string> by_path = list_dir(root.path("/dev/dri/by-path"));
  for (const auto& e : entries) {
    if (!is_card_name(e)) continue;
    auto real = resolve(cls + "/" + e);
    if (!real) continue;  // a dangling link: the device went away
    Card c;
    c.name = e;
    c.minor = int(*parse_index(std::string_view(e).substr(4)));
    c.node = "/dev/dri/" + e;
    c.node_exists = path_exists(root.path(c.node));
    c.pci = pci_ancestor(*real);
    if (c.pci)
      c.pci_driver =
          link_basename(root.path("/sys/bus/pci/devices/" + c.pci->str() + "/driver")).value_or("");
    // Render nodes are siblings of the card under the same drm directory.
    for (const auto& r : entries) {
      if (r.rfind("renderD", 0) != 0) continue;
      auto rr = resolve(cls + "/" + r);
      if (rr && rr->parent_path() == real->parent_path()) c.render = "/dev/dri/" + r;
    }
    for (const auto& b : by_path) {
      auto target = link_basename(root.path("/dev/dri/by-path/" + b));
      if (target && *target == e) c.by_path = "/dev/dri/by-path/" + b;
    }
    // Connectors are the card's cardN-NAME children.
    for (const auto& k : list_dir(real->string())) {
      if (k.rfind(e + "-", 0) != 0) continue;
      const std::string dir = real->string() + "/" + k;
      SysfsConnector sc;
      sc.name = k.substr(e.size() + 1);
      sc.path = "/sys/class/drm/" + k;
      sc.status = read_attr(dir + "/status").value_or("");
      sc.enabled = read_attr(dir + "/enabled").value_or("");
      sc.dpms = read_attr(dir + "/dpms").value_or("");
      sc.modes = count_lines(read_attr(dir + "/modes").value_or(""));
      c.connectors.push_back(std::move(sc));
    }
    cards.push_back(std::move(c));
  }
  std::sort(cards.begin(), cards.end(),
            [](const Card& a, const Card& b) { return a.minor < b.minor; });
  return cards;
}

std::optional<Card> find_card(const Root& root, const PciAddress& addr) {
  const std::string cls = root.path("/sys/class/drm");
  std::optional<Card> best;
  for (const auto& e : list_dir(cls)) {
    if (!is_card_name(e)) continue;
    auto real = resolve(cls + "/" + e);
    if (!real || pci_ancestor(*real) != addr) continue;
    Card c;
    c.name = e;
    c.minor = int(*parse_index(std::string_view(e).substr(4)));
    if (best && best->minor < c.minor) continue;
    c.node = "/dev/dri/" + e;
    c.node_exists = path_exists(root.path(c.node));
    c.pci = addr;
    best = std::move(c);
  }
  return best;
}

std::vector<Card> cards_of(const std::vector<Card>& cards, const PciAddress& addr) {
  std::vector<Card> out;
  for (const auto& c : cards)
    if (c.pci && *c.pci == addr) out.push_back(c);
  return out;
}

std::optional<Master> master_from_debugfs(const Root& root, int minor) {
  auto text = read_attr(root.path("/sys/kernel/debug/dri/" + std::to_string(minor) + "/clients"));
  if (!text) return std::nullopt;
  // "command pid dev master a uid magic"; the command may hold blanks, so
  // the six numeric columns are taken from the right.
  Master m{false, "", "debugfs dri/" + std::to_string(minor) + "/clients"};
  std::istringstream in(*text);
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      header = false;
      if (line.find("master") == std::string::npos) return std::nullopt;
      continue;
    }
    std::istringstream ls(line);
    std::vector<std::string> t;
    for (std::string w; ls >> w;) t.push_back(w);
    if (t.size() < 7) continue;
    const std::string& is_master = t[t.size() - 4];
    if (is_master != "y") continue;
    std::string cmd;
    for (size_t i = 0; i + 6 < t.size(); ++i) cmd += (cmd.empty() ? "" : " ") + t[i];
    m.exists = true;
    m.holder = cmd + " (pid " + t[t.size() - 6] + ")";
  }
  return m;
}

namespace {

// Under --root: files only. Connectors come from sysfs; CRTCs, encoders and
// planes are not in sysfs, so the verdict falls back to enabled and dpms.
class RootBackend final : public Backend {
 public:
  explicit RootBackend(Root root) : root_(std::move(root)) {}
  Result<Kms> read(const Card& card) override {
    Kms k;
    k.from_sysfs = true;
    auto name =
        read_attr(root_.path("/sys/kernel/debug/dri/" + std::to_string(card.minor) + "/name"));
    if (name) k.driver = name->substr(0, name->find(' '));
    // A KMS driver registers connectors; a render-only one none.
    k.kms = !card.connectors.empty();
    for (const auto& c : card.connectors)
      k.connectors.push_back(KmsConnector{0, c.name, c.status, 0, 0, c.modes});
    if (auto m = master_from_debugfs(root_, card.minor))
      k.master = *m;
    else
      k.master = Master{std::nullopt, "", "unknown under --root without debugfs dri/N/clients"};
    return k;
  }
  // Without ioctls, a KMS driver shows in its connectors (cardN-NAME), which
  // find_card leaves out.
  Result<bool> kms_readable(const Card& card) override {
    for (const auto& e : list_dir(root_.path("/sys/class/drm")))
      if (e.rfind(card.name + "-", 0) == 0) return true;
    return false;
  }
  std::vector<std::pair<std::string, PciAddress>> devices() override { return {}; }
  std::optional<int> console_fb(int) override { return std::nullopt; }

 private:
  Root root_;
};

}  // namespace

std::unique_ptr<Backend> make_root_backend(const Root& root) {
  return std::make_unique<RootBackend>(root);
}

std::unique_ptr<Backend> make_backend(const Root& root) {
  if (root.is_real()) return make_libdrm_backend(root);
  return make_root_backend(root);
}

Fbcon fbcon_state(const Root& root, Backend& backend, const Card& card) {
  Fbcon f;
  for (const auto& v : list_dir(root.path("/sys/class/vtconsole"))) {
    const std::string base = root.path("/sys/class/vtconsole/" + v);
    auto name = read_attr(base + "/name").value_or("");
    if (name.find("frame buffer device") != std::string::npos &&
        read_attr(base + "/bind").value_or("") == "1")
      f.bound = true;
  }
  for (const auto& g : list_dir(root.path("/sys/class/graphics"))) {
    auto index = g.rfind("fb", 0) == 0 ? parse_index(std::string_view(g).substr(2)) : std::nullopt;
    if (!index) continue;
    auto dev = resolve(root.path("/sys/class/graphics/" + g + "/device"));
    if (dev && card.pci && pci_ancestor(*dev) == card.pci) f.card_fb = int(*index);
  }
  if (auto a = read_attr(root.path("/sys/class/tty/tty0/active")); a && a->rfind("tty", 0) == 0) {
    if (auto n = parse_index(std::string_view(*a).substr(3))) f.fg_console = int(*n);
  }
  if (f.fg_console) f.fb = backend.console_fb(*f.fg_console);
  if (!f.bound) {
    f.on_card = false;
    f.how = "no framebuffer console is bound";
  } else if (!f.card_fb) {
    f.on_card = false;
    f.how = "fbcon is bound, but this card has no framebuffer device";
  } else if (f.fb) {
    f.on_card = *f.fb == *f.card_fb;
    f.how = "tty" + std::to_string(*f.fg_console) + " is on fb" + std::to_string(*f.fb) +
            ", this card's is fb" + std::to_string(*f.card_fb);
  } else {
    f.how = "fbcon is bound and this card has fb" + std::to_string(*f.card_fb) +
            ", but the console's framebuffer cannot be read" +
            (root.is_real() ? "" : " under --root");
  }
  return f;
}

// ---------------------------------------------------------------- the commands' engine
std::optional<Card> card_of(const Root& root, const PciAddress& addr) {
  auto cards = cards_of(scan_cards(root), addr);
  if (cards.empty()) return std::nullopt;
  return cards.front();
}

const SysfsConnector* connector_of(const Card& c, const std::string& name) {
  for (const auto& k : c.connectors)
    if (k.name == name) return &k;
  return nullptr;
}

Status check_connector(const Card& c, const std::string& name) {
  if (name.empty() || connector_of(c, name)) return {};
  std::string names;
  for (const auto& k : c.connectors) names += (names.empty() ? "" : ", ") + k.name;
  return fail("connector '" + name + "'",
              "no such connector on " + c.name +
                  "; its connectors are: " + (names.empty() ? "none" : names));
}

Health examine(const Root& root, Backend& backend, const Device& dev) {
  Health h;
  VerdictInput& in = h.input;
  h.card = card_of(root, dev.addr);
  in.device = dev.addr.str();
  in.driver = dev.driver;
  in.card = h.card.has_value();
  if (!h.card) return h;
  const Card& card = *h.card;
  in.node = card.node_exists;
  if (!in.node) return h;
  auto k = backend.read(card);
  if (!k) {
    if (k.error().exit == Exit::timeout) h.stuck = k.error();
    in.kms = false;
    in.kms_error = k.error().describe();
    return h;
  }
  in.kms = k->kms;
  in.master_exists = k->master.exists;
  for (const auto& s : card.connectors) {
    ConnectorState cs{s.name, s.status, s.enabled, s.dpms, std::nullopt, std::nullopt};
    if (!k->from_sysfs) {
      cs.crtc_id = 0;
      for (const auto& kc : k->connectors)
        if (kc.name == s.name) {
          cs.crtc_id = kc.crtc_id;
          if (const KmsCrtc* c = k->crtc(kc.crtc_id)) cs.crtc_lit = c->lit();
        }
    }
    in.connectors.push_back(cs);
  }
  h.fbcon = fbcon_state(root, backend, card);
  in.fbcon_on_card = h.fbcon->on_card;
  h.kms = std::move(*k);
  return h;
}

Result<std::vector<Probed>> probe(Context& ctx, const PciAddress& addr,
                                  const std::vector<SysfsConnector>& targets) {
  auto lock = PT_TRY(lock_unless_held(ctx));
  std::vector<Probed> out;
  for (const auto& c : targets) {
    // detect clears a forced on/off and asks the driver to detect again;
    // the kernel sends a hotplug event when the status changes.
    PT_TRY(ctx.writer->write(c.path + "/status", "detect", WriteKind::blocking));
    auto after_card = card_of(ctx.root, addr);
    const SysfsConnector* now = after_card ? connector_of(*after_card, c.name) : nullptr;
    Probed p{c, now ? now->status : "", now ? now->modes : 0, false};
    p.changed = !now || p.status != c.status || p.modes != c.modes;
    out.push_back(p);
  }
  return out;
}

}  // namespace pt::drm
