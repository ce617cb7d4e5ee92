#include "pt/rebar.hpp"

#include <cctype>
#include <cstring>

#include "pt/render.hpp"
#include "pt/sysfs.hpp"
#include "pt/try.hpp"

namespace pt::rebar {

namespace {

constexpr uint16_t kCap = 4;   // per entry: capability register, then control
constexpr uint16_t kCtrl = 8;  // the first entry's control register
constexpr const char* kUnits = "MGTPE";

}  // namespace

std::vector<Bar> decode(const ConfigSpace& config) {
  std::vector<Bar> out;
  auto pos = config.find_ext(kExtCapRebar);
  if (!pos) return out;
  // The number of entries is in the first control register only.
  int n = (config.u32(*pos + kCtrl) >> 5) & 7;
  if (n < 1 || n > 6) n = 1;
  for (int i = 0; i < n; ++i) {
    const uint16_t cap = uint16_t(*pos + kCap + 8 * i);
    const uint16_t ctrl = uint16_t(*pos + kCtrl + 8 * i);
    if (size_t(ctrl) + 4 > config.size()) break;
    const uint32_t c = config.u32(cap), k = config.u32(ctrl);
    Bar b;
    b.index = int(k & 7);
    // Capability bits 4..31: 1M .. 128T; control bits 16..31: 256T .. 8E.
    b.supported = uint64_t(c >> 4) | uint64_t(k >> 16) << 28;
    b.current = int((k >> 8) & 0x3f);
    b.control = ctrl;
    out.push_back(b);
  }
  return out;
}

std::string size_name(int size) {
  if (size < 0 || size > kMaxSize) return "?";
  return std::to_string(1ull << (size % 10)) + kUnits[size / 10];
}

std::string size_list(uint64_t mask) {
  std::string out;
  for (int s = 0; s <= kMaxSize; ++s)
    if (mask >> s & 1) out += (out.empty() ? "" : " ") + size_name(s);
  return out.empty() ? "none" : out;
}

Result<int> parse_size(const std::string& text, const std::string& subject) {
  auto bad = [&](const std::string& why) {
    return usage_error(subject + " " + render::quote(text),
                       why + "; give a power of two with a unit, such as 256M, 8G or 1T");
  };
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0) return bad("does not start with a number");
  std::string unit = text.substr(digits);
  for (auto& ch : unit) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  if (unit.size() == 3 && unit.substr(1) == "IB") unit.resize(1);
  if (unit.size() == 2 && unit[1] == 'B') unit.resize(1);
  const char* u = unit.size() == 1 ? std::strchr(kUnits, unit[0]) : nullptr;
  if (!u || unit[0] == '\0') return bad("has no unit M, G, T, P or E");
  auto n = parse_index(std::string_view(text).substr(0, digits));
  if (!n || *n == 0 || (*n & (*n - 1)) != 0 || *n > 512) return bad("is not a power of two");
  int size = int(u - kUnits) * 10;
  for (uint32_t v = *n; v > 1; v >>= 1) ++size;
  if (size > kMaxSize) return bad("is larger than 8E, the largest size the capability has");
  return size;
}

Result<Request> parse_request(const std::string& text, const std::string& subject) {
  auto eq = text.find('=');
  if (eq == std::string::npos)
    return usage_error(subject + " " + render::quote(text),
                       "needs BAR=SIZE, such as 0=8G (BAR 0 resized to 8 GiB)");
  auto bar = parse_index(std::string_view(text).substr(0, eq));
  if (!bar || *bar > 5)
    return usage_error(subject + " " + render::quote(text), "the BAR must be a number from 0 to 5");
  Request r;
  r.bar = int(*bar);
  r.size = PT_TRY(parse_size(text.substr(eq + 1), subject));
  return r;
}

std::string resize_path(const PciAddress& addr, int bar) {
  return "/sys/bus/pci/devices/" + addr.str() + "/resource" + std::to_string(bar) + "_resize";
}

Result<std::vector<Bar>> read(const Root& root, const PciAddress& addr) {
  auto cfg = PT_TRY(load_config(root, addr, 4096));
  if (auto why = cfg.ext_caps_unreadable()) return fail(addr.str(), *why, EIO);
  return decode(cfg);
}

const Bar* find(const std::vector<Bar>& bars, int index) {
  for (const auto& b : bars)
    if (b.index == index) return &b;
  return nullptr;
}

Status check(const Root& root, const PciAddress& addr, const std::vector<Bar>& bars,
             const Request& request) {
  const std::string bar = "BAR " + std::to_string(request.bar);
  if (bars.empty())
    return usage_error(addr.str(), "has no Resizable BAR capability, so " + bar +
                                       " cannot be resized; drop --rebar for it");
  const Bar* b = find(bars, request.bar);
  if (!b) {
    std::string have;
    for (const auto& x : bars) have += (have.empty() ? "" : ", ") + std::to_string(x.index);
    return usage_error(addr.str(),
                       bar + " is not resizable; its Resizable BAR capability covers BAR " + have);
  }
  if (!(b->supported >> request.size & 1))
    return usage_error(addr.str(), bar + " does not support " + size_name(request.size) +
                                       "; it supports " + size_list(b->supported));
  if (!path_exists(root, resize_path(addr, request.bar)))
    return fail(resize_path(addr, request.bar),
                "this kernel cannot resize a BAR: resourceN_resize needs Linux " +
                    std::string(kResizeKernel) + " or later; nothing was changed",
                ENOENT);
  return {};
}

}  // namespace pt::rebar
