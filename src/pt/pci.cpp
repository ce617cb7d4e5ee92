#include "pt/pci.hpp"

extern "C" {
#include <pci/pci.h>
}

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csetjmp>
#include <map>
#include <set>
#include <cstdarg>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <utility>

#include "pt/sysfs.hpp"

namespace pt {

std::string Device::sysfs(const std::string& attr) const {
  std::string p = "/sys/bus/pci/devices/" + addr.str();
  if (!attr.empty()) p += "/" + attr;
  return p;
}

bool Device::is_bridge() const {
  return base_class() == 0x06;
}

bool Device::has_secondary_bus() const {
  return class_id() == 0x0604 || class_id() == 0x0607 || class_id() == 0x0609;
}

std::string id_string(const Device& d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04x:%04x", d.vendor, d.device);
  return buf;
}

namespace {

std::optional<uint32_t> read_hex(const std::string& path) {
  auto s = read_attr(path);
  if (!s || s->empty()) return std::nullopt;
  char* end = nullptr;
  unsigned long v = std::strtoul(s->c_str(), &end, 16);
  if (end == s->c_str()) return std::nullopt;
  return uint32_t(v);
}

// The parent is the directory above the device's canonical sysfs directory
// (…/pci0000:00/0000:00:1c.0/0000:01:00.0); a root bus's parent is pciDDDD:BB.
std::optional<PciAddress> parent_of(const Root& root, const PciAddress& addr) {
  auto link = read_link(root, "/sys/bus/pci/devices/" + addr.str());
  if (!link) return std::nullopt;
  std::string t = *link;
  auto slash = t.rfind('/');
  if (slash == std::string::npos) return std::nullopt;
  t.resize(slash);
  slash = t.rfind('/');
  std::string name = slash == std::string::npos ? t : t.substr(slash + 1);
  return parse_sysfs_name(name);
}

// Fills what libpci does not know: links and kernel-only attributes.
void fill_sysfs(const Root& root, Device& d) {
  const std::string base = root.path(d.sysfs());
  d.driver = link_basename(base + "/driver").value_or("");
  auto ov = read_attr(base + "/driver_override");
  d.driver_override = (!ov || *ov == "(null)") ? "" : *ov;
  // A group the kernel would never name ("-1", twenty digits) is no group:
  // vfio-pci is refused for the device rather than /dev/vfio/-1 used.
  if (auto g = link_basename(base + "/iommu_group"))
    if (auto v = parse_index(*g)) d.iommu_group = int(*v);
  if (auto b = read_attr(base + "/boot_vga")) d.boot_vga = (*b == "1");
  if (auto r = read_attr(base + "/reset_method")) {
    std::vector<std::string> methods;
    size_t start = 0;
    while (start < r->size()) {
      size_t sp = r->find(' ', start);
      if (sp == std::string::npos) sp = r->size();
      if (sp > start) methods.push_back(r->substr(start, sp - start));
      start = sp + 1;
    }
    d.reset_methods = std::move(methods);
  }
  d.parent = parent_of(root, d.addr);
}

// libpci reports errors through a callback that must not return.
thread_local std::jmp_buf* pci_jump = nullptr;
thread_local char pci_message[512];

[[noreturn]] void pci_error(char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(pci_message, sizeof pci_message, fmt, ap);
  va_end(ap);
  std::longjmp(*pci_jump, 1);
}
void pci_quiet(char*, ...) {}

struct PciAccess {
  pci_access* acc = nullptr;
  std::string sysfs_path;
  std::string ids_path;  // libpci's configured pci.ids
  ~PciAccess() {
    if (acc) pci_cleanup(acc);
  }
};

// Opens libpci on ROOT/sys/bus/pci. Call only inside the setjmp region.
pci_access* open_access(PciAccess& holder) {
  holder.acc = pci_alloc();
  holder.acc->error = pci_error;
  holder.acc->warning = pci_quiet;
  holder.acc->debug = pci_quiet;
  holder.acc->method = PCI_ACCESS_SYS_BUS_PCI;
  pci_set_param(holder.acc, const_cast<char*>("sysfs.path"), holder.sysfs_path.data());
  pci_init(holder.acc);
  return holder.acc;
}

struct RawDevice {
  PciAddress addr;
  uint16_t vendor, device;
  uint32_t class_code;
  std::string name;
};

// Runs OP(acc) inside libpci's error region. The region touches only objects
// owned by callers, whose values stay determinate after a longjmp, and OP's
// own locals must be trivially destructible (a longjmp skips destructors).
template <class Op>
bool in_pci_region(PciAccess& holder, Op&& op) {
  std::jmp_buf jump;
  pci_jump = &jump;
  if (setjmp(jump) != 0) {
    pci_jump = nullptr;
    return false;
  }
  bool ok = op(open_access(holder));
  pci_jump = nullptr;
  return ok;
}

// Runs OP on one device; OP returns nonzero on success.
template <class Op>
bool on_device(PciAccess& holder, const PciAddress& addr, const char* failure, Op&& op) {
  return in_pci_region(holder, [&](pci_access* acc) {
    pci_dev* p = pci_get_dev(acc, int(addr.domain), addr.bus, addr.dev, addr.func);
    int ok = p ? op(p) : 0;
    if (p) pci_free_dev(p);
    if (!ok) std::snprintf(pci_message, sizeof pci_message, "%s", failure);
    return ok != 0;
  });
}

}  // namespace

Result<Device> read_device(const Root& root, const PciAddress& addr) {
  Device d;
  d.addr = addr;
  const std::string base = root.path(d.sysfs());
  auto vendor = read_hex(base + "/vendor");
  if (!vendor)
    return fail(addr.str(), "no such PCI device (nothing at " + d.sysfs() +
                                "); check the address with pt-bind list",
                ENODEV);
  d.vendor = uint16_t(*vendor);
  d.device = uint16_t(read_hex(base + "/device").value_or(0));
  d.class_code = read_hex(base + "/class").value_or(0);
  fill_sysfs(root, d);
  return d;
}

namespace {

// Class names as lspci prints them, from the class section that ends
// pci.ids. libpci's pci_lookup_name would parse the whole 1.4 MB file into a
// 2 MB table to answer these few look-ups, so only the file's tail is read.
struct ClassNames {
  std::map<uint8_t, std::string> bases;
  std::map<uint16_t, std::string> subclasses;
};

ClassNames load_class_names(std::string path) {
  ClassNames names;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && path.ends_with(".gz")) {
    path.resize(path.size() - 3);
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) return names;
  struct stat st {};
  ::fstat(fd, &st);
  std::string tail;
  size_t start = std::string::npos;
  for (off_t want = 16384;; want *= 4) {
    off_t from = st.st_size > want ? st.st_size - want : 0;
    tail.assign(size_t(st.st_size - from), '\0');
    ssize_t n = ::pread(fd, tail.data(), tail.size(), from);
    if (n < 0) break;
    tail.resize(size_t(n));
    start = tail.find("\nC 00  ");
    if (start != std::string::npos || from == 0) break;
  }
  ::close(fd);
  if (start == std::string::npos) return names;
  int base = -1;
  size_t pos = start + 1;
  while (pos < tail.size()) {
    size_t end = tail.find('\n', pos);
    if (end == std::string::npos) end = tail.size();
    std::string_view line(tail.data() + pos, end - pos);
    pos = end + 1;
    auto hex2 = [](std::string_view h) { return int(std::strtol(std::string(h).c_str(), nullptr, 16)); };
    if (line.size() > 6 && line[0] == 'C' && line[1] == ' ' && line.substr(4, 2) == "  ") {
      base = hex2(line.substr(2, 2));
      names.bases[uint8_t(base)] = std::string(line.substr(6));
    } else if (base >= 0 && line.size() > 5 && line[0] == '\t' && line[1] != '\t' && line.substr(3, 2) == "  ") {
      names.subclasses[uint16_t(base << 8 | hex2(line.substr(1, 2)))] = std::string(line.substr(5));
    }
  }
  return names;
}

// Reads ADDRS through one libpci access. The bus is listed here rather than
// by pci_scan_bus, which gives up on the whole bus when one function is
// removed while it reads.
bool scan_raw(PciAccess& holder, const std::vector<PciAddress>& addrs, std::vector<RawDevice>& raw,
              bool names) {
  raw.clear();
  if (holder.acc) pci_cleanup(std::exchange(holder.acc, nullptr));
  // libpci's error handler jumps out of the region mid-read (a function
  // vanished): the device being read is freed here, not leaked.
  pci_dev* volatile current = nullptr;
  const bool ok = in_pci_region(holder, [&](pci_access* acc) {
    for (const auto& a : addrs) {
      current = pci_get_dev(acc, int(a.domain), a.bus, a.dev, a.func);
      pci_dev* p = current;
      if (!p) continue;
      pci_fill_info(p, PCI_FILL_IDENT | PCI_FILL_CLASS);
      raw.push_back(RawDevice{a, p->vendor_id, p->device_id, uint32_t(p->device_class) << 8, {}});
      current = nullptr;
      pci_free_dev(p);
    }
    if (names && acc->id_file_name) holder.ids_path = acc->id_file_name;
    return true;
  });
  if (current) pci_free_dev(current);
  return ok;
}

// The functions /sys/bus/pci/devices lists whose directory is still there:
// a function removed (hot unplug, remove, a rescan under way) leaves a
// link to nothing for a moment, and one vanished function must not fail a
// scan for the others.
std::vector<PciAddress> present_functions(const Root& root) {
  std::vector<PciAddress> out;
  for (const auto& name : list_dir(root, "/sys/bus/pci/devices"))
    // The trailing slash makes lstat(2) follow the link to the directory.
    if (auto a = parse_sysfs_name(name);
        a && path_exists(root, "/sys/bus/pci/devices/" + name + "/"))
      out.push_back(*a);
  return out;
}

}  // namespace

Result<std::vector<Device>> scan_devices(const Root& root, const ScanOptions& options) {
  PciAccess holder;
  holder.sysfs_path = root.path("/sys/bus/pci");
  std::vector<RawDevice> raw;
  // A function that vanishes between the listing and libpci's read fails
  // the read; listing again leaves it out.
  bool read = false;
  for (int attempt = 0; attempt < 3 && !read; ++attempt)
    read = scan_raw(holder, present_functions(root), raw, options.class_names);
  if (!read) return fail(holder.sysfs_path, std::string("libpci: ") + pci_message, EIO);

  ClassNames class_names;
  if (options.class_names && !holder.ids_path.empty()) class_names = load_class_names(holder.ids_path);
  auto name_of = [&](uint32_t class_code) {
    if (auto it = class_names.subclasses.find(uint16_t(class_code >> 8)); it != class_names.subclasses.end())
      return it->second;
    if (auto it = class_names.bases.find(uint8_t(class_code >> 16)); it != class_names.bases.end()) return it->second;
    return std::string();
  };
  std::vector<Device> out;
  out.reserve(raw.size());
  for (auto& r : raw) {
    Device d;
    d.addr = r.addr;
    d.vendor = r.vendor;
    d.device = r.device;
    // libpci gives base+sub class; the prog-if lives in the class attribute.
    d.class_code = read_hex(root.path(d.sysfs("class"))).value_or(r.class_code);
    d.class_name = name_of(d.class_code);
    fill_sysfs(root, d);
    out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end(), [](const Device& a, const Device& b) { return a.addr < b.addr; });
  return out;
}

Result<std::vector<Device>> scan_near(const Root& root, const std::vector<DeviceSpec>& specs) {
  std::vector<PciAddress> addrs;
  for (const auto& name : list_dir(root, "/sys/bus/pci/devices"))
    if (auto a = parse_sysfs_name(name)) addrs.push_back(*a);
  std::set<std::pair<uint32_t, uint8_t>> buses;
  for (const auto& a : addrs)
    for (const auto& s : specs)
      if (s.matches(a)) buses.insert({a.domain, a.bus});
  std::vector<Device> out;
  for (const auto& a : addrs) {
    if (!buses.count({a.domain, a.bus})) continue;
    auto d = read_device(root, a);
    // Gone since the listing: the others are still worth a look, and a
    // named one is missing to the resolver.
    if (!d && !path_exists(root, "/sys/bus/pci/devices/" + a.str() + "/")) continue;
    if (!d) return std::unexpected(d.error());
    out.push_back(std::move(*d));
  }
  std::sort(out.begin(), out.end(), [](const Device& a, const Device& b) { return a.addr < b.addr; });
  return out;
}

std::vector<PciAddress> group_members(const Root& root, int group) {
  std::vector<PciAddress> out;
  for (const auto& name : list_dir(root, "/sys/kernel/iommu_groups/" + std::to_string(group) + "/devices"))
    if (auto a = parse_sysfs_name(name)) out.push_back(*a);
  return out;
}

Result<std::vector<uint8_t>> read_config(const Root& root, const PciAddress& addr, int len) {
  PciAccess holder;
  holder.sysfs_path = root.path("/sys/bus/pci");
  std::vector<uint8_t> bytes(size_t(len), 0xff);
  if (!on_device(holder, addr, "cannot read config space",
                 [&](pci_dev* p) { return pci_read_block(p, 0, bytes.data(), int(bytes.size())); }))
    return fail(addr.str(), std::string("libpci: ") + pci_message, EIO);
  return bytes;
}

Status write_config_word(const Root& root, const PciAddress& addr, int offset, uint16_t value) {
  PciAccess holder;
  holder.sysfs_path = root.path("/sys/bus/pci");
  if (!on_device(holder, addr, "cannot write config space",
                 [&](pci_dev* p) { return pci_write_word(p, offset, value); }))
    return fail(addr.str(), std::string("libpci: ") + pci_message, EIO);
  return {};
}

}  // namespace pt
