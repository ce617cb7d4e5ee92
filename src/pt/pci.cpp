#include "pt/pci.hpp"

extern "C" {
#include <pci/pci.h>
}

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csetjmp>
#include <map>
#include <set>
#include <cstdarg>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <string_view>
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

std::unexpected<Error> no_such_device(const std::string& subject, const std::string& hint) {
  return fail(subject, "no such PCI device" + (hint.empty() ? std::string() : "; " + hint), ENODEV);
}

std::string name_string(const Device& d) {
  if (d.vendor_name.empty()) return "";
  if (!d.device_name.empty()) return d.vendor_name + " " + d.device_name;
  return d.vendor_name + " Device " + hex4(d.device);
}

std::string pci_ids_path(const Root& root) {
  // pci_alloc sets id_file_name to libpci's built-in default; nothing is
  // read and no error handler can fire before pci_init.
  pci_access* acc = pci_alloc();
  std::string path = acc->id_file_name ? acc->id_file_name : "/usr/share/misc/pci.ids";
  pci_cleanup(acc);
  // Debian's libpci names pci.ids.gz, and falls back to the plain file the
  // pci.ids package ships; pt reads only that one (no zlib).
  if (path.ends_with(".gz")) path.resize(path.size() - 3);
  return root.is_real() ? path : root.path(path);
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
    return no_such_device(addr.str());
  d.vendor = uint16_t(*vendor);
  d.device = uint16_t(read_hex(base + "/device").value_or(0));
  d.class_code = read_hex(base + "/class").value_or(0);
  fill_sysfs(root, d);
  return d;
}

namespace {

// Names as lspci prints them, read from pci.ids in one pass that keeps only
// what the scanned devices need. libpci's pci_lookup_name would parse the
// whole 1.4 MB file into a 2 MB table for these few look-ups, which alone
// takes pt-bind list over its 8 MiB peak RSS (bench/README.md).
struct IdNames {
  std::map<uint16_t, std::string> vendors;
  std::map<uint32_t, std::string> devices;  // vendor << 16 | device
  std::map<uint8_t, std::string> bases;
  std::map<uint16_t, std::string> subclasses;
};

std::optional<unsigned> hex_field(std::string_view line, size_t from, size_t len) {
  if (line.size() < from + len + 2 || line.substr(from + len, 2) != "  ") return std::nullopt;
  unsigned v = 0;
  for (char c : line.substr(from, len)) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = v << 4 | unsigned(d);
  }
  return v;
}

// pci.ids: "VVVV  vendor", "\tDDDD  device", "\t\tSSSS SSSS  subsystem",
// then the class section: "C CC  class", "\tSS  subclass", "\t\tPP  prog-if".
void take_line(std::string_view line, IdNames& names, const std::set<uint32_t>& wanted,
               int& vendor, int& base) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty() || line[0] == '#') return;
  if (line[0] != '\t') {
    vendor = base = -1;
    if (line.starts_with("C ")) {
      if (auto b = hex_field(line, 2, 2)) {
        base = int(*b);
        names.bases[uint8_t(base)] = std::string(line.substr(6));
      }
    } else if (auto v = hex_field(line, 0, 4)) {
      vendor = int(*v);
      if (wanted.count(uint32_t(vendor) << 16 | 0xffff))
        names.vendors[uint16_t(vendor)] = std::string(line.substr(6));
    }
    return;
  }
  if (line.size() > 1 && line[1] == '\t') return;
  if (base >= 0) {
    if (auto sub = hex_field(line, 1, 2))
      names.subclasses[uint16_t(base << 8 | int(*sub))] = std::string(line.substr(5));
  } else if (vendor >= 0) {
    if (auto dev = hex_field(line, 1, 4)) {
      const uint32_t key = uint32_t(vendor) << 16 | *dev;
      if (wanted.count(key)) names.devices[key] = std::string(line.substr(7));
    }
  }
}

// WANTED holds vendor << 16 | device for each device, and vendor << 16 |
// 0xffff for each vendor (no device of pci.ids has the ID ffff).
IdNames load_names(const std::string& path, const std::set<uint32_t>& wanted) {
  IdNames names;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return names;
  struct stat st {};
  // Only a regular file: a FIFO planted in a fixture tree must not hang a scan.
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return names;
  }
  int vendor = -1, base = -1;
  std::string carry;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::string_view chunk(buf, size_t(n));
    while (!chunk.empty()) {
      size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        carry.append(chunk);
        break;
      }
      if (carry.empty()) {
        take_line(chunk.substr(0, nl), names, wanted, vendor, base);
      } else {
        carry.append(chunk.substr(0, nl));
        take_line(carry, names, wanted, vendor, base);
        carry.clear();
      }
      chunk.remove_prefix(nl + 1);
    }
  }
  if (!carry.empty()) take_line(carry, names, wanted, vendor, base);
  ::close(fd);
  return names;
}

// Reads ADDRS through one libpci access. The bus is listed here rather than
// by pci_scan_bus, which gives up on the whole bus when one function is
// removed while it reads.
bool scan_raw(PciAccess& holder, const std::vector<PciAddress>& addrs, std::vector<RawDevice>& raw) {
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

void fill_names(const Root& root, std::vector<Device>& devices) {
  std::set<uint32_t> wanted;
  for (const auto& d : devices) {
    wanted.insert(uint32_t(d.vendor) << 16 | d.device);
    wanted.insert(uint32_t(d.vendor) << 16 | 0xffff);
  }
  const auto names = load_names(pci_ids_path(root), wanted);
  auto find = [](const auto& map, auto key) {
    auto it = map.find(key);
    return it == map.end() ? std::string() : it->second;
  };
  for (auto& d : devices) {
    auto sub = find(names.subclasses, uint16_t(d.class_code >> 8));
    d.class_name = sub.empty() ? find(names.bases, uint8_t(d.class_code >> 16)) : sub;
    d.vendor_name = find(names.vendors, d.vendor);
    d.device_name = find(names.devices, uint32_t(d.vendor) << 16 | d.device);
  }
}

Result<std::vector<Device>> scan_devices(const Root& root, const ScanOptions& options) {
  PciAccess holder;
  holder.sysfs_path = root.path("/sys/bus/pci");
  std::vector<RawDevice> raw;
  // A function that vanishes between the listing and libpci's read fails
  // the read; listing again leaves it out.
  bool read = false;
  for (int attempt = 0; attempt < 3 && !read; ++attempt)
    read = scan_raw(holder, present_functions(root), raw);
  if (!read) return fail(holder.sysfs_path, std::string("libpci: ") + pci_message, EIO);

  std::vector<Device> out;
  out.reserve(raw.size());
  for (auto& r : raw) {
    Device d;
    d.addr = r.addr;
    d.vendor = r.vendor;
    d.device = r.device;
    // libpci gives base+sub class; the prog-if lives in the class attribute.
    d.class_code = read_hex(root.path(d.sysfs("class"))).value_or(r.class_code);
    fill_sysfs(root, d);
    out.push_back(std::move(d));
  }
  if (options.names) fill_names(root, out);
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
