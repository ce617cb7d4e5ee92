#include "pt/holders.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

#include "pt/sysfs.hpp"

namespace pt {

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// nvidia exposes no sysfs link from the PCI device to its minor.
std::vector<std::string> nvidia_nodes(const Root& root, const Device& dev) {
  std::vector<std::string> out;
  auto info = read_attr(root.path("/proc/driver/nvidia/gpus/" + dev.addr.str() + "/information"));
  if (info) {
    auto pos = info->find("Device Minor:");
    if (pos != std::string::npos) {
      auto minor = std::strtol(info->c_str() + pos + 13, nullptr, 10);
      out.push_back("/dev/nvidia" + std::to_string(minor));
      return out;
    }
  }
  for (const auto& n : list_dir(root.path("/dev")))
    if (n.rfind("nvidia", 0) == 0 && all_digits(n.substr(6))) out.push_back("/dev/" + n);
  return out;
}

std::optional<std::string> canonical(const std::string& real) {
  std::error_code ec;
  auto p = std::filesystem::canonical(real, ec);
  if (ec) return std::nullopt;
  return p.string();
}

// The kernel escapes space, tab, newline and backslash in mount points and
// swap file names as \ooo.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit((unsigned char)s[i + 1]) &&
        std::isdigit((unsigned char)s[i + 2]) && std::isdigit((unsigned char)s[i + 3])) {
      out += char(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Block {
  std::string name;   // "vda1", "dm-0"
  std::string devno;  // "254:1"
  std::string via;    // the function's own block device under a stacked one
};

// The function's block devices (disks and partitions hang below its sysfs
// directory, often under a bus child: …/0000:00:04.0/virtio2/block/vda/vda1)
// and everything stacked on them, following holders/ as far as it goes.
std::vector<Block> blocks_of(const Root& root, const Device& dev) {
  std::vector<Block> out;
  auto base = canonical(root.path(dev.sysfs()));
  if (!base) return out;
  // With native NVMe multipath (Debian's default) the namespace's disk
  // hangs under its subsystem in /sys/devices/virtual, which links the
  // controllers it goes through: a subsystem with a controller of DEV
  // counts as DEV's.
  std::vector<std::string> under{*base + "/"};
  const std::string subsystems = root.path("/sys/class/nvme-subsystem");
  for (const auto& sub : list_dir(subsystems)) {
    auto dir = canonical(subsystems + "/" + sub);
    if (!dir) continue;
    bool ours = false;
    for (const auto& e : list_dir(*dir)) {
      auto c = read_link(*dir + "/" + e) ? canonical(*dir + "/" + e) : std::nullopt;
      ours |= c && c->starts_with(*base + "/");
    }
    if (ours) under.push_back(*dir + "/");
  }
  const std::string cls = root.path("/sys/class/block");
  std::set<std::string> seen;
  for (const auto& n : list_dir(cls)) {
    auto c = canonical(cls + "/" + n);
    if (!c || std::none_of(under.begin(), under.end(),
                           [&](const std::string& u) { return c->starts_with(u); }))
      continue;
    seen.insert(n);
    out.push_back({n, read_attr(cls + "/" + n + "/dev").value_or(""), ""});
  }
  for (size_t i = 0; i < out.size(); ++i)
    for (const auto& h : list_dir(cls + "/" + out[i].name + "/holders")) {
      if (!seen.insert(h).second) continue;
      out.push_back({h, read_attr(cls + "/" + h + "/dev").value_or(""),
                     out[i].via.empty() ? out[i].name : out[i].via});
    }
  return out;
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

// Mounts of BLOCKS. mountinfo names the device by number, which holds for
// any name the admin mounted it by; /proc/mounts, its fallback, only by the
// source path.
void mounts_on(const Root& root, const std::vector<Block>& blocks, std::vector<KernelUser>& out) {
  auto info = read_attr(root.path("/proc/self/mountinfo"));
  std::istringstream in(info ? *info : read_attr(root.path("/proc/mounts")).value_or(""));
  for (std::string line; std::getline(in, line);) {
    auto w = words(line);
    std::string devno, source, target, fstype;
    if (info) {
      auto dash = std::find(w.begin(), w.end(), "-");
      if (w.size() < 5 || dash == w.end() || w.end() - dash < 3) continue;
      devno = w[2];
      target = w[4];
      fstype = dash[1];
      source = dash[2];
    } else {
      if (w.size() < 3) continue;
      source = w[0];
      target = w[1];
      fstype = w[2];
    }
    for (const auto& b : blocks) {
      if (info ? devno != b.devno : unescape(source) != "/dev/" + b.name) continue;
      out.push_back(
          {KernelUser::Kind::mount, "/dev/" + b.name, b.via, unescape(target), fstype, ""});
      break;
    }
  }
}

// Active swap areas on BLOCKS. /proc/swaps names the resolved path
// (/dev/dm-0 for /dev/mapper/NAME); a swap file is covered by its mount.
void swaps_on(const Root& root, const std::vector<Block>& blocks, std::vector<KernelUser>& out) {
  std::istringstream in(read_attr(root.path("/proc/swaps")).value_or(""));
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    auto w = words(line);
    if (w.empty()) continue;
    const std::string name = unescape(w[0]);
    std::string base = name.substr(name.rfind('/') + 1);
    if (auto c = canonical(root.path(name))) base = c->substr(c->rfind('/') + 1);
    for (const auto& b : blocks) {
      if (!name.starts_with("/dev/") || base != b.name) continue;
      out.push_back({KernelUser::Kind::swap, "/dev/" + b.name, b.via, "", "", ""});
      break;
    }
  }
}

}  // namespace

// Class devices sit under the PCI device or, for bus drivers such as
// virtio-pci on 5.10, under its child device (…/0000:01:00.0/virtio0/drm).
std::vector<std::string> class_dirs(const std::string& base, const std::string& cls) {
  std::vector<std::string> out;
  if (path_exists(base + "/" + cls)) out.push_back(base + "/" + cls);
  for (const auto& child : list_dir(base)) {
    const std::string p = base + "/" + child;
    if (child == cls || read_link(p) || !path_exists(p + "/" + cls)) continue;
    out.push_back(p + "/" + cls);
  }
  return out;
}

std::vector<std::string> device_nodes(const Root& root, const Device& dev) {
  std::set<std::string> nodes;
  const std::string base = root.path(dev.sysfs());
  for (const auto& drm : class_dirs(base, "drm"))
    for (const auto& n : list_dir(drm))
      if (n.rfind("card", 0) == 0 || n.rfind("renderD", 0) == 0) nodes.insert("/dev/dri/" + n);
  const std::string prefix = "pci-" + dev.addr.str() + "-";
  const std::string by_path = root.path("/dev/dri/by-path");
  for (const auto& n : list_dir(by_path)) {
    if (n.rfind(prefix, 0) != 0) continue;
    if (auto t = read_link(by_path + "/" + n)) {
      auto slash = t->rfind('/');
      nodes.insert("/dev/dri/" + (slash == std::string::npos ? *t : t->substr(slash + 1)));
    }
  }
  for (const auto& sound : class_dirs(base, "sound"))
    for (const auto& card : list_dir(sound))
      for (const auto& n : list_dir(sound + "/" + card))
        if (n.rfind("pcmC", 0) == 0 || n.rfind("controlC", 0) == 0 || n.rfind("hwC", 0) == 0 ||
            n.rfind("midiC", 0) == 0)
          nodes.insert("/dev/snd/" + n);
  if (dev.driver == "nvidia")
    for (auto& n : nvidia_nodes(root, dev)) nodes.insert(std::move(n));
  for (const auto& b : blocks_of(root, dev)) nodes.insert("/dev/" + b.name);
  if (dev.iommu_group) nodes.insert("/dev/vfio/" + std::to_string(*dev.iommu_group));
  for (const auto& n : list_dir(base + "/vfio-dev")) nodes.insert("/dev/vfio/devices/" + n);
  return {nodes.begin(), nodes.end()};
}

std::vector<Holder> find_open(const Root& root, const std::vector<std::string>& paths) {
  std::vector<Holder> out;
  if (paths.empty()) return out;
  std::vector<std::string> sorted = paths;
  std::sort(sorted.begin(), sorted.end());
  const std::string proc = root.path("/proc");
  for (const auto& pid : list_dir(proc)) {
    // parse_index, not std::stoi: a /proc entry of 20 digits (a --root
    // tree) would throw std::out_of_range out of pt-bind show.
    const auto pid_number = parse_index(pid);
    if (!pid_number) continue;
    const std::string fd_dir = proc + "/" + pid + "/fd";
    for (const auto& fd : list_dir(fd_dir)) {
      auto target = read_link(fd_dir + "/" + fd);
      if (!target || !std::binary_search(sorted.begin(), sorted.end(), *target)) continue;
      Holder h;
      h.pid = int(*pid_number);
      h.command = read_attr(proc + "/" + pid + "/comm").value_or("?");
      h.node = *target;
      if (std::none_of(out.begin(), out.end(),
                       [&](const Holder& o) { return o.pid == h.pid && o.node == h.node; }))
        out.push_back(std::move(h));
    }
  }
  return out;
}

std::vector<Holder> find_holders(const Root& root, const Device& dev) {
  return find_open(root, device_nodes(root, dev));
}

std::vector<KernelUser> find_kernel_users(const Root& root, const Device& dev) {
  std::vector<KernelUser> out;
  auto blocks = blocks_of(root, dev);
  if (!blocks.empty()) {
    mounts_on(root, blocks, out);
    swaps_on(root, blocks, out);
    // A stacked device with no mount or swap of its own is still in use
    // (an open LVM volume, an md array, a dm-crypt mapping): pulling its
    // disk fails every I/O on it. Only the top of a stack is named.
    for (const auto& b : blocks) {
      if (b.via.empty() || !list_dir(root.path("/sys/class/block/" + b.name + "/holders")).empty())
        continue;
      const std::string node = "/dev/" + b.name;
      if (std::any_of(out.begin(), out.end(),
                      [&](const KernelUser& u) { return u.device == node; }))
        continue;
      out.push_back({KernelUser::Kind::stacked, node, b.via, "", "", ""});
    }
  }
  auto base = canonical(root.path(dev.sysfs()));
  if (!base) return out;
  const std::string cls = root.path("/sys/class/net");
  for (const auto& n : list_dir(cls)) {
    auto c = canonical(cls + "/" + n);
    if (!c || !c->starts_with(*base + "/")) continue;
    // IFF_UP is what the admin set; operstate only says whether a carrier
    // followed, and a link that is up without one is still configured.
    auto flags = read_attr(cls + "/" + n + "/flags");
    if (!flags || !(std::strtoul(flags->c_str(), nullptr, 0) & 0x1)) continue;
    out.push_back({KernelUser::Kind::net, n, "", "", "",
                   read_attr(cls + "/" + n + "/operstate").value_or("unknown")});
  }
  return out;
}

std::string describe(const KernelUser& u) {
  const std::string dev = u.device + (u.via.empty() ? "" : " (on " + u.via + ")");
  switch (u.kind) {
    case KernelUser::Kind::mount:
      return "backs " + dev + " mounted on " + u.target + " (" + u.fstype + ")";
    case KernelUser::Kind::swap:
      return "backs swap on " + dev;
    case KernelUser::Kind::net:
      return "has network interface " + u.device + " up (operstate " + u.operstate + ")";
    case KernelUser::Kind::stacked:
      return "backs " + dev + ", which is active";
  }
  return dev;
}

std::string describe(const std::vector<Holder>& holders) {
  std::string s;
  for (const auto& h : holders) {
    if (!s.empty()) s += ", ";
    s += "pid " + std::to_string(h.pid) + " (" + h.command + ") holds " + h.node;
  }
  return s;
}

}  // namespace pt
