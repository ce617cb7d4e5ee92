#include "pt/state.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "pt/bind.hpp"
#include "pt/console.hpp"
#include "pt/holders.hpp"
#include "pt/journal.hpp"
#include "pt/pci.hpp"
#include "pt/pci_config.hpp"
#include "pt/power.hpp"
#include "pt/render.hpp"
#include "pt/reset.hpp"
#include "pt/sysfs.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"

namespace pt::state {

using nlohmann::json;

namespace {

const char* kPmNames[] = {"D0", "D1", "D2", "D3hot"};

// PCIe link speeds by the LnkCap/LnkSta code (PCIe r6.0, 7.5.3.6).
std::string link_speed(unsigned code) {
  static const char* names[] = {"",          "2.5 GT/s",  "5.0 GT/s", "8.0 GT/s",
                                "16.0 GT/s", "32.0 GT/s", "64.0 GT/s"};
  return code < 7 ? names[code] : "";
}

std::optional<Link> read_link_regs(const ConfigSpace& c) {
  auto exp = c.find(reg::kCapExp);
  if (!exp) return std::nullopt;
  const uint32_t cap = c.u32(*exp + reg::kExpLnkCap);
  const uint16_t sta = c.u16(*exp + reg::kExpLnkSta);
  Link l;
  l.max_speed = link_speed(cap & 0xf);
  l.max_width = int((cap >> 4) & 0x3f);
  l.speed = link_speed(sta & 0xf);
  l.width = int((sta >> 4) & 0x3f);
  return l;
}

// The TOTAL_ERR_* line of one of the kernel's aer_dev_* files.
std::optional<uint64_t> aer_total(const Root& root, const Device& d, const char* file,
                                  const char* total) {
  auto text = read_attr(root, d.sysfs(file));
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string name;
  uint64_t n = 0;
  while (in >> name >> n)
    if (name == total) return n;
  return std::nullopt;
}

std::optional<Aer> read_aer(const Root& root, const Device& d) {
  auto cor = aer_total(root, d, "aer_dev_correctable", "TOTAL_ERR_COR");
  auto nonfatal = aer_total(root, d, "aer_dev_nonfatal", "TOTAL_ERR_NONFATAL");
  auto fatal = aer_total(root, d, "aer_dev_fatal", "TOTAL_ERR_FATAL");
  if (!cor && !nonfatal && !fatal) return std::nullopt;
  return Aer{cor.value_or(0), nonfatal.value_or(0), fatal.value_or(0)};
}

Vga vga_of(const vga::Status& s) {
  return Vga{vga::state_name(s.decodes), vga::state_name(s.owns), vga::state_name(s.locks),
             s.io_locks, s.mem_locks};
}

Drm drm_of(const drm::Health& h) {
  Drm d;
  const drm::Card& card = *h.card;
  d.card = card.name;
  d.node = card.node;
  d.node_exists = card.node_exists;
  d.render = card.render;
  for (const auto& c : card.connectors)
    d.connectors.push_back({c.name, c.status, c.enabled, c.dpms, c.modes});
  if (!card.node_exists)
    d.kms = "no-node";
  else if (h.stuck) {
    d.kms = "stuck";
    d.kms_error = h.stuck->describe();
  } else if (h.kms)
    d.kms = h.kms->kms.value_or(false) ? "ok" : "no-kms";
  else {
    d.kms = "unreadable";
    d.kms_error = h.input.kms_error;
  }
  d.verdict = drm::judge(h.input).state;
  if (h.fbcon) d.fbcon_on_card = h.fbcon->on_card;
  return d;
}

// What refresh reads of a function: the part a recovery step changes.
Function read_volatile(const Root& root, const Device& d, const Sources& src,
                       const console::State& consoles, Result<ConfigSpace>& cfg) {
  Function f;
  f.bdf = d.addr.str();
  f.vendor = hex4(d.vendor);
  f.device_id = hex4(d.device);
  f.class_id = hex4(d.class_id());
  f.class_name = d.class_name;
  if (!d.vendor_name.empty()) f.vendor_name = d.vendor_name;
  if (!d.device_name.empty()) f.device_name = d.device_name;
  f.driver = d.driver;
  f.driver_override = d.driver_override;
  f.iommu_group = d.iommu_group;
  if (d.iommu_group) {
    const std::string node = "/dev/vfio/" + std::to_string(*d.iommu_group);
    if (path_exists(root, node)) f.vfio_node = node;
  }
  f.boot_vga = d.boot_vga;
  // Runtime PM first: the kernel wakes a function in D3cold for a config read.
  f.runtime_status = read_attr(root, d.sysfs("power/runtime_status")).value_or("");
  f.runtime_control = read_attr(root, d.sysfs("power/control")).value_or("");
  f.power_state = read_attr(root, d.sysfs("power_state")).value_or("");
  f.d3cold_allowed = power::read(root, d).d3cold_allowed;
  if (d.driver == "vfio-pci") f.vfio_disable_idle_d3 = power::vfio_disable_idle_d3(root);
  cfg = load_config(root, d.addr, 256);
  if (cfg && cfg->present()) {
    f.command = cfg->command();
    if (auto ps = cfg->power_state()) f.pm_state = kPmNames[*ps];
  }
  if (is_vga_class(d)) {
    if (!src.arbiter)
      f.vga_error = "no VGA arbiter";
    else if (auto av = src.arbiter->available(); !av)
      f.vga_error = av.error().describe();
    else if (auto st = src.arbiter->status(d.addr); !st)
      f.vga_error = st.error().describe();
    else if (!st->valid)
      f.vga_error = "the arbiter reports the device invalid";
    else
      f.vga = vga_of(*st);
  }
  for (const auto* fb : consoles.framebuffers_of(f.bdf))
    f.framebuffers.push_back(fb->node + " " + fb->name);
  for (const auto* fw : consoles.firmware_of(f.bdf))
    f.firmware.push_back({fw->name, fw->driver, console::attribution_name(fw->how)});
  return f;
}

Function read_function(const Root& root, const Device& d, const std::vector<Device>& all,
                       bool kernel_knows, const Sources& src, const console::State& consoles,
                       const Result<Journal>& journal, std::vector<Warning>& warnings) {
  Result<ConfigSpace> cfg = std::unexpected(Error{});
  Function f = read_volatile(root, d, src, consoles, cfg);
  // What the fields above could not say: the wording is pci_config's, as
  // pt-bind show and pt-reset methods print it.
  std::vector<reset::MethodStatus> methods;
  if (cfg) methods = reset::detect(root, d, *cfg, all, kernel_knows).methods;
  auto stuck = cfg ? power::stuck_advice(d, *cfg, {f.runtime_control, f.runtime_status, {}},
                                         f.power_state, methods)
                   : std::nullopt;
  if (!cfg)
    warnings.push_back({"config-unreadable", f.bdf, cfg.error().message});
  else if (stuck)
    warnings.push_back({"stuck-d3", f.bdf, *stuck});
  else if (auto why = cfg->caps_unreadable())
    warnings.push_back({"config-unreadable", f.bdf, *why});
  if (cfg && cfg->present()) {
    f.link = read_link_regs(*cfg);
    for (const auto& m : methods)
      if (m.available) f.reset_methods.push_back(m.name);
  }
  f.kernel_reset_methods = d.reset_methods;
  f.aer = read_aer(root, d);
  if (d.is_display() && src.backend) {
    auto h = drm::examine(root, *src.backend, d);
    if (h.card) f.drm = drm_of(h);
  }
  for (const auto& h : find_holders(root, d)) f.holders.push_back({h.pid, h.command, h.node});
  if (journal) {
    if (auto it = journal->devices.find(f.bdf); it != journal->devices.end())
      f.journal =
          Record{it->second.driver, it->second.to, it->second.driver_override, it->second.boot};
    if (auto it = journal->vga.find(f.bdf); it != journal->vga.end())
      f.journal_vga = Vga{it->second.decodes, it->second.owns, "", 0, 0};
    if (auto it = journal->consoles.find(f.bdf); it != journal->consoles.end())
      for (const auto& c : it->second) f.journal_consoles.push_back(c.kind + " " + c.name);
  }
  return f;
}

void read_consoles(Snapshot& s, const console::State& consoles) {
  for (const auto& v : consoles.vtconsoles) s.vtconsoles.push_back({v.name, v.mark, v.bound});
  s.active_vt = consoles.active_vt.value_or("");
  if (consoles.con2fb.known) s.con2fb = consoles.con2fb.map;
}

}  // namespace

Result<Snapshot> refresh(const Root& root, const Snapshot& previous, const Sources& src) {
  Snapshot s;
  s.device = previous.device;
  const auto consoles = PT_TRY(console::discover(root));
  for (const auto& p : previous.functions) {
    const auto addr = parse_sysfs_name(p.bdf);
    if (!addr) continue;
    auto d = read_device(root, *addr);
    if (!d) continue;
    Result<ConfigSpace> cfg = std::unexpected(Error{});
    Function f = read_volatile(root, *d, src, consoles, cfg);
    // Names come from pci.ids, which refresh does not read again.
    f.class_name = p.class_name;
    f.vendor_name = p.vendor_name;
    f.device_name = p.device_name;
    f.in_slot = p.in_slot;
    s.functions.push_back(std::move(f));
  }
  read_consoles(s, consoles);
  return s;
}

Snapshot volatile_part(Snapshot s) {
  for (auto& f : s.functions) {
    f.link.reset();
    f.aer.reset();
    f.kernel_reset_methods.reset();
    f.reset_methods.clear();
    f.drm.reset();
    f.holders.clear();
    f.journal.reset();
    f.journal_vga.reset();
    f.journal_consoles.clear();
  }
  s.warnings.clear();
  s.journal_job.clear();
  s.journal_error.clear();
  return s;
}

Result<Snapshot> collect(const Root& root, std::string_view dev, const Sources& src, Depth depth) {
  auto spec = PT_TRY(parse_device_spec(dev));
  DeviceSpec slot = spec;
  slot.func.reset();
  const auto in_slot = PT_TRY(target::present(root, {slot}, target::any()));
  // The slot's functions and everything in their IOMMU groups.
  std::set<PciAddress> wanted(in_slot.begin(), in_slot.end());
  std::vector<Device> slot_devs;
  for (const auto& a : in_slot) slot_devs.push_back(PT_TRY(read_device(root, a)));
  std::set<int> groups;
  for (const auto& d : slot_devs)
    if (d.iommu_group) groups.insert(*d.iommu_group);
  for (int g : groups)
    for (const auto& m : group_members(root, g)) wanted.insert(m);
  std::vector<DeviceSpec> specs;
  for (const auto& a : wanted) specs.push_back(DeviceSpec{a.domain, a.bus, a.dev, a.func, a.str()});
  const bool whole = depth == Depth::whole;
  std::vector<Device> all;
  if (whole) {
    // The functions and their bus neighbours, which decide a bus reset.
    all = PT_TRY(scan_near(root, specs));
    // scan_near reads sysfs only; the names a person reads come from pci.ids.
    fill_names(root, all);
  } else {
    for (const auto& a : wanted) all.push_back(PT_TRY(read_device(root, a)));
  }
  const bool kernel_knows = whole && reset::kernel_has_reset_method(root, all);
  const auto consoles = PT_TRY(console::discover(root));
  const auto journal = load_journal(root);

  Snapshot s;
  s.device = std::string(dev);
  if (whole) {
    // The machine's hints from the devices at hand: one with an IOMMU group
    // answers for the whole tree, which status does not scan.
    for (auto& h : bind::readiness_hints(root, src.modules, all))
      s.warnings.push_back({std::move(h.kind), "", std::move(h.message)});
    // The slot's functions share one path to the root port; it decides how
    // far the IOMMU group reaches.
    for (const auto& gap : acs_gaps(root, in_slot.front()))
      s.warnings.push_back(
          {gap.unknown ? "acs-unknown" : "acs", in_slot.front().str(), acs_gap_warning(gap)});
  }
  std::vector<Function> rest;
  std::vector<Warning> slot_warnings, rest_warnings;
  for (const auto& d : all) {
    if (!wanted.count(d.addr)) continue;
    const bool mine = d.addr.same_slot(in_slot.front());
    Result<ConfigSpace> cfg = std::unexpected(Error{});
    Function f = whole ? read_function(root, d, all, kernel_knows, src, consoles, journal,
                                       mine ? slot_warnings : rest_warnings)
                       : read_volatile(root, d, src, consoles, cfg);
    f.in_slot = mine;
    (f.in_slot ? s.functions : rest).push_back(std::move(f));
  }
  for (auto& f : rest) s.functions.push_back(std::move(f));
  for (auto* ws : {&slot_warnings, &rest_warnings})
    for (auto& w : *ws) s.warnings.push_back(std::move(w));
  read_consoles(s, consoles);
  if (journal) {
    if (journal->job) s.journal_job = journal->job->op;
  } else {
    s.journal_error = journal.error().describe();
  }
  return s;
}

std::string con2fb_text(const std::map<int, int>& map) {
  std::map<int, std::vector<int>> by_fb;
  for (const auto& [con, fb] : map) by_fb[fb].push_back(con);
  std::string out;
  for (const auto& [fb, cons] : by_fb)
    out += (out.empty() ? "" : " ") + console::console_ranges(cons) + "=fb" + std::to_string(fb);
  return out;
}

std::vector<std::string> command_bits(uint16_t c) {
  static const std::pair<uint16_t, const char*> bits[] = {
      {0x0001, "io"},       {0x0002, "mem"},         {0x0004, "master"}, {0x0008, "special"},
      {0x0010, "mwi"},      {0x0020, "vga-snoop"},   {0x0040, "parity"}, {0x0100, "serr"},
      {0x0200, "fast-b2b"}, {0x0400, "intx-disable"}};
  std::vector<std::string> out;
  for (const auto& [bit, name] : bits)
    if (c & bit) out.push_back(name);
  return out;
}

// ---------------------------------------------------------------- JSON

namespace {

json nul(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

char hex_digit(unsigned v) {
  return "0123456789abcdef"[v & 0xf];
}

std::string hex16(uint16_t v) {
  std::string s = "0x";
  for (int shift = 12; shift >= 0; shift -= 4) s += hex_digit(v >> shift);
  return s;
}

json vga_json(const Vga& v, bool locks) {
  json j{{"decodes", v.decodes}, {"owns", v.owns}};
  if (locks) j.update({{"locks", v.locks}, {"io_locks", v.io_locks}, {"mem_locks", v.mem_locks}});
  return j;
}

json function_json(const Function& f) {
  json j;
  j["bdf"] = f.bdf;
  j["in_slot"] = f.in_slot;
  j["vendor"] = f.vendor;
  j["device_id"] = f.device_id;
  j["vendor_name"] = render::opt(f.vendor_name);
  j["device_name"] = render::opt(f.device_name);
  j["class"] = f.class_id;
  j["class_name"] = nul(f.class_name);
  j["driver"] = nul(f.driver);
  j["driver_override"] = nul(f.driver_override);
  j["iommu_group"] = render::opt(f.iommu_group);
  j["vfio_node"] = nul(f.vfio_node);
  j["boot_vga"] = render::opt(f.boot_vga);
  j["power"] = {{"state", nul(f.power_state)},
                {"config_state", nul(f.pm_state)},
                {"runtime_status", nul(f.runtime_status)},
                {"runtime_control", nul(f.runtime_control)},
                {"d3cold_allowed", render::opt(f.d3cold_allowed)},
                {"vfio_disable_idle_d3", render::opt(f.vfio_disable_idle_d3)}};
  j["command"] = f.command ? json{{"value", hex16(*f.command)}, {"bits", command_bits(*f.command)}}
                           : json(nullptr);
  if (f.link)
    j["link"] = {{"speed", nul(f.link->speed)},
                 {"width", f.link->width},
                 {"max_speed", nul(f.link->max_speed)},
                 {"max_width", f.link->max_width}};
  else
    j["link"] = nullptr;
  j["aer"] = f.aer ? json{{"correctable", f.aer->correctable},
                          {"nonfatal", f.aer->nonfatal},
                          {"fatal", f.aer->fatal}}
                   : json(nullptr);
  j["reset_methods"] = {{"kernel", render::opt(f.kernel_reset_methods)},
                        {"available", f.reset_methods}};
  j["vga"] = f.vga ? vga_json(*f.vga, true) : json(nullptr);
  j["vga_error"] = nul(f.vga_error);
  j["framebuffers"] = f.framebuffers;
  json fw = json::array();
  for (const auto& x : f.firmware)
    fw.push_back({{"name", x.name}, {"driver", nul(x.driver)}, {"how", x.how}});
  j["firmware_framebuffers"] = fw;
  if (f.drm) {
    const Drm& d = *f.drm;
    json cs = json::array();
    for (const auto& c : d.connectors)
      cs.push_back({{"name", c.name},
                    {"status", nul(c.status)},
                    {"enabled", nul(c.enabled)},
                    {"dpms", nul(c.dpms)},
                    {"modes", c.modes}});
    j["drm"] = {{"card", d.card},
                {"node", d.node},
                {"node_exists", d.node_exists},
                {"render", nul(d.render)},
                {"connectors", cs},
                {"kms", d.kms},
                {"kms_error", nul(d.kms_error)},
                {"verdict", d.verdict},
                {"fbcon_on_card", render::opt(d.fbcon_on_card)}};
  } else {
    j["drm"] = nullptr;
  }
  json hs = json::array();
  for (const auto& h : f.holders)
    hs.push_back({{"pid", h.pid}, {"command", h.command}, {"node", h.node}});
  j["holders"] = hs;
  j["journal"] = f.journal ? json{{"driver", nul(f.journal->from_driver)},
                                  {"to", nul(f.journal->to)},
                                  {"driver_override", nul(f.journal->from_override)},
                                  {"boot", f.journal->boot}}
                           : json(nullptr);
  j["journal_vga"] = f.journal_vga ? vga_json(*f.journal_vga, false) : json(nullptr);
  j["journal_consoles"] = f.journal_consoles;
  return j;
}

// Reads a document field by field; the first problem is kept and every
// later read returns a default, so a parse is one pass and one error.
class In {
 public:
  std::string error;

  const json* get(const json& o, const char* key, const std::string& where) {
    if (!error.empty()) return nullptr;
    if (!o.is_object()) return bad(where, "not an object"), nullptr;
    auto it = o.find(key);
    if (it == o.end()) return bad(where + "." + key, "missing"), nullptr;
    return &*it;
  }
  std::string str(const json& o, const char* key, const std::string& w, bool null_ok = true) {
    const json* v = get(o, key, w);
    if (!v) return "";
    if (v->is_null() && null_ok) return "";
    if (!v->is_string()) return bad(w + "." + key, "not a string"), "";
    return v->get<std::string>();
  }
  std::optional<std::string> opt_str(const json& o, const char* key, const std::string& w) {
    const json* v = get(o, key, w);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) return bad(w + "." + key, "not a string"), std::nullopt;
    return v->get<std::string>();
  }
  bool boolean(const json& o, const char* key, const std::string& w) {
    const json* v = get(o, key, w);
    if (!v) return false;
    if (!v->is_boolean()) return bad(w + "." + key, "not true or false"), false;
    return v->get<bool>();
  }
  std::optional<bool> opt_bool(const json& o, const char* key, const std::string& w) {
    const json* v = get(o, key, w);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_boolean()) return bad(w + "." + key, "not true, false or null"), std::nullopt;
    return v->get<bool>();
  }
  std::optional<uint64_t> opt_uint(const json& o, const char* key, const std::string& w,
                                   uint64_t max) {
    const json* v = get(o, key, w);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_number_unsigned() || v->get<uint64_t>() > max)
      return bad(w + "." + key, "not a number from 0 to " + std::to_string(max)), std::nullopt;
    return v->get<uint64_t>();
  }
  uint64_t uint(const json& o, const char* key, const std::string& w, uint64_t max) {
    const json* v = get(o, key, w);
    if (v && v->is_null()) return bad(w + "." + key, "null"), 0;
    return opt_uint(o, key, w, max).value_or(0);
  }
  std::vector<std::string> strings(const json& o, const char* key, const std::string& w) {
    auto v = opt_strings(o, key, w);
    if (!v && error.empty()) bad(w + "." + key, "null");
    return v.value_or(std::vector<std::string>{});
  }
  std::optional<std::vector<std::string>> opt_strings(const json& o, const char* key,
                                                      const std::string& w) {
    const json* v = get(o, key, w);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_array()) return bad(w + "." + key, "not a list"), std::nullopt;
    std::vector<std::string> out;
    for (const auto& e : *v) {
      if (!e.is_string())
        return bad(w + "." + key, "holds a value that is not a string"), std::nullopt;
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  // An array of objects (possibly empty), or null for NULL_OK.
  const json* objects(const json& o, const char* key, const std::string& w) {
    const json* v = get(o, key, w);
    if (!v) return nullptr;
    if (!v->is_array()) return bad(w + "." + key, "not a list"), nullptr;
    for (const auto& e : *v)
      if (!e.is_object()) return bad(w + "." + key, "holds a value that is not an object"), nullptr;
    return v;
  }
  // An object, or nullptr for null.
  const json* object(const json& o, const char* key, const std::string& w) {
    const json* v = get(o, key, w);
    if (!v || v->is_null()) return nullptr;
    if (!v->is_object()) return bad(w + "." + key, "not an object or null"), nullptr;
    return v;
  }

 private:
  void bad(const std::string& where, const std::string& what) {
    if (error.empty()) error = where + " is " + what;
  }
};

Vga vga_from(In& in, const json& v, const std::string& w, bool locks) {
  Vga g;
  g.decodes = in.str(v, "decodes", w, false);
  g.owns = in.str(v, "owns", w, false);
  if (locks) {
    g.locks = in.str(v, "locks", w, false);
    g.io_locks = unsigned(in.uint(v, "io_locks", w, UINT32_MAX));
    g.mem_locks = unsigned(in.uint(v, "mem_locks", w, UINT32_MAX));
  }
  for (const auto* s : {&g.decodes, &g.owns, &g.locks})
    if (!(s->empty() && !locks) && !vga::parse_state(*s) && in.error.empty())
      in.error = w + " holds " + render::quote(*s) + ", not none, io, mem or io+mem";
  return g;
}

std::optional<uint16_t> parse_hex16(const std::string& s) {
  if (s.size() != 6 || s[0] != '0' || s[1] != 'x') return std::nullopt;
  uint16_t v = 0;
  for (size_t i = 2; i < 6; ++i) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = uint16_t(v << 4 | d);
  }
  return v;
}

Function function_from(In& in, const json& j, const std::string& w0) {
  Function f;
  f.bdf = in.str(j, "bdf", w0, false);
  if (in.error.empty() && !parse_sysfs_name(f.bdf))
    in.error = w0 + ".bdf is " + render::quote(f.bdf) + ", not a PCI address like 0000:01:00.0";
  const std::string w = in.error.empty() ? f.bdf : w0;
  f.in_slot = in.boolean(j, "in_slot", w);
  f.vendor = in.str(j, "vendor", w, false);
  f.device_id = in.str(j, "device_id", w, false);
  f.vendor_name = in.opt_str(j, "vendor_name", w);
  f.device_name = in.opt_str(j, "device_name", w);
  f.class_id = in.str(j, "class", w, false);
  f.class_name = in.str(j, "class_name", w);
  f.driver = in.str(j, "driver", w);
  f.driver_override = in.str(j, "driver_override", w);
  if (auto g = in.opt_uint(j, "iommu_group", w, INT32_MAX)) f.iommu_group = int(*g);
  f.vfio_node = in.str(j, "vfio_node", w);
  f.boot_vga = in.opt_bool(j, "boot_vga", w);
  if (const json* p = in.object(j, "power", w)) {
    f.power_state = in.str(*p, "state", w + ".power");
    f.pm_state = in.str(*p, "config_state", w + ".power");
    f.runtime_status = in.str(*p, "runtime_status", w + ".power");
    f.runtime_control = in.str(*p, "runtime_control", w + ".power");
    // Snapshots from before these fields have neither.
    if (p->is_object() && p->contains("d3cold_allowed"))
      f.d3cold_allowed = in.opt_bool(*p, "d3cold_allowed", w + ".power");
    if (p->is_object() && p->contains("vfio_disable_idle_d3"))
      f.vfio_disable_idle_d3 = in.opt_bool(*p, "vfio_disable_idle_d3", w + ".power");
  } else if (in.error.empty()) {
    in.error = w + ".power is missing";
  }
  if (const json* c = in.object(j, "command", w)) {
    auto text = in.str(*c, "value", w + ".command", false);
    f.command = parse_hex16(text);
    if (!f.command && in.error.empty())
      in.error = w + ".command.value is " + render::quote(text) + ", not a register like 0x0107";
  }
  if (const json* l = in.object(j, "link", w)) {
    Link k;
    k.speed = in.str(*l, "speed", w + ".link");
    k.width = int(in.uint(*l, "width", w + ".link", 64));
    k.max_speed = in.str(*l, "max_speed", w + ".link");
    k.max_width = int(in.uint(*l, "max_width", w + ".link", 64));
    f.link = k;
  }
  if (const json* a = in.object(j, "aer", w)) {
    Aer e;
    e.correctable = in.uint(*a, "correctable", w + ".aer", UINT64_MAX);
    e.nonfatal = in.uint(*a, "nonfatal", w + ".aer", UINT64_MAX);
    e.fatal = in.uint(*a, "fatal", w + ".aer", UINT64_MAX);
    f.aer = e;
  }
  if (const json* r = in.object(j, "reset_methods", w)) {
    f.kernel_reset_methods = in.opt_strings(*r, "kernel", w + ".reset_methods");
    f.reset_methods = in.strings(*r, "available", w + ".reset_methods");
  } else if (in.error.empty()) {
    in.error = w + ".reset_methods is missing";
  }
  if (const json* v = in.object(j, "vga", w)) f.vga = vga_from(in, *v, w + ".vga", true);
  f.vga_error = in.str(j, "vga_error", w);
  f.framebuffers = in.strings(j, "framebuffers", w);
  if (const json* fws = in.objects(j, "firmware_framebuffers", w))
    for (const auto& x : *fws) {
      const std::string wx = w + ".firmware_framebuffers";
      f.firmware.push_back(
          {in.str(x, "name", wx, false), in.str(x, "driver", wx), in.str(x, "how", wx, false)});
    }
  if (const json* d = in.object(j, "drm", w)) {
    const std::string wd = w + ".drm";
    Drm x;
    x.card = in.str(*d, "card", wd, false);
    x.node = in.str(*d, "node", wd, false);
    x.node_exists = in.boolean(*d, "node_exists", wd);
    x.render = in.str(*d, "render", wd);
    if (const json* cs = in.objects(*d, "connectors", wd))
      for (const auto& c : *cs) {
        const std::string wc = wd + ".connectors";
        x.connectors.push_back({in.str(c, "name", wc, false), in.str(c, "status", wc),
                                in.str(c, "enabled", wc), in.str(c, "dpms", wc),
                                int(in.uint(c, "modes", wc, INT32_MAX))});
      }
    x.kms = in.str(*d, "kms", wd, false);
    x.kms_error = in.str(*d, "kms_error", wd);
    x.verdict = in.str(*d, "verdict", wd, false);
    x.fbcon_on_card = in.opt_bool(*d, "fbcon_on_card", wd);
    f.drm = x;
  }
  if (const json* hs = in.objects(j, "holders", w))
    for (const auto& h : *hs) {
      const std::string wh = w + ".holders";
      f.holders.push_back({int(in.uint(h, "pid", wh, INT32_MAX)), in.str(h, "command", wh, false),
                           in.str(h, "node", wh, false)});
    }
  if (const json* r = in.object(j, "journal", w)) {
    const std::string wr = w + ".journal";
    f.journal = Record{in.str(*r, "driver", wr), in.str(*r, "to", wr),
                       in.str(*r, "driver_override", wr), in.boolean(*r, "boot", wr)};
  }
  if (const json* v = in.object(j, "journal_vga", w))
    f.journal_vga = vga_from(in, *v, w + ".journal_vga", false);
  f.journal_consoles = in.strings(j, "journal_consoles", w);
  return f;
}

}  // namespace

json to_json(const Snapshot& s) {
  json j;
  j["device"] = s.device;
  json fs = json::array();
  for (const auto& f : s.functions) fs.push_back(function_json(f));
  j["functions"] = fs;
  json vs = json::array();
  for (const auto& v : s.vtconsoles)
    vs.push_back({{"name", v.name}, {"mark", nul(v.mark)}, {"bound", v.bound}});
  j["vtconsoles"] = vs;
  j["active_vt"] = nul(s.active_vt);
  if (s.con2fb) {
    json m = json::object();
    for (const auto& [con, fb] : *s.con2fb) m[std::to_string(con)] = fb;
    j["con2fb"] = m;
  } else {
    j["con2fb"] = nullptr;
  }
  j["journal"] = {{"job", nul(s.journal_job)}, {"error", nul(s.journal_error)}};
  json ws = json::array();
  for (const auto& w : s.warnings)
    ws.push_back({{"kind", w.kind}, {"device", nul(w.device)}, {"message", w.message}});
  j["warnings"] = ws;
  return j;
}

Result<Snapshot> from_json(const json& doc, const std::string& subject) {
  In in;
  Snapshot s;
  const auto format = in.opt_uint(doc, "format", "snapshot", INT32_MAX);
  if (in.error.empty() && format != uint64_t(kFormat))
    return usage_error(subject, "snapshot format " + (format ? std::to_string(*format) : "null") +
                                    " is not " + std::to_string(kFormat) +
                                    "; take it again with this pt's 'pt snapshot'");
  s.device = in.str(doc, "device", "snapshot", false);
  if (in.error.empty() && !parse_device_spec(s.device))
    return usage_error(subject, "snapshot.device " + render::quote(s.device) +
                                    " is not a PCI address; the file is not a pt snapshot");
  if (const json* fs = in.objects(doc, "functions", "snapshot")) {
    if (fs->size() > 256) return usage_error(subject, "snapshot holds more than 256 functions");
    std::set<std::string> seen;
    for (size_t i = 0; i < fs->size() && in.error.empty(); ++i) {
      auto f = function_from(in, (*fs)[i], "functions[" + std::to_string(i) + "]");
      if (in.error.empty() && !seen.insert(f.bdf).second)
        in.error = "functions lists " + f.bdf + " twice";
      s.functions.push_back(std::move(f));
    }
  }
  if (const json* vs = in.objects(doc, "vtconsoles", "snapshot"))
    for (const auto& v : *vs)
      s.vtconsoles.push_back({in.str(v, "name", "vtconsoles", false),
                              in.str(v, "mark", "vtconsoles"),
                              in.boolean(v, "bound", "vtconsoles")});
  s.active_vt = in.str(doc, "active_vt", "snapshot");
  if (const json* m = in.object(doc, "con2fb", "snapshot")) {
    s.con2fb.emplace();
    for (const auto& [k, v] : m->items()) {
      const auto con = parse_index(k);
      if (!con || *con < 1 || *con > 63 || !v.is_number_unsigned() || v.get<uint64_t>() > 31) {
        if (in.error.empty())
          in.error = "snapshot.con2fb holds " + render::quote(k) +
                     ", not a console 1-63 mapped to a framebuffer 0-31";
        break;
      }
      (*s.con2fb)[int(*con)] = int(v.get<uint64_t>());
    }
  }
  if (const json* jr = in.object(doc, "journal", "snapshot")) {
    s.journal_job = in.str(*jr, "job", "journal");
    s.journal_error = in.str(*jr, "error", "journal");
  } else if (in.error.empty()) {
    in.error = "snapshot.journal is missing";
  }
  // A snapshot taken before pt looked for warnings has none to compare.
  if (in.error.empty() && doc.contains("warnings"))
    if (const json* ws = in.objects(doc, "warnings", "snapshot"))
      for (const auto& w : *ws) {
        Warning x{in.str(w, "kind", "warnings", false), in.str(w, "device", "warnings"),
                  in.str(w, "message", "warnings", false)};
        if (in.error.empty() && !x.device.empty() && !parse_sysfs_name(x.device))
          in.error = "warnings holds device " + render::quote(x.device) +
                     ", not a PCI address like 0000:01:00.0";
        s.warnings.push_back(std::move(x));
      }
  if (!in.error.empty())
    return usage_error(subject, in.error + "; the file is not a pt snapshot (pt snapshot -o FILE)");
  return s;
}

Result<Snapshot> load(const std::string& path) {
  auto bytes = read_bytes(path);
  if (!bytes) {
    Error e = bytes.error();
    e.subject = path;
    e.exit = Exit::usage;
    if (e.message.empty()) e.message = "cannot read the snapshot";
    return std::unexpected(e);
  }
  if (bytes->size() > kMaxSnapshotBytes)
    return usage_error(path, "larger than a snapshot pt writes");
  json doc = json::parse(*bytes, nullptr, false);
  if (doc.is_discarded())
    return usage_error(path, "not JSON; name a file 'pt snapshot -o FILE' wrote");
  return from_json(doc, path);
}

// ---------------------------------------------------------------- diff

namespace {

std::string show(const json& v) {
  if (v.is_null()) return "(none)";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const auto& e : v) out += (out.empty() ? "" : " ") + show(e);
    return out.empty() ? "(none)" : out;
  }
  return v.dump();
}

// What an element of a list of objects is called: connectors and
// framebuffers by name, holders by command and node (not by pid).
std::string element_key(const json& e) {
  if (auto it = e.find("name"); it != e.end() && it->is_string()) return it->get<std::string>();
  std::string key;
  for (const char* k : {"command", "node"})
    if (auto it = e.find(k); it != e.end() && it->is_string())
      key += (key.empty() ? "" : " ") + it->get<std::string>();
  return key;
}

// Derived or per-run values that say nothing a person would compare: the
// command register's bits follow its value; a holder's pid changes with
// every restart of the same daemon.
bool skipped(const std::string& field) {
  return field == "command.bits" || field == "in_slot" ||
         (field.starts_with("holders[") && field.ends_with("].pid"));
}

void flatten(const json& v, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (v.is_object()) {
    // A part that is there, so that one that comes or goes is one change.
    if (!prefix.empty()) out[prefix] = "present";
    for (const auto& [k, x] : v.items()) flatten(x, prefix.empty() ? k : prefix + "." + k, out);
    return;
  }
  if (v.is_array() && !v.empty() && v.front().is_object()) {
    for (const auto& e : v) flatten(e, prefix + "[" + element_key(e) + "]", out);
    return;
  }
  if (skipped(prefix)) return;
  out[prefix] = show(v);
}

std::map<std::string, std::string> flat(const json& v) {
  std::map<std::string, std::string> m;
  flatten(v, "", m);
  std::erase_if(m, [](const auto& kv) { return skipped(kv.first); });
  return m;
}

void compare(const std::string& fn, const std::map<std::string, std::string>& a,
             const std::map<std::string, std::string>& b, std::vector<Change>& all) {
  std::vector<Change> out;
  auto ia = a.begin();
  auto ib = b.begin();
  // An empty list reads (none) under its own key, but a list of objects
  // flattens into its elements and keeps no key: a key that one side lacks
  // and the other reads as (none) is no change (a first holder is one line,
  // not also "holders: (none) -> (none)").
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      if (ia->second != "(none)") out.push_back({fn, ia->first, ia->second, "(none)"});
      ++ia;
    } else if (ia == a.end() || ib->first < ia->first) {
      if (ib->second != "(none)") out.push_back({fn, ib->first, "(none)", ib->second});
      ++ib;
    } else {
      if (ia->second != ib->second) out.push_back({fn, ia->first, ia->second, ib->second});
      ++ia, ++ib;
    }
  }
  // A part that came or went stands for every field inside it.
  std::vector<std::string> whole;
  for (const auto& c : out)
    if ((c.before == "present") != (c.after == "present")) whole.push_back(c.field);
  for (auto& c : out) {
    const bool inside = std::any_of(whole.begin(), whole.end(), [&](const std::string& w) {
      return c.field.size() > w.size() && c.field.starts_with(w) &&
             (c.field[w.size()] == '.' || c.field[w.size()] == '[');
    });
    if (!inside) all.push_back(std::move(c));
  }
}

}  // namespace

nlohmann::json changes_json(const std::vector<Change>& changes) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& c : changes)
    arr.push_back(
        {{"function", c.function.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.function)},
         {"field", c.field},
         {"before", c.before},
         {"after", c.after}});
  return arr;
}

std::string summary(const Snapshot& s) {
  std::string out;
  for (const auto& f : s.functions) {
    if (!f.in_slot) continue;
    if (!out.empty()) out += "; ";
    out += f.bdf + " " + (f.driver.empty() ? "no driver" : f.driver);
    if (!f.driver_override.empty()) out += " override=" + f.driver_override;
    if (!f.power_state.empty()) out += " " + f.power_state;
    if (f.vga) out += " decodes=" + f.vga->decodes;
  }
  std::string bound;
  for (const auto& v : s.vtconsoles)
    if (v.bound) bound += (bound.empty() ? "" : ", ") + v.name;
  out += "; vtcon bound: " + (bound.empty() ? std::string("none") : bound);
  if (!s.journal_job.empty()) out += "; journal job: " + s.journal_job;
  return out;
}

std::string Change::describe() const {
  return (function.empty() ? "" : function + " ") + field + ": " + before + " -> " + after;
}

std::vector<Change> diff(const Snapshot& a, const Snapshot& b) {
  std::vector<Change> out;
  std::map<std::string, const Function*> fa, fb;
  for (const auto& f : a.functions) fa[f.bdf] = &f;
  for (const auto& f : b.functions) fb[f.bdf] = &f;
  std::set<std::string> names;
  for (const auto& [k, _] : fa) names.insert(k);
  for (const auto& [k, _] : fb) names.insert(k);
  for (const auto& n : names) {
    auto x = fa.find(n), y = fb.find(n);
    if (x == fa.end() || y == fb.end()) {
      out.push_back(
          {n, "present", x == fa.end() ? "(none)" : "yes", y == fb.end() ? "(none)" : "yes"});
      continue;
    }
    compare(n, flat(function_json(*x->second)), flat(function_json(*y->second)), out);
  }
  json ga = to_json(a), gb = to_json(b);
  ga.erase("functions"), gb.erase("functions");
  ga.erase("device"), gb.erase("device");
  // The map as one line: a console's framebuffer moves with all the others.
  ga["con2fb"] = a.con2fb ? json(con2fb_text(*a.con2fb)) : json(nullptr);
  gb["con2fb"] = b.con2fb ? json(con2fb_text(*b.con2fb)) : json(nullptr);
  ga.erase("warnings"), gb.erase("warnings");
  compare("", flat(ga), flat(gb), out);
  // Warnings by the device they are about: one that comes or goes is a
  // change of that function (or of the machine), its message the value.
  std::map<std::string, std::map<std::string, std::string>> wa, wb;
  auto keyed = [](const std::vector<Warning>& ws, auto& m) {
    for (const auto& w : ws) {
      std::string& v = m[w.device]["warning " + w.kind];
      v += (v.empty() ? "" : "; ") + w.message;
    }
  };
  keyed(a.warnings, wa);
  keyed(b.warnings, wb);
  std::set<std::string> devices;
  for (const auto& [k, _] : wa) devices.insert(k);
  for (const auto& [k, _] : wb) devices.insert(k);
  for (const auto& d : devices) compare(d, wa[d], wb[d], out);
  return out;
}

}  // namespace pt::state
