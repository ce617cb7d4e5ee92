#include "pt/holders.hpp"

#include <algorithm>
#include <cctype>
#include <set>

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
  if (dev.iommu_group) nodes.insert("/dev/vfio/" + std::to_string(*dev.iommu_group));
  for (const auto& n : list_dir(base + "/vfio-dev")) nodes.insert("/dev/vfio/devices/" + n);
  return {nodes.begin(), nodes.end()};
}

std::vector<Holder> find_holders(const Root& root, const Device& dev) {
  std::vector<Holder> out;
  auto nodes = device_nodes(root, dev);
  if (nodes.empty()) return out;
  const std::string proc = root.path("/proc");
  for (const auto& pid : list_dir(proc)) {
    if (!all_digits(pid)) continue;
    const std::string fd_dir = proc + "/" + pid + "/fd";
    for (const auto& fd : list_dir(fd_dir)) {
      auto target = read_link(fd_dir + "/" + fd);
      if (!target || !std::binary_search(nodes.begin(), nodes.end(), *target)) continue;
      Holder h;
      h.pid = std::stoi(pid);
      h.command = read_attr(proc + "/" + pid + "/comm").value_or("?");
      h.node = *target;
      if (std::none_of(out.begin(), out.end(),
                       [&](const Holder& o) { return o.pid == h.pid && o.node == h.node; }))
        out.push_back(std::move(h));
    }
  }
  return out;
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
