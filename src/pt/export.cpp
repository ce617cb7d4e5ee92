#include "pt/export.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>

#include "pt/pci.hpp"
#include "pt/sysfs.hpp"
#include "pt/try.hpp"

namespace pt::exporter {

namespace {

std::optional<uint16_t> read_id(const Root& root, const std::string& abs) {
  auto text = read_attr(root, abs);
  if (!text || !text->starts_with("0x")) return std::nullopt;
  uint16_t v = 0;
  auto [end, ec] = std::from_chars(text->data() + 2, text->data() + text->size(), v, 16);
  if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return v;
}

std::string id_pair(uint16_t vendor, uint16_t device) {
  return hex4(vendor) + ":" + hex4(device);
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

bool all_of_chars(std::string_view s, std::string_view extra) {
  return std::all_of(s.begin(), s.end(), [&](unsigned char c) {
    return std::isalnum(c) || extra.find(char(c)) != std::string_view::npos;
  });
}

// The device IDs in first-seen order, each once: identical GPUs share one
// KubeVirt resource and one Nova alias.
std::vector<const Function*> distinct_ids(const std::vector<Function>& functions) {
  std::vector<const Function*> out;
  for (const auto& f : functions)
    if (std::none_of(out.begin(), out.end(), [&](const Function* o) {
          return o->vendor == f.vendor && o->device == f.device;
        }))
      out.push_back(&f);
  return out;
}

// Where the vendor's own device plugins name their resources; a resource
// name needs a domain, and these are the ones admins already see.
std::string vendor_domain(uint16_t vendor) {
  static const std::map<uint16_t, std::string> domains = {
      {0x10de, "nvidia.com"}, {0x1002, "amd.com"},  {0x8086, "intel.com"},
      {0x1af4, "redhat.com"}, {0x1234, "qemu.org"}, {0x1b36, "redhat.com"}};
  auto it = domains.find(vendor);
  return it != domains.end() ? it->second : "pci-" + hex4(vendor) + ".local";
}

// Proxmox's mapping ids are pve-configid: a letter, then letters, digits,
// '-' and '_'.
Status check_proxmox_name(const std::string& name) {
  if (name.size() < 2 || !std::isalpha(static_cast<unsigned char>(name[0])) ||
      !all_of_chars(name, "-_"))
    return usage_error("--name " + name,
                       "a Proxmox mapping id is a letter followed by letters, digits, '-' or '_' "
                       "(at least 2 characters), such as gpu-0");
  return {};
}

// A Kubernetes extended resource name: DOMAIN/NAME, NAME up to 63
// characters of letters, digits, '-', '_' and '.', starting and ending
// with a letter or digit.
Status check_resource_name(const std::string& name) {
  const auto slash = name.find('/');
  const std::string domain = slash == std::string::npos ? "" : name.substr(0, slash);
  const std::string base = slash == std::string::npos ? "" : name.substr(slash + 1);
  const bool ok = !domain.empty() && domain.size() <= 253 && all_of_chars(domain, "-.") &&
                  !base.empty() && base.size() <= 63 && all_of_chars(base, "-_.") &&
                  std::isalnum(static_cast<unsigned char>(base.front())) &&
                  std::isalnum(static_cast<unsigned char>(base.back())) &&
                  std::isalnum(static_cast<unsigned char>(domain.front())) &&
                  std::isalnum(static_cast<unsigned char>(domain.back()));
  if (!ok)
    return usage_error("--name " + name,
                       "a KubeVirt resource name is DOMAIN/NAME, such as nvidia.com/rtx3090: "
                       "NAME up to 63 letters, digits, '-', '_' or '.'");
  return {};
}

// Nova's flavors ask for "pci_passthrough:alias"="NAME:COUNT", so a name
// with ':' or ',' could never be requested.
Status check_alias_name(const std::string& name) {
  if (name.empty() || !all_of_chars(name, "-_."))
    return usage_error("--name " + name,
                       "a Nova alias is letters, digits, '-', '_' or '.', such as gpu; flavors "
                       "request it as \"pci_passthrough:alias\"=\"NAME:1\"");
  return {};
}

std::string render_proxmox(const std::vector<Function>& fs, const Request& r,
                           const std::string& name) {
  // One function: its path. Several: the slot's path without a function,
  // which Proxmox passes through as one multifunction device.
  const Function& first = fs.front();
  std::string path = first.addr.str();
  if (fs.size() > 1) path = path.substr(0, path.size() - 2);
  std::string map = "id=" + id_pair(first.vendor, first.device);
  if (first.iommu_group) map += ",iommugroup=" + std::to_string(*first.iommu_group);
  map += ",node=" + r.node + ",path=" + path;
  map += ",subsystem-id=" + id_pair(first.subsystem_vendor, first.subsystem_device);
  std::string out =
      "# Proxmox VE: /etc/pve/mapping/pci.cfg (Datacenter > Resource Mappings). Add a map\n"
      "# line for each node, then use hostpci0: mapping=" +
      name + " in the VM.\n";
  if (!first.iommu_group)
    out += "# " + first.addr.str() +
           " is in no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on)\n"
           "# before a VM can use it.\n";
  return out + name + "\n\tmap " + map + "\n";
}

std::string render_kubevirt(const std::vector<Function>& fs, const std::string& name) {
  std::string out =
      "# KubeVirt: merge into the KubeVirt resource's spec.configuration (kubectl edit\n"
      "# kubevirt -n kubevirt); a VM asks for a resourceName as a hostDevices deviceName.\n"
      "# pt binds the functions to vfio-pci, which KubeVirt's device plugin requires.\n"
      "permittedHostDevices:\n"
      "  pciHostDevices:\n";
  auto ids = distinct_ids(fs);
  for (const Function* f : ids) {
    std::string resource = name;
    if (ids.size() > 1) resource += "_" + hex4(f->device);
    out += "  - pciVendorSelector: \"" + upper(id_pair(f->vendor, f->device)) + "\"\n";
    out += "    resourceName: \"" + resource + "\"\n";
  }
  return out;
}

std::string render_nova(const std::vector<Function>& fs, const std::string& name) {
  std::string out =
      "# OpenStack Nova (2023.1 or later): nova.conf on the compute host. managed is \"no\"\n"
      "# because pt, not libvirt, moves the functions to vfio-pci and back.\n"
      "[pci]\n";
  for (const auto& f : fs) {
    nlohmann::ordered_json spec = {{"address", f.addr.str()},
                                   {"vendor_id", hex4(f.vendor)},
                                   {"product_id", hex4(f.device)},
                                   {"managed", "no"}};
    out += "device_spec = " + spec.dump() + "\n";
  }
  auto ids = distinct_ids(fs);
  for (const Function* f : ids) {
    std::string alias = name;
    if (ids.size() > 1) alias += "-" + hex4(f->device);
    const char* type = f->virtual_function    ? "type-VF"
                       : f->physical_function ? "type-PF"
                                              : "type-PCI";
    nlohmann::ordered_json a = {{"name", alias},
                                {"vendor_id", hex4(f->vendor)},
                                {"product_id", hex4(f->device)},
                                {"device_type", type}};
    out += "alias = " + a.dump() + "\n";
  }
  return out;
}

}  // namespace

Result<Format> parse_format(std::string_view word) {
  if (word == "proxmox") return Format::proxmox;
  if (word == "kubevirt") return Format::kubevirt;
  if (word == "nova") return Format::nova;
  return usage_error(std::string(word), "is not an export format: use proxmox, kubevirt or nova");
}

Result<std::vector<Function>> read_functions(const Root& root, const DeviceSpec& spec) {
  std::vector<PciAddress> addrs;
  for (const auto& name : list_dir(root, "/sys/bus/pci/devices"))
    if (auto a = parse_sysfs_name(name); a && spec.matches(*a)) addrs.push_back(*a);
  if (addrs.empty())
    return no_such_device(spec.input);
  std::sort(addrs.begin(), addrs.end());
  std::vector<Function> out;
  for (const auto& a : addrs) {
    const std::string dir = "/sys/bus/pci/devices/" + a.str();
    Function f;
    f.addr = a;
    auto vendor = read_id(root, dir + "/vendor");
    auto device = read_id(root, dir + "/device");
    if (!vendor || !device)
      return fail(a.str(), "its vendor or device id is unreadable in " + dir, EIO);
    f.vendor = *vendor;
    f.device = *device;
    f.subsystem_vendor = read_id(root, dir + "/subsystem_vendor").value_or(0);
    f.subsystem_device = read_id(root, dir + "/subsystem_device").value_or(0);
    if (auto link = read_link(root, dir + "/iommu_group")) {
      const std::string n = link->substr(link->rfind('/') + 1);
      int g = 0;
      auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), g);
      if (ec == std::errc() && end == n.data() + n.size()) f.iommu_group = g;
    }
    f.physical_function = read_attr(root, dir + "/sriov_totalvfs").value_or("0") != "0";
    f.virtual_function = read_link(root, dir + "/physfn").has_value();
    out.push_back(f);
  }
  return out;
}

std::string default_name(Format format, const std::vector<Function>& functions) {
  const Function& f = functions.front();
  switch (format) {
    case Format::proxmox: {
      std::string s = "pci-" + f.addr.str();
      std::replace(s.begin(), s.end(), ':', '-');
      std::replace(s.begin(), s.end(), '.', '-');
      if (functions.size() > 1) s.resize(s.size() - 2);
      return s;
    }
    case Format::kubevirt:
      return vendor_domain(f.vendor) + "/pci_" + hex4(f.vendor) + "_" + hex4(f.device);
    case Format::nova:
      return "pci-" + hex4(f.vendor) + "-" + hex4(f.device);
  }
  return {};
}

Result<std::string> render(const std::vector<Function>& functions, const Request& request) {
  if (functions.empty()) return fail("export", "no function to export", EINVAL);
  const std::string name =
      request.name.empty() ? default_name(request.format, functions) : request.name;
  switch (request.format) {
    case Format::proxmox:
      PT_TRY(check_proxmox_name(name));
      if (request.node.empty() || !all_of_chars(request.node, "-."))
        return usage_error("--node " + request.node,
                           "a Proxmox node is its host name (letters, digits, '-' and '.')");
      return render_proxmox(functions, request, name);
    case Format::kubevirt:
      PT_TRY(check_resource_name(name));
      return render_kubevirt(functions, name);
    case Format::nova:
      PT_TRY(check_alias_name(name));
      return render_nova(functions, name);
  }
  return fail("export", "unknown format", EINVAL);
}

}  // namespace pt::exporter
