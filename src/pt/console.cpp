#include "pt/console.hpp"

#include <fcntl.h>
#include <linux/fb.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <set>

#include "pt/address.hpp"
#include "pt/sysfs.hpp"

namespace pt::console {

namespace fs = std::filesystem;

namespace {

// Realpath of a link under the root, unprefixed; "" when it does not resolve.
std::string resolve(const Root& root, const std::string& abs) {
  std::error_code ec;
  auto p = fs::canonical(root.path(abs), ec);
  if (ec) return "";
  return root.unprefix(p.string());
}

// The last path component that is a PCI function name: the function a
// device hangs under ("/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0/virtio0").
std::string pci_ancestor(const std::string& path) {
  std::string found;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (parse_sysfs_name(part)) found = part;
    start = end + 1;
  }
  return found;
}

// "fb0"; an index no int holds ("fb99999999999") is no frame buffer, so
// every later std::stoi of a node's index is in range.
bool is_fb_node(const std::string& n) {
  return n.size() > 2 && n.rfind("fb", 0) == 0 && parse_index(std::string_view(n).substr(2));
}

// The /proc/iomem names a firmware framebuffer's memory shows up under,
// most specific first: the claiming driver's region, then sysfb's.
std::vector<std::string> iomem_names(const std::string& device) {
  if (device.rfind("vesa-framebuffer.", 0) == 0) return {"vesafb", "BOOTFB"};
  if (device.rfind("efi-framebuffer.", 0) == 0) return {"efifb", "BOOTFB"};
  if (device.rfind("simple-framebuffer.", 0) == 0) return {"simpledrm", "simplefb", "BOOTFB"};
  if (device.rfind("vga-framebuffer.", 0) == 0) return {"vga16fb"};
  return {};
}

// FBIOGET_CON2FBMAP through the first /dev/fbN that is a character device.
Con2Fb read_con2fb(const Root& root, const std::vector<Framebuffer>& fbs) {
  Con2Fb out;
  for (const auto& fb : fbs) {
    const std::string node = root.path("/dev/" + fb.node);
    struct stat st {};
    if (::stat(node.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) continue;
    int fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    bool ok = true;
    for (int c = 1; c <= 63; ++c) {
      fb_con2fbmap m{};
      m.console = uint32_t(c);
      if (::ioctl(fd, FBIOGET_CON2FBMAP, &m) != 0) {
        ok = false;
        break;
      }
      // Unmapped consoles read back as -1 (0xffffffff).
      if (int32_t(m.framebuffer) >= 0) out.map[c] = int(m.framebuffer);
    }
    ::close(fd);
    if (ok) {
      out.known = true;
      return out;
    }
    out.map.clear();
  }
  return out;
}

// The driver behind a framebuffer's device: its own, unless the device is
// a virtio transport whose virtio child carries the GPU driver (on 6.1
// virtio-gpu's fbN and card0 hang on the PCI function, bound to
// virtio-pci, and virtio_gpu is bound to DEV/virtio0).
std::string drm_driver_of(const Root& root, const std::string& device) {
  for (const auto& child : list_dir(root.path(device)))
    if (link_basename(root.path(device + "/" + child + "/subsystem")).value_or("") == "virtio")
      if (auto d = link_basename(root.path(device + "/" + child + "/driver"))) return *d;
  return link_basename(root.path(device + "/driver")).value_or("");
}

}  // namespace

const char* attribution_name(Attribution a) {
  // In the enum's order.
  static constexpr const char* names[] = {"none", "parent", "iomem", "boot_vga"};
  static_assert(std::size(names) == size_t(Attribution::boot_vga) + 1);
  return names[size_t(a)];
}

bool is_firmware_fb_name(const std::string& name) {
  for (const char* p :
       {"simple-framebuffer.", "efi-framebuffer.", "vesa-framebuffer.", "vga-framebuffer."})
    if (name.rfind(p, 0) == 0 && name.size() > std::string(p).size()) return true;
  return false;
}

std::pair<std::string, std::string> split_mark(const std::string& raw) {
  if (raw.size() >= 4 && raw[0] == '(' && raw[2] == ')' && raw[3] == ' ')
    return {std::string(1, raw[1]), raw.substr(4)};
  return {"", raw};
}

std::vector<IomemEntry> parse_iomem(const std::string& text) {
  std::vector<IomemEntry> out;
  std::vector<int> stack;  // indices of the open entries, by depth
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    size_t sp = line.find_first_not_of(' ');
    size_t colon = line.find(" : ");
    if (sp == std::string::npos || colon == std::string::npos) continue;
    IomemEntry e;
    e.depth = int(sp / 2);  // the kernel indents each level by two spaces
    e.name = line.substr(colon + 3);
    while (int(stack.size()) > e.depth) stack.pop_back();
    e.parents = stack;
    out.push_back(e);
    stack.push_back(int(out.size() - 1));
  }
  return out;
}

const VtConsole* State::fbcon() const {
  for (const auto& v : vtconsoles)
    if (v.is_fbcon()) return &v;
  return nullptr;
}

const VtConsole* State::vtconsole(const std::string& name) const {
  auto want = split_mark(name).second;
  for (const auto& v : vtconsoles)
    if (v.name == want) return &v;
  return nullptr;
}

const FirmwareFb* State::firmware_fb(const std::string& name) const {
  for (const auto& f : firmware)
    if (f.name == name) return &f;
  return nullptr;
}

std::vector<const Framebuffer*> State::framebuffers_of(const std::string& gpu) const {
  std::vector<const Framebuffer*> out;
  for (const auto& f : framebuffers)
    if (!gpu.empty() && f.gpu == gpu) out.push_back(&f);
  return out;
}

std::vector<const FirmwareFb*> State::firmware_of(const std::string& gpu) const {
  std::vector<const FirmwareFb*> out;
  for (const auto& f : firmware)
    if (!gpu.empty() && f.gpu == gpu) out.push_back(&f);
  return out;
}

Result<State> discover(const Root& root) {
  State s;
  for (const auto& n : list_dir(root.path("/sys/class/vtconsole"))) {
    // "vtcon1"; anything else there ("vtconX", an index past int) is skipped,
    // so the index console_change takes with std::stoi is in range.
    if (n.rfind("vtcon", 0) != 0 || !parse_index(std::string_view(n).substr(5))) continue;
    const std::string base = root.path("/sys/class/vtconsole/" + n);
    auto raw = read_attr(base + "/name");
    if (!raw) continue;  // went away while we looked
    VtConsole v;
    v.node = n;
    std::tie(v.mark, v.name) = split_mark(*raw);
    v.bound = read_attr(base + "/bind").value_or("0") == "1";
    s.vtconsoles.push_back(v);
  }
  std::sort(s.vtconsoles.begin(), s.vtconsoles.end(), [](const VtConsole& a, const VtConsole& b) {
    return a.node.size() != b.node.size() ? a.node.size() < b.node.size() : a.node < b.node;
  });

  for (const auto& d : list_dir(root.path("/sys/bus/pci/devices")))
    if (read_attr(root.path("/sys/bus/pci/devices/" + d + "/boot_vga")).value_or("0") == "1")
      s.boot_vga = d;

  for (const auto& n : list_dir(root.path("/sys/class/graphics"))) {
    if (!is_fb_node(n)) continue;
    Framebuffer f;
    f.node = n;
    const std::string base = "/sys/class/graphics/" + n;
    f.name = read_attr(root.path(base + "/name")).value_or("");
    f.device = resolve(root, base + "/device");
    if (!f.device.empty()) {
      f.driver = drm_driver_of(root, f.device);
      f.pci = pci_ancestor(f.device);
      std::string leaf = f.device.substr(f.device.rfind('/') + 1);
      if (is_firmware_fb_name(leaf)) f.platform = leaf;
    }
    s.framebuffers.push_back(f);
  }
  std::sort(s.framebuffers.begin(), s.framebuffers.end(),
            [](const Framebuffer& a, const Framebuffer& b) {
              return std::stoi(a.node.substr(2)) < std::stoi(b.node.substr(2));
            });

  std::vector<IomemEntry> iomem;
  if (auto text = read_file(root.path("/proc/iomem"))) iomem = parse_iomem(*text);
  for (const auto& n : list_dir(root.path("/sys/bus/platform/devices"))) {
    if (!is_firmware_fb_name(n)) continue;
    FirmwareFb f;
    f.name = n;
    f.device = resolve(root, "/sys/bus/platform/devices/" + n);
    f.driver = link_basename(root.path("/sys/bus/platform/devices/" + n + "/driver")).value_or("");
    for (const auto& fb : s.framebuffers)
      if (fb.platform == n) f.framebuffers.push_back(fb.node);
    if (auto p = pci_ancestor(f.device); !p.empty()) {
      f.gpu = p;
      f.how = Attribution::parent;
    }
    for (const auto& want : iomem_names(n)) {
      if (!f.gpu.empty()) break;
      for (const auto& e : iomem) {
        if (e.name != want) continue;
        for (auto it = e.parents.rbegin(); it != e.parents.rend(); ++it)
          if (parse_sysfs_name(iomem[size_t(*it)].name)) {
            f.gpu = iomem[size_t(*it)].name;
            f.how = Attribution::iomem;
            break;
          }
        if (!f.gpu.empty()) break;
      }
    }
    if (f.gpu.empty() && !s.boot_vga.empty()) {
      f.gpu = s.boot_vga;
      f.how = Attribution::boot_vga;
    }
    s.firmware.push_back(f);
  }
  for (auto& fb : s.framebuffers) {
    fb.gpu = fb.pci;
    if (fb.gpu.empty() && !fb.platform.empty())
      if (const auto* fw = s.firmware_fb(fb.platform)) fb.gpu = fw->gpu;
  }

  if (auto a = read_attr(root.path("/sys/class/tty/tty0/active"))) s.active_vt = *a;
  s.con2fb = read_con2fb(root, s.framebuffers);
  return s;
}

std::string default_fb_driver(const Root& root, const std::string& device) {
  std::vector<std::string> candidates;
  if (device.rfind("vesa-framebuffer.", 0) == 0) candidates = {"vesafb"};
  if (device.rfind("efi-framebuffer.", 0) == 0) candidates = {"efifb"};
  if (device.rfind("simple-framebuffer.", 0) == 0)
    candidates = {"simpledrm", "simple-framebuffer", "simplefb"};
  if (device.rfind("vga-framebuffer.", 0) == 0) candidates = {"vga16fb"};
  // simplefb's platform driver is named after the device ("simple-framebuffer").
  if (device.rfind("efi-framebuffer.", 0) == 0) candidates.push_back("efi-framebuffer");
  if (device.rfind("vesa-framebuffer.", 0) == 0) candidates.push_back("vesa-framebuffer");
  for (const auto& c : candidates)
    if (path_exists(root.path("/sys/bus/platform/drivers/" + c))) return c;
  return "";
}

namespace {

std::string fb_list(const std::vector<const Framebuffer*>& fbs) {
  std::string s;
  for (const auto* f : fbs) s += (s.empty() ? "" : ", ") + f->node + " (" + f->name + ")";
  return s;
}

bool recorded(const Journal& j, const std::string& gpu, const std::string& kind,
              const std::string& name) {
  auto it = j.consoles.find(gpu);
  if (it == j.consoles.end()) return false;
  for (const auto& c : it->second)
    if (c.kind == kind && c.name == name) return true;
  return false;
}

}  // namespace

std::string console_ranges(const std::vector<int>& consoles) {
  std::string out;
  for (size_t i = 0; i < consoles.size();) {
    size_t j = i;
    while (j + 1 < consoles.size() && consoles[j + 1] == consoles[j] + 1) ++j;
    out += (out.empty() ? "" : "+") + std::to_string(consoles[i]) +
           (j > i ? "-" + std::to_string(consoles[j]) : "");
    i = j + 1;
  }
  return out;
}

Status set_con2fb(const Root& root, const std::string& fb_node, const std::vector<int>& consoles) {
  const std::string node = root.path("/dev/" + fb_node);
  struct stat st {};
  if (::stat(node.c_str(), &st) != 0 || !S_ISCHR(st.st_mode))
    return fail(node, "is not a character device; cannot map consoles to it");
  int fd = ::open(node.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail(node, "cannot open it to map consoles", errno);
  const uint32_t idx = uint32_t(std::stoi(fb_node.substr(2)));
  for (int c : consoles) {
    fb_con2fbmap m{uint32_t(c), idx};
    if (::ioctl(fd, FBIOPUT_CON2FBMAP, &m) != 0) {
      int e = errno;
      ::close(fd);
      return fail(node, "FBIOPUT_CON2FBMAP of tty" + std::to_string(c) + " failed", e);
    }
  }
  ::close(fd);
  return {};
}

Plan plan_release(const State& s, const std::string& gpu, const Journal& journal) {
  Plan p;
  p.gpu = gpu;
  auto fbs = s.framebuffers_of(gpu);
  const VtConsole* fbcon = s.fbcon();
  if (!fbcon) {
    p.notes.push_back("no frame buffer console (fbcon) is registered: no vtconsole is named '" +
                      std::string(kFbconName) + "'");
  } else if (!fbcon->bound) {
    if (recorded(journal, gpu, "vtconsole", fbcon->name))
      p.already.push_back("fbcon (" + fbcon->node + ") was unbound by an earlier release");
    else
      p.notes.push_back("fbcon (" + fbcon->node + ") is not bound; nothing to release there");
  } else if (fbs.empty()) {
    p.notes.push_back(gpu + " has no framebuffer; fbcon is left bound");
  } else {
    std::set<int> mine;
    for (const auto* f : fbs) mine.insert(std::stoi(f->node.substr(2)));
    bool take = true;
    std::string why;
    if (s.con2fb.known) {
      std::vector<int> consoles;
      for (const auto& [c, fb] : s.con2fb.map)
        if (mine.count(fb)) consoles.push_back(c);
      if (consoles.empty()) {
        take = false;
        p.notes.push_back("fbcon maps no console to " + gpu + "'s " + fb_list(fbs) +
                          "; fbcon is left bound");
      } else {
        why = "fbcon maps tty" + std::to_string(consoles.front()) +
              (consoles.size() > 1 ? "-" + std::to_string(consoles.back()) : "") + " to " +
              fb_list(fbs);
      }
    } else {
      why = "the console-to-framebuffer map cannot be read here; " + gpu + " has " + fb_list(fbs);
    }
    if (take) {
      std::vector<const Framebuffer*> others;
      for (const auto& f : s.framebuffers) {
        if (f.gpu == gpu) continue;
        int idx = std::stoi(f.node.substr(2));
        bool used = !s.con2fb.known;
        for (const auto& [c, fb] : s.con2fb.map)
          if (fb == idx) used = true;
        if (used) others.push_back(&f);
      }
      if (!others.empty())
        p.notes.push_back(
            "fbcon is one console driver for every framebuffer: unbinding it also takes it off " +
            fb_list(others));
      std::vector<ServedFb> served;
      for (const auto* f : fbs) {
        ServedFb sf{f->node, f->name, {}};
        for (const auto& [c, fb] : s.con2fb.map)
          if (fb == std::stoi(f->node.substr(2))) sf.consoles.push_back(c);
        served.push_back(sf);
      }
      Step st;
      st.change = ConsoleChange{"vtconsole", fbcon->name, "", fbcon->node, 0, served};
      st.path = "/sys/class/vtconsole/" + fbcon->node + "/bind";
      st.value = "0";
      st.note = why;
      p.steps.push_back(st);
    }
  }

  auto fws = s.firmware_of(gpu);
  for (const auto* fw : fws) {
    if (fw->driver.empty()) {
      if (recorded(journal, gpu, "framebuffer", fw->name))
        p.already.push_back(fw->name + " was unbound by an earlier release");
      else
        p.notes.push_back(fw->name + " has no driver bound; nothing to release there");
      continue;
    }
    std::string nodes;
    for (const auto& n : fw->framebuffers) nodes += (nodes.empty() ? "" : ",") + n;
    Step st;
    st.change = ConsoleChange{"framebuffer", fw->name, fw->driver, nodes, 0, {}};
    st.path = "/sys/bus/platform/drivers/" + fw->driver + "/unbind";
    st.value = fw->name;
    st.note = fw->how == Attribution::parent ? "its parent device is " + gpu
              : fw->how == Attribution::iomem
                  ? "its memory lies in a BAR of " + gpu + " (/proc/iomem)"
                  : "a guess: " + gpu + " is the boot VGA device and nothing else ties " +
                        fw->name + " to a GPU";
    p.steps.push_back(st);
  }
  for (const auto& fw : s.firmware)
    if (fw.gpu.empty())
      p.notes.push_back(
          fw.name +
          " belongs to no GPU that can be found (no parent, no BAR in /proc/iomem, no boot VGA)");
  return p;
}

Status apply(Context& ctx, const Step& step) {
  if (auto w = ctx.writer->write(step.path, step.value, WriteKind::blocking); !w) return w;
  if (step.change.kind == "vtconsole") {
    const std::string bind = step.path;
    auto now = read_attr(ctx.root.path(bind)).value_or("?");
    if (now == step.value) return {};
    // vt.c's store_bind ignores the result of (un)binding: read back to know.
    auto state = discover(ctx.root);
    std::string others;
    if (state)
      for (const auto& v : state->vtconsoles)
        if (v.name != step.change.name)
          others += (others.empty() ? "" : ", ") + v.node + " '" +
                    (v.mark.empty() ? "" : "(" + v.mark + ") ") + v.name + "'";
    std::string reason =
        step.value == "0"
            ? (others.empty() ? "the kernel kept it bound: no other console driver is registered "
                                "to take the consoles "
                                "over (the VGA text console was removed when a DRM driver took the "
                                "boot VGA device)"
                              : "the kernel kept it bound although " + others + " is registered")
            : "the kernel did not bind it (is a framebuffer registered?)";
    return fail(step.change.node + " '" + step.change.name + "'",
                "wrote " + show_value(step.value) + " to " + bind + " but it reads back " +
                    show_value(now) + ": " + reason);
  }
  const std::string link = "/sys/bus/platform/devices/" + step.change.name + "/driver";
  const std::string want = step.bind ? step.change.driver : "";
  bool ok = wait_until(
      [&] { return link_basename(ctx.root.path(link)).value_or("") == want; }, ctx.timeout,
      ctx.on_wait,
      step.change.name + " to be " + (step.bind ? "bound to " + step.change.driver : "unbound"),
      step.change.name);
  if (ok) return {};
  auto now = link_basename(ctx.root.path(link)).value_or("");
  return fail(step.change.name, std::string(step.bind ? "bind to " + step.change.driver
                                                      : "unbind from " + step.change.driver) +
                                    " did not take: its driver is " + (now.empty() ? "none" : now) +
                                    " after writing " + step.path);
}

}  // namespace pt::console
