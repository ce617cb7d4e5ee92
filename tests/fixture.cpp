#include "fixture.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "pt/pci.hpp"
#include "pt/rebar.hpp"
#include "pt/try.hpp"

namespace fs = std::filesystem;

namespace pt::test {

namespace {

std::string hex(uint32_t v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%0*x", width, v);
  return buf;
}

void put(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << content;
  if (!f) throw std::runtime_error("fixture: cannot write " + p.string());
}

void link(const fs::path& target, const fs::path& at, bool relative = true) {
  fs::create_directories(at.parent_path());
  fs::remove(at);
  fs::create_symlink(relative ? target.lexically_relative(at.parent_path()) : target, at);
}

std::string slot_of(const std::string& bdf) {
  return bdf.substr(0, bdf.size() - 2);
}

void put16(std::string& c, size_t off, uint16_t v) {
  c[off] = char(v & 0xff);
  c[off + 1] = char(v >> 8);
}
void put32(std::string& c, size_t off, uint32_t v) {
  put16(c, off, uint16_t(v & 0xffff));
  put16(c, off + 2, uint16_t(v >> 16));
}

// A type-0 or type-1 header with the capability lists CAPS asks for. A
// bridge is a root port on bus 00 and a downstream port below another.
std::string config_space(uint16_t vendor, uint16_t device, uint32_t class_code, bool bridge,
                         bool multifunction, const FakeCaps& caps = {}, bool root_port = true) {
  if (!caps.raw.empty()) return caps.raw;
  std::string c(4096, '\0');
  c[0] = char(vendor & 0xff);
  c[1] = char(vendor >> 8);
  c[2] = char(device & 0xff);
  c[3] = char(device >> 8);
  c[4] = 0x07;  // IO, memory, bus master
  c[9] = char(class_code & 0xff);
  c[10] = char((class_code >> 8) & 0xff);
  c[11] = char((class_code >> 16) & 0xff);
  c[14] = char((bridge ? 1 : 0) | (multifunction ? 0x80 : 0));
  if (!bridge) put32(c, 0x10, 0xf0000000u);      // BAR0: something a lost reset would clear
  std::vector<std::pair<size_t, uint8_t>> list;  // offset, id
  if (caps.pm) list.push_back({0x40, 0x01});
  if (caps.pcie || bridge) list.push_back({0x50, 0x10});
  if (caps.af && !bridge) list.push_back({0x70, 0x13});
  if (list.empty()) return c;
  put16(c, 0x06, 0x0010);  // status: capability list
  c[0x34] = char(list.front().first);
  for (size_t i = 0; i < list.size(); ++i) {
    auto [off, id] = list[i];
    c[off] = char(id);
    c[off + 1] = char(i + 1 < list.size() ? list[i + 1].first : 0);
  }
  if (caps.pm) put16(c, 0x44, uint16_t((caps.no_soft_reset ? 0x0008 : 0) | (caps.power_state & 3)));
  if (caps.pcie || bridge) {
    // Flags: version 2; port type endpoint, root port or downstream port.
    put16(c, 0x52, uint16_t(0x0002 | (bridge ? (root_port ? 0x40 : 0x60) : 0x00)));
    put32(c, 0x54, caps.flr && !bridge ? (1u << 28) : 0);  // DevCap
    put32(c, 0x5c, bridge ? (1u << 20) : 0);               // LnkCap: DLLLA reporting on ports
    put16(c, 0x62, bridge ? 0x2000 : 0);                   // LnkSta: link active
    std::vector<std::pair<size_t, uint16_t>> ext;          // offset, id
    if (caps.acs) ext.push_back({0x100, 0x000d});
    if (caps.ats) ext.push_back({0x110, 0x000f});
    if (caps.ari) ext.push_back({0x120, 0x000e});
    if (caps.sriov) ext.push_back({0x130, 0x0010});
    // The list starts at 0x100: a null capability (ID 0) leads to SR-IOV
    // when it is the only one.
    if (caps.sriov && ext.front().first != 0x100)
      put32(c, 0x100, 1u << 16 | uint32_t(ext.front().first) << 20);
    for (size_t i = 0; i < ext.size(); ++i) {
      size_t next = i + 1 < ext.size() ? ext[i + 1].first : 0;
      put32(c, ext[i].first, uint32_t(ext[i].second) | 1u << 16 | uint32_t(next) << 20);
    }
    if (caps.acs) {
      put16(c, 0x104, caps.acs->first);
      put16(c, 0x106, caps.acs->second);
    }
    if (caps.ats) put16(c, 0x116, caps.ats_enabled ? 0x8000 : 0);
    if (const auto& s = caps.sriov) {
      put16(c, 0x138, s->num_vfs ? 0x0001 : 0);  // VF Enable
      put16(c, 0x13c, s->total_vfs);             // InitialVFs
      put16(c, 0x13e, s->total_vfs);
      put16(c, 0x140, s->num_vfs);
      put16(c, 0x144, s->offset);
      put16(c, 0x146, s->stride);
      put16(c, 0x14a, s->vf_device);
    }
  }
  if (caps.af && !bridge) c[0x73] = char(caps.af_flr ? 0x03 : 0x01);
  return c;
}

}  // namespace

std::string config_from_lspci(std::string_view dump, size_t size) {
  std::string c(size, '\0');
  size_t pos = 0;
  while (pos < dump.size()) {
    size_t end = dump.find('\n', pos);
    if (end == std::string_view::npos) end = dump.size();
    std::string line(dump.substr(pos, end - pos));
    pos = end + 1;
    auto colon = line.find(": ");
    if (colon == std::string::npos || colon == 0 || colon > 3 ||
        line.find_first_not_of("0123456789abcdef") != colon)
      continue;
    size_t off = std::stoul(line.substr(0, colon), nullptr, 16);
    for (size_t i = colon + 2; i + 1 < line.size() + 1 && off < size; i += 3, ++off)
      c[off] = char(std::stoul(line.substr(i, 2), nullptr, 16));
  }
  return c;
}

// Source: the `lspci -vvv` in Philipp Jungkamp's report "PROBLEM: Some
// intel-ish/hid-sensor-hub IIO devices always report 0 on synchronous read"
// (linux-iio, 11 Aug 2022), as quoted in Srinivas Pandruvada's reply,
// https://lore.kernel.org/linux-iio/f3c95d3355d84562e37252a7313ba183eb219b53.camel@linux.intel.com/
// Every register below is a field that dump decodes; what it does not show
// (the other capabilities' bodies) is zero.
std::string alder_lake_igpu_config() {
  std::string c(4096, '\0');
  put16(c, 0x00, 0x8086);
  put16(c, 0x02, 0x46a6);
  put16(c, 0x04, 0x0407);      // I/O+ Mem+ BusMaster+ DisINTx+
  put16(c, 0x06, 0x0010);      // Cap+
  c[0x08] = char(0x0c);        // rev 0c
  c[0x0b] = char(0x03);        // VGA compatible controller, prog-if 00
  put32(c, 0x10, 0x1c000004);  // Region 0: 601c000000, 64-bit, non-prefetchable
  put32(c, 0x14, 0x00000060);
  put32(c, 0x18, 0x0000000c);  // Region 2: 4000000000, 64-bit, prefetchable
  put32(c, 0x1c, 0x00000040);
  put32(c, 0x20, 0x00003001);  // Region 4: I/O ports at 3000
  put16(c, 0x2c, 0x17aa);      // Subsystem: Lenovo Device 3804
  put16(c, 0x2e, 0x3804);
  c[0x34] = char(0x40);
  c[0x3d] = 1;  // pin A
  // Vendor Specific (Len=0c) -> Express v2 RCiEP -> MSI -> PM v2.
  c[0x40] = char(0x09), c[0x41] = char(0x70), c[0x42] = char(0x0c);
  c[0x70] = char(0x10), c[0x71] = char(0xac);
  put16(c, 0x72, 0x0092);    // version 2, Root Complex Integrated Endpoint
  put32(c, 0x74, 1u << 28);  // DevCap: FLReset+
  c[0xac] = char(0x05), c[0xad] = char(0xd0);
  put16(c, 0xae, 0x0101);  // MSI: Enable+ Maskable+ 64bit-
  c[0xd0] = char(0x01), c[0xd1] = 0;
  put16(c, 0xd2, 0x0022);  // PM version 2, DSI+
  // Extended: PASID -> ATS -> PRI -> SR-IOV.
  put32(c, 0x100, 0x001b | 1u << 16 | 0x200u << 20);
  put32(c, 0x200, 0x000f | 1u << 16 | 0x300u << 20);
  put32(c, 0x300, 0x0013 | 1u << 16 | 0x320u << 20);
  put32(c, 0x320, 0x0010 | 1u << 16);
  put16(c, 0x32c, 7);       // Initial VFs
  put16(c, 0x32e, 7);       // Total VFs
  put16(c, 0x330, 0);       // Number of VFs
  put16(c, 0x334, 1);       // VF offset
  put16(c, 0x336, 1);       // stride
  put16(c, 0x33a, 0x46a6);  // VF Device ID
  put32(c, 0x33c, 0x553);   // Supported Page Size
  put32(c, 0x340, 0x1);     // System Page Size
  return c;
}

// Source: https://github.com/pciutils/pciutils/blob/master/tests/cap-rebar
// (`lspci -xxxx` of 09:00.0, an AMD Radeon R9 FURY / NANO, rev ca). Lines
// of zeros are left out; config_from_lspci zero-fills them.
std::string radeon_fiji_config() {
  return config_from_lspci(R"(00: 02 10 00 73 07 04 10 00 ca 00 00 03 10 00 80 00
10: 0c 00 00 e0 00 00 00 00 0c 00 00 f0 00 00 00 00
20: 01 e0 00 00 00 00 80 fe 00 00 00 00 02 10 36 0b
30: 00 00 84 fe 48 00 00 00 00 00 00 00 0a 01 00 00
40: 00 00 00 00 00 00 00 00 09 50 08 00 02 10 36 0b
50: 01 58 03 f6 08 00 00 00 10 a0 12 00 a1 8f 00 00
60: 30 29 09 00 03 01 40 00 40 00 03 11 00 00 00 00
70: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 70 00
80: 40 00 00 00 0e 00 00 00 03 00 1f 00 00 00 00 00
a0: 05 00 81 00 00 00 e0 fe 00 00 00 00 00 00 00 00
100: 0b 00 01 15 01 00 01 01 00 00 00 00 00 00 00 00
150: 01 00 02 20 00 00 00 00 00 00 00 00 30 20 46 00
160: 00 00 00 00 00 20 00 00 a0 00 00 00 00 00 00 00
200: 15 00 01 27 00 f0 01 00 20 08 00 00 00 00 00 00
270: 19 00 01 2b 00 00 00 00 00 00 00 00 00 27 00 27
280: 00 27 00 27 00 27 00 27 00 27 00 27 00 27 00 27
290: 00 27 00 27 00 27 00 27 00 27 00 27 00 00 00 00
2b0: 0f 00 01 2c 20 00 00 80 00 00 00 00 00 00 00 00
2c0: 13 00 01 2d 00 00 00 01 20 00 00 00 00 00 00 00
2d0: 1b 00 81 32 06 10 00 00 00 00 00 00 00 00 00 00
320: 00 00 00 00 00 00 00 00 0e 00 01 00 00 01 00 00
400: 0b 00 01 00 02 00 01 07 00 00 00 00 00 00 00 00
)");
}

Fixture::Fixture() {
  char tmpl[] = "/tmp/pt-fixture-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("fixture: mkdtemp failed");
  dir_ = tmpl;
  for (const char* d : {"/sys/bus/pci/devices", "/sys/bus/pci/drivers", "/sys/kernel/iommu_groups",
                        "/sys/module", "/sys/class/vtconsole", "/dev/dri", "/dev/vfio", "/proc",
                        "/run", "/etc", "/lib/modules/6.1.0-fixture"})
    fs::create_directories(dir_ + d);
  put(dir_ + "/sys/bus/pci/drivers_probe", "");
  put(dir_ + "/sys/bus/pci/rescan", "");
  put(dir_ + "/sys/bus/pci/drivers_autoprobe", "1\n");
  put(dir_ + "/proc/sys/kernel/osrelease", "6.1.0-fixture\n");
  put(dir_ + "/dev/vfio/vfio", "");
  put(dir_ + "/usr/share/misc/pci.ids", kPciIds);
}

Fixture::~Fixture() {
  if (keep_) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

namespace {
Root root_of(const std::string& dir) {
  auto r = Root::open(dir);
  if (!r) throw std::runtime_error("fixture: " + r.error().describe());
  return *r;
}
}  // namespace

Root Fixture::root() const {
  return root_of(dir_);
}

Context Fixture::context(bool dry_run) {
  Context ctx;
  ctx.root = root();
  ctx.writer = &kernel_;
  ctx.modules = &modules_;
  ctx.timeout = std::chrono::milliseconds(200);
  ctx.dry_run = dry_run;
  return ctx;
}

std::string Fixture::dev_dir(const std::string& bdf) const {
  std::string parent;
  if (auto it = devices_.find(bdf); it != devices_.end()) parent = it->second.parent;
  if (auto it = bridges_.find(bdf); it != bridges_.end()) parent = it->second;
  if (parent.empty()) return "/sys/devices/pci" + bdf.substr(0, 7) + "/" + bdf;
  return dev_dir(parent) + "/" + bdf;
}

Fixture& Fixture::add_driver(const std::string& name, const std::string& module) {
  const std::string d = dir_ + "/sys/bus/pci/drivers/" + name;
  for (const char* f : {"bind", "unbind", "new_id", "remove_id"}) put(d + "/" + f, "");
  if (!module.empty()) {
    // As module_add_driver: both directions, the module's link named bus:driver.
    fs::create_directories(dir_ + "/sys/module/" + module + "/drivers");
    link(dir_ + "/sys/module/" + module, d + "/module");
    link(d, dir_ + "/sys/module/" + module + "/drivers/pci:" + name);
  }
  return *this;
}

Fixture& Fixture::add_bridge(const std::string& bdf, const std::string& parent,
                             std::optional<FakeCaps> caps) {
  if (!caps) caps = FakeCaps{.acs = std::pair<uint16_t, uint16_t>{0x001f, 0x001d}};
  bridges_[bdf] = parent;
  const std::string real = dir_ + dev_dir(bdf);
  put(real + "/vendor", "0x8086\n");
  put(real + "/device", "0x7c10\n");
  put(real + "/class", "0x060400\n");
  put(real + "/irq", "0\n");
  std::string res;
  for (int i = 0; i < 17; ++i) res += "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
  put(real + "/resource", res);
  put(real + "/config", config_space(0x8086, 0x7c10, 0x060400, true, false, *caps, parent.empty()));
  put(real + "/rescan", "");
  put(real + "/driver_override", "(null)\n");
  put(real + "/power_state", "D0\n");
  link(dir_ + "/sys/bus/pci", real + "/subsystem");
  link(real, dir_ + "/sys/bus/pci/devices/" + bdf);
  if (!path_exists(dir_ + "/sys/bus/pci/drivers/pcieport")) add_driver("pcieport");
  link(dir_ + "/sys/bus/pci/drivers/pcieport", real + "/driver");
  link(real, dir_ + "/sys/bus/pci/drivers/pcieport/" + bdf);
  return *this;
}

Fixture& Fixture::add_device(const FakeDevice& in) {
  FakeDevice dev = in;
  if (dev.native_driver.empty()) dev.native_driver = dev.driver;
  devices_[dev.bdf] = dev;
  const std::string real = dir_ + dev_dir(dev.bdf);
  put(real + "/vendor", hex(dev.vendor, 4) + "\n");
  put(real + "/device", hex(dev.device, 4) + "\n");
  put(real + "/class", hex(dev.class_code, 6) + "\n");
  put(real + "/revision", "0xa1\n");
  put(real + "/subsystem_vendor", hex(dev.vendor, 4) + "\n");
  put(real + "/subsystem_device", "0x0000\n");
  put(real + "/irq", "16\n");
  std::string res;
  for (int i = 0; i < 13; ++i) res += "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
  put(real + "/resource", res);
  bool multifunction = false;
  for (const auto& [b, d] : devices_)
    if (b != dev.bdf && slot_of(b) == slot_of(dev.bdf)) multifunction = true;
  const std::string config =
      config_space(dev.vendor, dev.device, dev.class_code, false, multifunction, dev.caps);
  put(real + "/config", config);
  if (dev.resize_files) {
    // The kernel shows one resourceN_resize per ReBAR BAR: the supported
    // sizes as a bitmap, bit 0 = 1 MiB (pci-sysfs.c, "%016llx").
    for (const auto& b : rebar::decode(ConfigSpace(std::vector<uint8_t>(config.begin(), config.end()))))
    {
      char bitmap[24];
      std::snprintf(bitmap, sizeof bitmap, "%016llx\n", static_cast<unsigned long long>(b.supported));
      put(real + "/resource" + std::to_string(b.index) + "_resize", bitmap);
    }
  }
  put(real + "/driver_override", "(null)\n");
  put(real + "/power_state", "D0\n");
  put(real + "/enable", "1\n");
  char alias[96];
  std::snprintf(alias, sizeof alias, "pci:v0000%04Xd0000%04Xsv*sd*bc%02Xsc%02Xi%02X\n", dev.vendor,
                dev.device, (dev.class_code >> 16) & 0xff, (dev.class_code >> 8) & 0xff,
                dev.class_code & 0xff);
  put(real + "/modalias", alias);
  if (dev.boot_vga) put(real + "/boot_vga", *dev.boot_vga ? "1\n" : "0\n");
  if (dev.reset_methods) {
    std::string m;
    for (const auto& x : *dev.reset_methods) m += (m.empty() ? "" : " ") + x;
    put(real + "/reset_method", m + "\n");
  }
  put(real + "/reset", "");
  put(real + "/remove", "");
  if (const auto& s = dev.caps.sriov) {
    put(real + "/sriov_totalvfs", std::to_string(s->total_vfs) + "\n");
    put(real + "/sriov_numvfs", std::to_string(s->num_vfs) + "\n");
    put(real + "/sriov_drivers_autoprobe", "1\n");
    put(real + "/sriov_vf_device", hex(s->vf_device, 4).substr(2) + "\n");
    put(real + "/sriov_offset", std::to_string(s->offset) + "\n");
    put(real + "/sriov_stride", std::to_string(s->stride) + "\n");
  }
  link(dir_ + "/sys/bus/pci", real + "/subsystem");
  link(real, dir_ + "/sys/bus/pci/devices/" + dev.bdf);
  if (dev.group) {
    const std::string g = dir_ + "/sys/kernel/iommu_groups/" + std::to_string(*dev.group);
    fs::create_directories(g + "/devices");
    link(g, real + "/iommu_group");
    link(real, g + "/devices/" + dev.bdf);
  }
  if (!dev.driver.empty()) {
    devices_[dev.bdf].driver.clear();
    if (!path_exists(dir_ + "/sys/bus/pci/drivers/" + dev.driver))
      add_driver(dev.driver, dev.driver);
    bind(dev.bdf, dev.driver);
  }
  // Rewrite the slot's function 0 header now that the slot is multifunction.
  for (auto& [b, d] : devices_)
    if (b != dev.bdf && slot_of(b) == slot_of(dev.bdf))
      put(dir_ + dev_dir(b) + "/config",
          config_space(d.vendor, d.device, d.class_code, false, true, d.caps));
  return *this;
}

Fixture& Fixture::add_holder(int pid, const std::string& comm, const std::string& node) {
  const std::string p = dir_ + "/proc/" + std::to_string(pid);
  put(p + "/comm", comm + "\n");
  fs::create_directories(p + "/fd");
  int n = 3;
  while (fs::is_symlink(p + "/fd/" + std::to_string(n))) ++n;
  fs::create_symlink(
      node, p + "/fd/" + std::to_string(n));  // dangling on purpose: the text is what matters
  return *this;
}

Fixture& Fixture::no_iommu() {
  fs::remove_all(dir_ + "/sys/kernel/iommu_groups");
  fs::create_directories(dir_ + "/sys/kernel/iommu_groups");
  for (auto& [bdf, d] : devices_) {
    fs::remove(dir_ + dev_dir(bdf) + "/iommu_group");
    d.group.reset();
  }
  return *this;
}

void Fixture::fail_write(const std::string& suffix, const std::string& prefix, int err, int nth) {
  faults_.push_back(Fault{suffix, prefix, err, nth, 0});
}

void Fixture::bind(const std::string& bdf, const std::string& driver) {
  auto& dev = devices_.at(bdf);
  const std::string real = dir_ + dev_dir(bdf);
  const std::string drv = dir_ + "/sys/bus/pci/drivers/" + driver;
  link(drv, real + "/driver");
  link(real, drv + "/" + bdf);
  dev.driver = driver;
  if (driver == "vfio-pci" && dev.group) put(dir_ + "/dev/vfio/" + std::to_string(*dev.group), "");
  // vfio-pci's probe allows runtime PM (pm_runtime_allow), its release
  // forbids it again: a power/control written before the bind is undone.
  if (driver == "vfio-pci" && path_exists(real + "/power/control")) put(real + "/power/control", "auto\n");
  if (driver == dev.native_driver) {
    for (const auto& n : dev.drm) {
      fs::create_directories(real + "/drm/" + n);
      put(dir_ + "/dev/dri/" + n, "");
    }
    drm_create(bdf);
    kernel_users_create(bdf);
    for (const auto& s : dev.sound) {
      fs::create_directories(real + "/sound/" + s);
      put(dir_ + "/dev/snd/" + s.substr(s.find('/') + 1), "");
    }
  }
}

void Fixture::unbind(const std::string& bdf) {
  auto& dev = devices_.at(bdf);
  const std::string real = dir_ + dev_dir(bdf);
  const std::string was = driver_of(bdf);
  fs::remove(real + "/driver");
  fs::remove(dir_ + "/sys/bus/pci/drivers/" + was + "/" + bdf);
  dev.driver.clear();
  if (was == "vfio-pci" && path_exists(real + "/power/control")) put(real + "/power/control", "on\n");
  if (was == "vfio-pci" && dev.group) {
    bool others = false;
    for (const auto& [b, d] : devices_)
      if (b != bdf && d.group == dev.group && driver_of(b) == "vfio-pci") others = true;
    if (!others) fs::remove(dir_ + "/dev/vfio/" + std::to_string(*dev.group));
  }
  if (was == dev.native_driver) {
    for (const auto& n : dev.drm) fs::remove(dir_ + "/dev/dri/" + n);
    for (const auto& c : drm_cards_)
      if (c.bdf == bdf) fs::remove_all(real + "/virtio0");
    for (const auto& s : dev.sound) fs::remove(dir_ + "/dev/snd/" + s.substr(s.find('/') + 1));
    fs::remove_all(real + "/drm");
    fs::remove_all(real + "/sound");
    kernel_users_remove(bdf);
  }
}

Fixture& Fixture::add_block(const FakeBlock& block) {
  blocks_.push_back(block);
  if (driver_of(block.bdf) == devices_.at(block.bdf).native_driver) kernel_users_create(block.bdf);
  return *this;
}

Fixture& Fixture::add_stacked_block(const std::string& lower, const std::string& name, int major,
                                    int minor) {
  const std::string real = dir_ + "/sys/devices/virtual/block/" + name;
  put(real + "/dev", std::to_string(major) + ":" + std::to_string(minor) + "\n");
  link(real, dir_ + "/sys/class/block/" + name);
  const std::string low = fs::canonical(dir_ + "/sys/class/block/" + lower).string();
  link(low, real + "/slaves/" + lower);
  link(real, low + "/holders/" + name);
  put(dir_ + "/dev/" + name, "");
  return *this;
}

Fixture& Fixture::add_net(const FakeNet& net) {
  nets_.push_back(net);
  if (driver_of(net.bdf) == devices_.at(net.bdf).native_driver) kernel_users_create(net.bdf);
  return *this;
}

Fixture& Fixture::add_mount(const std::string& devno, const std::string& source,
                            const std::string& target, const std::string& fstype) {
  auto append = [&](const std::string& abs, const std::string& line) {
    put(dir_ + abs, (exists(abs) ? read(abs) + "\n" : "") + line + "\n");
  };
  const int id = mount_id_++;
  append("/proc/self/mountinfo", std::to_string(id) + " 1 " + devno + " / " + target +
                                     " rw,relatime shared:" + std::to_string(id) + " - " + fstype +
                                     " " + source + " rw");
  append("/proc/mounts", source + " " + target + " " + fstype + " rw,relatime 0 0");
  return *this;
}

Fixture& Fixture::add_swap(const std::string& filename) {
  const std::string swaps = "/proc/swaps";
  std::string text =
      exists(swaps) ? read(swaps) : "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority";
  put(dir_ + swaps, text + "\n" + filename + "\t\t\t\tpartition\t1048572\t\t0\t\t-2\n");
  return *this;
}

Fixture& Fixture::add_flock(int pid, const std::string& abs) {
  struct stat st {};
  if (::stat((dir_ + abs).c_str(), &st) != 0) throw std::runtime_error("add_flock: no " + abs);
  const std::string locks = "/proc/locks";
  std::string text = exists(locks) ? read(locks) : "";
  // A waiter's line ("->") comes first, so a reader that took the first line on the file
  // would name the waiter, not the holder.
  char line[160];
  std::snprintf(line, sizeof line, "1: -> FLOCK  ADVISORY  WRITE %d %02x:%02x:%lu 0 EOF\n", pid + 1,
                major(st.st_dev), minor(st.st_dev), static_cast<unsigned long>(st.st_ino));
  text += line;
  std::snprintf(line, sizeof line, "2: FLOCK  ADVISORY  WRITE %d %02x:%02x:%lu 0 EOF\n", pid,
                major(st.st_dev), minor(st.st_dev), static_cast<unsigned long>(st.st_ino));
  text += line;
  put(dir_ + locks, text);
  return *this;
}

// The block devices and interfaces a driver creates on probe.
void Fixture::kernel_users_create(const std::string& bdf) {
  const std::string real = dir_ + dev_dir(bdf);
  for (const auto& b : blocks_) {
    if (b.bdf != bdf) continue;
    std::string disk = real + (b.sub.empty() ? "" : "/" + b.sub) + "/block/" + b.name;
    if (!b.subsystem.empty()) {
      const std::string ctrl = real + "/" + b.sub;
      const std::string subsys = dir_ + "/sys/devices/virtual/nvme-subsystem/" + b.subsystem;
      fs::create_directories(ctrl);
      link(ctrl, subsys + "/" + fs::path(b.sub).filename().string());
      link(subsys, dir_ + "/sys/class/nvme-subsystem/" + b.subsystem);
      disk = subsys + "/" + b.name;
    }
    put(disk + "/dev", std::to_string(b.major) + ":" + std::to_string(b.minor) + "\n");
    fs::create_directories(disk + "/holders");
    link(disk, dir_ + "/sys/class/block/" + b.name);
    put(dir_ + "/dev/" + b.name, "");
    int minor = b.minor;
    for (const auto& p : b.partitions) {
      put(disk + "/" + p + "/dev", std::to_string(b.major) + ":" + std::to_string(++minor) + "\n");
      put(disk + "/" + p + "/partition", std::to_string(minor - b.minor) + "\n");
      fs::create_directories(disk + "/" + p + "/holders");
      link(disk + "/" + p, dir_ + "/sys/class/block/" + p);
      put(dir_ + "/dev/" + p, "");
    }
  }
  for (const auto& n : nets_) {
    if (n.bdf != bdf) continue;
    const std::string dev = real + (n.sub.empty() ? "" : "/" + n.sub) + "/net/" + n.name;
    put(dev + "/flags", n.up ? "0x1003\n" : "0x1002\n");
    put(dev + "/operstate", n.operstate + "\n");
    link(dev, dir_ + "/sys/class/net/" + n.name);
  }
}

void Fixture::kernel_users_remove(const std::string& bdf) {
  const std::string real = dir_ + dev_dir(bdf);
  for (const auto& b : blocks_) {
    if (b.bdf != bdf) continue;
    for (const auto& p : b.partitions) {
      fs::remove(dir_ + "/sys/class/block/" + p);
      fs::remove(dir_ + "/dev/" + p);
    }
    fs::remove(dir_ + "/sys/class/block/" + b.name);
    fs::remove(dir_ + "/dev/" + b.name);
    fs::remove_all(real + (b.sub.empty() ? "" : "/" + b.sub) + "/block");
    if (!b.subsystem.empty()) {
      fs::remove(dir_ + "/sys/class/nvme-subsystem/" + b.subsystem);
      fs::remove_all(dir_ + "/sys/devices/virtual/nvme-subsystem/" + b.subsystem);
      fs::remove_all(real + "/" + b.sub);
    }
  }
  for (const auto& n : nets_) {
    if (n.bdf != bdf) continue;
    fs::remove(dir_ + "/sys/class/net/" + n.name);
    fs::remove_all(real + (n.sub.empty() ? "" : "/" + n.sub) + "/net");
  }
}

// Bound state lives in the tree, not in memory, so forked test processes
// sharing one fixture see each other's binds.
Status Fixture::probe(const std::string& bdf) {
  auto& dev = devices_.at(bdf);
  if (driver_of(bdf) != "none") return {};
  std::string ov = override_of(bdf);
  std::string candidate = ov == "(null)" ? dev.native_driver : ov;
  if (candidate.empty() || !path_exists(dir_ + "/sys/bus/pci/drivers/" + candidate)) return {};
  if (refusals_.count(candidate + "@" + bdf)) return {};
  bind(bdf, candidate);
  return {};
}

std::string Fixture::driver_of(const std::string& bdf) const {
  return link_basename(dir_ + "/sys/bus/pci/devices/" + bdf + "/driver").value_or("none");
}

std::string Fixture::override_of(const std::string& bdf) const {
  return read_attr(dir_ + "/sys/bus/pci/devices/" + bdf + "/driver_override").value_or("?");
}

std::string Fixture::read(const std::string& abs) const {
  return read_attr(dir_ + abs).value_or("");
}
bool Fixture::exists(const std::string& abs) const {
  return path_exists(dir_ + abs);
}
void Fixture::write_file(const std::string& abs, const std::string& content) const {
  put(dir_ + abs, content);
}

std::map<std::string, std::string> Fixture::snapshot() const {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir_); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string rel = it->path().string().substr(dir_.size());
    if (rel.rfind("/run/pt", 0) == 0) {
      if (it->is_directory() && !it->is_symlink()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink())
      out[rel] = "link:" + fs::read_symlink(it->path()).string();
    else if (it->is_directory())
      out[rel] = "dir";
    else
      out[rel] = "file:" + read_attr(it->path().string()).value_or("");
  }
  return out;
}

// pci-sysfs.c's resource##n##_resize_store: refused while a driver is bound,
// then the size is programmed into the capability's control register.
Status Fixture::resize(const std::string& bdf, const std::string& attr, const std::string& value) {
  const std::string path = dev_dir(bdf) + "/" + attr;
  if (driver_of(bdf) != "none") return fail(path, "a driver is bound", EBUSY);
  auto size = parse_index(value);
  auto bar = parse_index(attr.substr(8, attr.size() - 8 - 7));
  auto addr = parse_sysfs_name(bdf);
  auto cfg = read_config(root(), *addr, 4096);
  if (!size || !bar || !cfg) return fail(path, "invalid argument", EINVAL);
  for (const auto& b : rebar::decode(ConfigSpace(*cfg))) {
    if (b.index != int(*bar)) continue;
    if (*size > 63 || !(b.supported >> *size & 1)) return fail(path, "size not supported", EINVAL);
    uint16_t ctrl = uint16_t(((*cfg)[b.control] | (*cfg)[b.control + 1] << 8) & ~0x3f00);
    return write_config_word(root(), *addr, b.control, uint16_t(ctrl | *size << 8));
  }
  return fail(path, "no such BAR", ENOENT);
}

void Fixture::reset_rebar(const std::string& bdf) {
  auto addr = parse_sysfs_name(bdf);
  auto cfg = read_config(root(), *addr, 4096);
  if (!cfg) return;
  for (const auto& b : rebar::decode(ConfigSpace(*cfg))) {
    int smallest = 0;
    while (smallest < 63 && !(b.supported >> smallest & 1)) ++smallest;
    uint16_t ctrl = uint16_t(((*cfg)[b.control] | (*cfg)[b.control + 1] << 8) & ~0x3f00);
    (void)write_config_word(root(), *addr, b.control, uint16_t(ctrl | smallest << 8));
  }
}

void Fixture::rewrite_config(const std::string& bdf) {
  const auto& d = devices_.at(bdf);
  bool multifunction = false;
  for (const auto& [b, o] : devices_)
    if (b != bdf && slot_of(b) == slot_of(bdf)) multifunction = true;
  put(dir_ + dev_dir(bdf) + "/config",
      config_space(d.vendor, d.device, d.class_code, false, multifunction, d.caps));
}

Fixture& Fixture::add_vtconsole(int n, const std::string& name, bool bound) {
  const std::string base = dir_ + "/sys/class/vtconsole/vtcon" + std::to_string(n);
  put(base + "/name", name + "\n");
  put(base + "/bind", bound ? "1\n" : "0\n");
  return *this;
}

void Fixture::put_fb(int n, const std::string& name, const std::string& device_dir) {
  const std::string node = "fb" + std::to_string(n);
  const std::string real = device_dir + "/graphics/" + node;
  put(real + "/name", name + "\n");
  put(real + "/dev", "29:" + std::to_string(n) + "\n");
  link(device_dir, real + "/device");
  link(real, dir_ + "/sys/class/graphics/" + node);
  put(dir_ + "/dev/" + node, "");  // a plain file: no FBIOGET_CON2FBMAP here
}

void Fixture::remove_fb(int n) {
  const std::string node = "fb" + std::to_string(n);
  std::error_code ec;
  auto target = fs::canonical(dir_ + "/sys/class/graphics/" + node, ec);
  if (!ec) fs::remove_all(target);
  fs::remove(dir_ + "/sys/class/graphics/" + node);
  fs::remove(dir_ + "/dev/" + node);
}

Fixture& Fixture::add_framebuffer(int n, const std::string& name, const std::string& bdf,
                                  const std::string& sub, const std::string& sub_driver) {
  std::string dev = dir_ + dev_dir(bdf);
  if (!sub.empty()) {
    dev += "/" + sub;
    fs::create_directories(dev);
    if (!sub_driver.empty()) {
      const std::string drv = dir_ + "/sys/bus/virtio/drivers/" + sub_driver;
      fs::create_directories(drv);
      link(drv, dev + "/driver");
      link(dir_ + "/sys/bus/virtio", dev + "/subsystem");
    }
  }
  put_fb(n, name, dev);
  return *this;
}

Fixture& Fixture::add_firmware_fb(const std::string& device, const std::string& driver, int fb,
                                  const std::string& fb_name, const std::string& parent_bdf) {
  const std::string real =
      (parent_bdf.empty() ? dir_ + "/sys/devices/platform" : dir_ + dev_dir(parent_bdf)) + "/" +
      device;
  put(real + "/modalias", "platform:" + device.substr(0, device.find('.')) + "\n");
  put(real + "/driver_override", "(null)\n");
  link(real, dir_ + "/sys/bus/platform/devices/" + device);
  firmware_[device] = FirmwareFb{real, fb, fb_name};
  if (!driver.empty()) {
    const std::string drv = dir_ + "/sys/bus/platform/drivers/" + driver;
    put(drv + "/bind", "");
    put(drv + "/unbind", "");
    link(drv, real + "/driver");
    link(real, drv + "/" + device);
    if (fb >= 0) put_fb(fb, fb_name, real);
  }
  return *this;
}

Fixture& Fixture::set_iomem(const std::string& text) {
  put(dir_ + "/proc/iomem", text);
  return *this;
}

Fixture& Fixture::set_active_vt(int n) {
  put(dir_ + "/sys/class/tty/tty0/active", "tty" + std::to_string(n) + "\n");
  put(dir_ + "/dev/tty0", "");  // a plain file: no VT ioctls under a fixture
  return *this;
}

// vt.c's store_bind: the result of vt_bind and vt_unbind is dropped.
Status Fixture::write_vtconsole(const std::string& node, const std::string& value) {
  const std::string cls = dir_ + "/sys/class/vtconsole/";
  struct Con {
    std::string node;
    bool modular;
    bool bound;
  };
  std::vector<Con> cons;
  for (const auto& n : list_dir(cls)) {
    auto name = read_attr(cls + n + "/name").value_or("");
    cons.push_back(
        Con{n, name.rfind("(M)", 0) == 0, read_attr(cls + n + "/bind").value_or("0") == "1"});
  }
  std::sort(cons.begin(), cons.end(), [](const Con& a, const Con& b) {
    return std::stoi(a.node.substr(5)) < std::stoi(b.node.substr(5));
  });
  auto self = std::find_if(cons.begin(), cons.end(), [&](const Con& c) { return c.node == node; });
  if (self == cons.end() || !self->modular) return {};
  if (value == "0" && self->bound) {
    for (const auto& c : cons)
      if (c.node != node) {
        put(cls + node + "/bind", "0\n");
        put(cls + c.node + "/bind", "1\n");
        return {};
      }
  }
  if (value == "1" && !self->bound) {
    for (const auto& c : cons)
      if (c.node != node && !c.modular && c.bound) {
        put(cls + c.node + "/bind", "0\n");
        put(cls + node + "/bind", "1\n");
        return {};
      }
  }
  return {};
}

Status FakeKernel::write(const std::string& path, std::string_view value, WriteKind) {
  std::lock_guard<std::mutex> guard(mutex_);
  log.emplace_back(path, std::string(value));
  for (auto& f : fx_.faults_) {
    if (!path.ends_with(f.path_suffix) ||
        std::string_view(value).substr(0, f.value_prefix.size()) != f.value_prefix)
      continue;
    if (++f.seen == f.nth)
      return fail(path, "writing " + show_value(value) + " failed (injected)", f.err);
  }
  const std::string real = fx_.dir_ + path;
  if (!path_exists(real)) return fail(path, "no such attribute", ENOENT);
  if (path.rfind("/sys/class/drm/", 0) == 0 && path.ends_with("/status"))
    return fx_.drm_detect(path);
  const std::string v(value.substr(0, value.find('\n')));
  if (path.rfind("/sys/class/vtconsole/", 0) == 0 && path.ends_with("/bind"))
    return fx_.write_vtconsole(path.substr(21, path.size() - 21 - 5), v);
  const std::string platform = "/sys/bus/platform/drivers/";
  if (path.rfind(platform, 0) == 0 && (path.ends_with("/unbind") || path.ends_with("/bind"))) {
    std::string rest = path.substr(platform.size());
    std::string drv = rest.substr(0, rest.find('/'));
    auto it = fx_.firmware_.find(v);
    if (it == fx_.firmware_.end()) return fail(path, "no such device", ENODEV);
    const auto& fw = it->second;
    auto bound = link_basename(fw.dir + "/driver");
    if (path.ends_with("/unbind")) {
      if (bound.value_or("") != drv) return fail(path, "device not bound to this driver", ENODEV);
      fs::remove(fw.dir + "/driver");
      fs::remove(fx_.dir_ + platform + drv + "/" + v);
      if (fw.fb >= 0) fx_.remove_fb(fw.fb);
      return {};
    }
    if (bound) return fail(path, "device already bound", EBUSY);
    link(fx_.dir_ + platform + drv, fw.dir + "/driver");
    link(fw.dir, fx_.dir_ + platform + drv + "/" + v);
    if (fw.fb >= 0) fx_.put_fb(fw.fb, fw.fb_name, fw.dir);
    return {};
  }
  const std::string drivers = "/sys/bus/pci/drivers/";
  if (path.ends_with("/driver_override")) {
    put(real, (v.empty() ? "(null)" : v) + "\n");
    return {};
  }
  if (path == "/sys/bus/pci/drivers_probe") {
    if (!fx_.devices_.count(v)) return fail(path, "no such device", ENODEV);
    return fx_.probe(v);
  }
  if (path.rfind(drivers, 0) == 0 && (path.ends_with("/unbind") || path.ends_with("/bind"))) {
    std::string rest = path.substr(drivers.size());
    std::string drv = rest.substr(0, rest.find('/'));
    if (!fx_.devices_.count(v)) return fail(path, "no such device", ENODEV);
    if (path.ends_with("/unbind")) {
      if (fx_.driver_of(v) != drv) return fail(path, "device not bound to this driver", ENODEV);
      fx_.unbind(v);
      return {};
    }
    if (fx_.driver_of(v) != "none") return fail(path, "device already bound", EBUSY);
    if (fx_.refusals_.count(drv + "@" + v)) return fail(path, "driver refused the device", ENODEV);
    fx_.bind(v, drv);
    return {};
  }
  const std::string devices = "/sys/bus/pci/devices/";
  if (path.rfind(devices, 0) == 0 && path.size() > devices.size() + 13) {
    std::string bdf = path.substr(devices.size(), 12);
    std::string attr = path.substr(devices.size() + 13);
    if (attr.starts_with("resource") && attr.ends_with("_resize"))
      return fx_.resize(bdf, attr, v);
    if (attr == "reset") {
      ++fx_.resets_[bdf];
      if (fx_.rebar_reset_.count(bdf)) fx_.reset_rebar(bdf);
      if (fx_.corrupt_.count(bdf)) {
        auto raw = read_config(fx_.root(), *parse_sysfs_name(bdf), 4096);
        if (raw) {
          std::string bytes(raw->begin(), raw->end());
          bytes[0x10] = bytes[0x11] = bytes[0x12] = bytes[0x13] = 0;
          put(fx_.dir_ + fx_.dev_dir(bdf) + "/config", bytes);
        }
      }
      return {};
    }
    if (attr == "remove") {
      fx_.removed_.insert(bdf);
      if (fx_.driver_of(bdf) != "none") fx_.unbind(bdf);
      const auto& d = fx_.devices_.at(bdf);
      if (d.group)
        fs::remove(fx_.dir_ + "/sys/kernel/iommu_groups/" + std::to_string(*d.group) + "/devices/" +
                   bdf);
      fs::remove_all(fx_.dir_ + fx_.dev_dir(bdf));
      fs::remove(fx_.dir_ + "/sys/bus/pci/devices/" + bdf);
      return {};
    }
    if (attr == "rescan") return fx_.rescan();
    if (attr == "sriov_numvfs") return fx_.set_numvfs(bdf, v);
  }
  if (path == "/sys/bus/pci/rescan") return fx_.rescan();
  for (const auto& suffix : fx_.ignored_)
    if (path.ends_with(suffix)) return {};
  put(real, std::string(value));
  return {};
}

Status Fixture::rescan() {
  auto removed = removed_;
  removed_.clear();
  // Like pci_bus_add_device: a new device is attached at once, whatever
  // drivers_autoprobe says, and its driver_override is gone.
  for (const auto& bdf : removed) {
    FakeDevice d = devices_.at(bdf);
    d.driver.clear();
    add_device(d);
    probe(bdf);
  }
  return {};
}

// As sriov_numvfs_store and pci_iov_add_virtfn: the count changes only
// through 0, VFs sit beside the PF under its bridge, and a VF is probed at
// once unless sriov_drivers_autoprobe is 0.
Status Fixture::set_numvfs(const std::string& bdf, const std::string& value) {
  const std::string path = "/sys/bus/pci/devices/" + bdf + "/sriov_numvfs";
  FakeDevice& pf = devices_.at(bdf);
  if (!pf.caps.sriov) return fail(path, "no such attribute", ENOENT);
  FakeSriov& sr = *pf.caps.sriov;
  auto n = parse_index(value);
  if (!n || *n > 65535) return fail(path, "invalid argument", EINVAL);
  if (*n > sr.total_vfs) return fail(path, "more VFs than sriov_totalvfs", ERANGE);
  if (*n == sr.num_vfs) return {};
  if (driver_of(bdf) == "none" || !sr.configurable)
    return fail(path, "Driver does not support SRIOV configuration via sysfs", ENOENT);
  if (*n && sr.num_vfs) return fail(path, "VFs already enabled; disable them first", EBUSY);
  const std::string real = dir_ + dev_dir(bdf);
  auto pf_addr = *parse_sysfs_name(bdf);
  const int rid = pf_addr.bus << 8 | pf_addr.dev << 3 | pf_addr.func;
  auto vf_bdf = [&](int i) {
    const int r = rid + sr.offset + sr.stride * i;
    return PciAddress{pf_addr.domain, uint8_t(r >> 8), uint8_t(r >> 3 & 0x1f), uint8_t(r & 7)}
        .str();
  };
  if (*n == 0) {
    for (int i = 0; i < sr.num_vfs; ++i) {
      const std::string vf = vf_bdf(i);
      if (driver_of(vf) != "none") unbind(vf);
      const auto& d = devices_.at(vf);
      if (d.group)
        fs::remove(dir_ + "/sys/kernel/iommu_groups/" + std::to_string(*d.group) + "/devices/" +
                   vf);
      fs::remove_all(dir_ + dev_dir(vf));
      fs::remove(dir_ + "/sys/bus/pci/devices/" + vf);
      fs::remove(real + "/virtfn" + std::to_string(i));
      devices_.erase(vf);
    }
  } else {
    const bool autoprobe = read_attr(real + "/sriov_drivers_autoprobe").value_or("1") == "1";
    for (int i = 0; i < int(*n); ++i) {
      FakeDevice vf{.bdf = vf_bdf(i),
                    .vendor = pf.vendor,
                    .device = sr.vf_device,
                    .class_code = pf.class_code,
                    .parent = pf.parent,
                    .native_driver = sr.vf_driver,
                    .group = sr.vf_group ? std::optional<int>(*sr.vf_group + i) : std::nullopt,
                    .reset_methods = std::vector<std::string>{"flr"}};
      add_device(vf);
      link(dir_ + dev_dir(vf.bdf), real + "/virtfn" + std::to_string(i));
      link(real, dir_ + dev_dir(vf.bdf) + "/physfn");
      if (autoprobe) PT_TRY(probe(vf.bdf));
    }
  }
  sr.num_vfs = uint16_t(*n);
  put(real + "/sriov_numvfs", std::to_string(*n) + "\n");
  rewrite_config(bdf);
  return {};
}

// Config writes land in the tree's config file, where libpci reads them back.
Status FakeKernel::write_config(const std::string& device, uint16_t offset, uint16_t value) {
  std::lock_guard<std::mutex> guard(mutex_);
  const std::string path = "/sys/bus/pci/devices/" + device + "/config";
  log.emplace_back(path, config_value(offset, value));
  for (auto& f : fx_.faults_) {
    if (!path.ends_with(f.path_suffix) || config_value(offset, value).rfind(f.value_prefix, 0) != 0)
      continue;
    if (++f.seen == f.nth) return fail(path, "config write failed (injected)", f.err);
  }
  auto addr = parse_sysfs_name(device);
  if (!addr) return fail(device, "not a PCI address", EINVAL);
  return write_config_word(fx_.root(), *addr, offset, value);
}

Status FakeModules::ensure_driver(const std::string& driver, const std::string& module) {
  if (driver_registered(fx_.root(), driver)) return {};
  if (fail_with) return fail(driver, "loading the module failed (injected)", *fail_with);
  if (!available.count(driver))
    return fail(driver, "no PCI driver and no kernel module of that name", ENOENT);
  fx_.add_driver(driver, module.empty() ? driver : module);
  loaded.push_back(driver);
  return {};
}

bool FakeModules::knows(const std::string& driver) {
  return driver_registered(fx_.root(), driver) || available.count(driver);
}

Result<std::vector<std::string>> FakeModules::lookup_alias(const std::string& alias) {
  std::vector<std::string> out;
  for (const auto& [glob, module] : aliases)
    if (::fnmatch(glob.c_str(), alias.c_str(), 0) == 0 &&
        std::find(out.begin(), out.end(), module) == out.end())
      out.push_back(module);
  return out;
}

Status FakeModules::load_module(const std::string& module) {
  if (fx_.exists("/sys/module/" + module + "/drivers")) return {};
  if (fail_with) return fail(module, "loading the module failed (injected)", *fail_with);
  auto it = module_drivers.find(module);
  if (it == module_drivers.end()) return fail(module, "no kernel module of that name", ENOENT);
  fx_.add_driver(it->second, module);
  loaded.push_back(module);
  return {};
}

void Fixture::kernel_held(Fixture& fx) {
  gpu_with_audio(fx);
  fx.add_driver("virtio-pci", "virtio_pci");
  fx.add_device(FakeDevice{.bdf = "0000:00:04.0",
                           .vendor = 0x1af4,
                           .device = 0x1042,
                           .class_code = 0x010000,
                           .driver = "virtio-pci",
                           .group = 3});
  fx.add_device(FakeDevice{.bdf = "0000:00:05.0",
                           .vendor = 0x1af4,
                           .device = 0x1041,
                           .class_code = 0x020000,
                           .driver = "virtio-pci",
                           .group = 4});
  fx.add_block(FakeBlock{.bdf = "0000:00:04.0", .partitions = {"vda1", "vda2"}});
  fx.add_net(FakeNet{.bdf = "0000:00:05.0"});
}

void Fixture::intel_chipset(Fixture& fx) {
  fx.add_driver("vfio-pci", "vfio_pci")
      .add_driver("lpc_ich", "lpc_ich")
      .add_driver("ahci", "ahci")
      .add_driver("i801_smbus", "i2c_i801");
  fx.add_device(FakeDevice{.bdf = "0000:00:00.0",
                           .vendor = 0x8086,
                           .device = 0x29c0,
                           .class_code = 0x060000,
                           .group = 0});
  fx.add_device(FakeDevice{.bdf = "0000:00:1f.0",
                           .vendor = 0x8086,
                           .device = 0x2918,
                           .class_code = 0x060100,
                           .driver = "lpc_ich",
                           .group = 5});
  fx.add_device(FakeDevice{.bdf = "0000:00:1f.2",
                           .vendor = 0x8086,
                           .device = 0x2922,
                           .class_code = 0x010601,
                           .driver = "ahci",
                           .group = 5});
  fx.add_device(FakeDevice{.bdf = "0000:00:1f.3",
                           .vendor = 0x8086,
                           .device = 0x2930,
                           .class_code = 0x0c0500,
                           .driver = "i801_smbus",
                           .group = 5});
  fx.add_block(FakeBlock{.bdf = "0000:00:1f.2",
                         .name = "sda",
                         .major = 8,
                         .partitions = {"sda1"},
                         .sub = "ata1/host0/target0:0:0/0:0:0:0"});
  fx.add_mount("8:1", "/dev/sda1", "/", "ext4");
}

void Fixture::gpu_with_display(Fixture& fx) {
  gpu_with_audio(fx);
  fx.add_drm_card(FakeDrmCard{.bdf = "0000:01:00.0",
                              .render = 128,
                              .connectors = {FakeConnector{.name = "HDMI-A-1", .modes = 5}},
                              .fb = 0});
}

void Fixture::gpu_with_audio(Fixture& fx) {
  fx.add_driver("vfio-pci", "vfio_pci")
      .add_driver("nvidia", "nvidia")
      .add_driver("snd_hda_intel", "snd_hda_intel");
  fx.add_bridge("0000:00:01.0");
  FakeDevice gpu{.bdf = "0000:01:00.0",
                 .vendor = 0x10de,
                 .device = 0x2484,
                 .class_code = 0x030000,
                 .parent = "0000:00:01.0",
                 .driver = "nvidia",
                 .group = 1,
                 .boot_vga = true,
                 .reset_methods = std::vector<std::string>{"flr", "bus"},
                 .drm = {"card0", "renderD128"}};
  FakeDevice audio{.bdf = "0000:01:00.1",
                   .vendor = 0x10de,
                   .device = 0x228b,
                   .class_code = 0x040300,
                   .parent = "0000:00:01.0",
                   .driver = "snd_hda_intel",
                   .group = 1,
                   .reset_methods = std::vector<std::string>{"flr"},
                   .sound = {"card1/pcmC1D3p", "card1/controlC1"}};
  fx.add_device(gpu).add_device(audio);
  fx.write_file("/dev/dri/by-path/.keep", "");
  std::filesystem::remove(fx.dir() + "/dev/dri/by-path/.keep");
  std::filesystem::create_symlink("../card0", fx.dir() + "/dev/dri/by-path/pci-0000:01:00.0-card");
}

void Fixture::gpu_on_root_bus(Fixture& fx) {
  fx.add_driver("vfio-pci", "vfio_pci").add_driver("amdgpu", "amdgpu");
  FakeDevice gpu{.bdf = "0000:00:02.0",
                 .vendor = 0x1002,
                 .device = 0x73bf,
                 .class_code = 0x030000,
                 .driver = "amdgpu",
                 .group = 2,
                 .boot_vga = true,
                 .reset_methods = std::vector<std::string>{"flr"},
                 .drm = {"card0"}};
  fx.add_device(gpu);
}

void Fixture::group_with_unrelated(Fixture& fx) {
  gpu_with_audio(fx);
  fx.add_driver("xhci_hcd", "xhci_pci").add_driver("e1000e", "e1000e");
  fx.add_device(FakeDevice{.bdf = "0000:01:00.2",
                           .vendor = 0x10de,
                           .device = 0x1ada,
                           .class_code = 0x0c0330,
                           .parent = "0000:00:01.0",
                           .driver = "xhci_hcd",
                           .group = 1});
  fx.add_bridge("0000:00:01.1");
  fx.add_device(FakeDevice{.bdf = "0000:02:00.0",
                           .vendor = 0x8086,
                           .device = 0x10d3,
                           .class_code = 0x020000,
                           .parent = "0000:00:01.1",
                           .driver = "e1000e",
                           .group = 1});
}

void Fixture::boot_console(Fixture& fx, const std::string& firmware) {
  gpu_with_audio(fx);
  fx.set_active_vt(1);
  const std::string gpu = "0000:01:00.0";
  if (firmware == "none") {
    fx.add_vtconsole(0, "(S) VGA+", true);
    return;
  }
  fx.add_vtconsole(0, "(S) dummy device", false).add_vtconsole(1, "(M) frame buffer device", true);
  // The GPU's BAR with the firmware framebuffer's region nested in it.
  auto iomem = [&](const std::string& name) {
    fx.set_iomem(
        "00000000-00000000 : Reserved\n00000000-00000000 : PCI Bus 0000:00\n"
        "  00000000-00000000 : PCI Bus 0000:01\n    00000000-00000000 : 0000:01:00.0\n"
        "      00000000-00000000 : " +
        name +
        "\n    00000000-00000000 : 0000:01:00.1\n"
        "      00000000-00000000 : ICH HD audio\n00000000-00000000 : Local APIC\n");
  };
  if (firmware == "efifb") {
    fx.add_firmware_fb("efi-framebuffer.0", "efi-framebuffer", 0, "EFI VGA");
    iomem("efifb");
  } else if (firmware == "vesafb") {
    fx.add_firmware_fb("vesa-framebuffer.0", "vesa-framebuffer", 0, "VESA VGA");
    iomem("vesafb");
  } else if (firmware == "simpledrm") {
    fx.add_firmware_fb("simple-framebuffer.0", "simple-framebuffer", 0, "simpledrmdrmfb", gpu);
    iomem("BOOTFB");
  } else if (firmware == "drm") {
    fx.add_framebuffer(0, "nvidiadrmfb", gpu);
    iomem("nvidia");
  } else {
    throw std::invalid_argument("boot_console: unknown firmware '" + firmware + "'");
  }
}

void Fixture::many_devices(Fixture& fx, int n) {
  fx.add_driver("vfio-pci", "vfio_pci")
      .add_driver("nvidia", "nvidia")
      .add_driver("snd_hda_intel", "snd_hda_intel");
  // N devices in all: root port + GPU + HDMI audio per slot, the rest on the root bus.
  int sets = n / 3;
  for (int i = 0; i < sets; ++i) {
    char port[32], gpu[32], audio[32];
    std::snprintf(port, sizeof port, "0000:00:%02x.%d", 1 + i / 8, i % 8);
    std::snprintf(gpu, sizeof gpu, "0000:%02x:00.0", i + 1);
    std::snprintf(audio, sizeof audio, "0000:%02x:00.1", i + 1);
    fx.add_bridge(port);
    fx.add_device(FakeDevice{.bdf = gpu,
                             .class_code = 0x030000,
                             .parent = port,
                             .driver = "nvidia",
                             .group = i + 10,
                             .boot_vga = (i == 0)});
    fx.add_device(FakeDevice{.bdf = audio,
                             .device = 0x228b,
                             .class_code = 0x040300,
                             .parent = port,
                             .driver = "snd_hda_intel",
                             .group = i + 10});
  }
  for (int i = 3 * sets; i < n; ++i) {
    char bdf[32];
    std::snprintf(bdf, sizeof bdf, "0000:00:1f.%d", i - 3 * sets);
    fx.add_device(
        FakeDevice{.bdf = bdf, .vendor = 0x8086, .device = 0x7a23, .class_code = 0x0c0500});
  }
}

// ---------------------------------------------------------------- DRM section
Fixture& Fixture::add_drm_card(const FakeDrmCard& card) {
  drm_cards_.push_back(card);
  auto& dev = devices_.at(card.bdf);
  const std::string name = "card" + std::to_string(card.minor);
  if (std::find(dev.drm.begin(), dev.drm.end(), name) == dev.drm.end()) dev.drm.push_back(name);
  if (card.render) dev.drm.push_back("renderD" + std::to_string(*card.render));
  if (driver_of(card.bdf) == dev.native_driver) drm_create(card.bdf);
  return *this;
}

// The card's kernel objects, as the driver creates them on probe.
void Fixture::drm_create(const std::string& bdf) {
  for (const auto& card : drm_cards_) {
    if (card.bdf != bdf) continue;
    const std::string name = "card" + std::to_string(card.minor);
    const std::string parent = dir_ + dev_dir(bdf) + (card.under_virtio ? "/virtio0" : "");
    const std::string real = parent + "/drm/" + name;
    const std::string cls = dir_ + "/sys/class/drm/";
    put(real + "/dev", "226:" + std::to_string(card.minor) + "\n");
    link(real, cls + name);
    put(dir_ + "/dev/dri/" + name, "");
    for (const auto& c : card.connectors) {
      const std::string k = real + "/" + name + "-" + c.name;
      put(k + "/status", c.status + "\n");
      put(k + "/enabled", c.enabled + "\n");
      put(k + "/dpms", c.dpms + "\n");
      std::string modes;
      for (int i = 0; i < c.modes; ++i) modes += std::to_string(1920 - 64 * i) + "x1080\n";
      put(k + "/modes", modes);
      link(k, cls + name + "-" + c.name);
    }
    if (card.render) {
      const std::string r = "renderD" + std::to_string(*card.render);
      put(parent + "/drm/" + r + "/dev", "226:" + std::to_string(*card.render) + "\n");
      link(parent + "/drm/" + r, cls + r);
      put(dir_ + "/dev/dri/" + r, "");
    }
    if (card.by_path)
      link(dir_ + "/dev/dri/" + name, dir_ + "/dev/dri/by-path/pci-" + bdf + "-card");
    const std::string dbg = dir_ + "/sys/kernel/debug/dri/" + std::to_string(card.minor);
    put(dbg + "/name", card.driver_name + " dev=" + bdf + " unique=" + bdf + "\n");
    std::string clients = "             command   pid dev master a   uid      magic\n";
    if (card.master) clients += "  " + *card.master + "  1234   0   y    y     0          0\n";
    put(dbg + "/clients", clients);
    if (card.fb) {
      const std::string g = dir_ + dev_dir(bdf) + "/graphics/fb" + std::to_string(*card.fb);
      put(g + "/name", card.driver_name + "drmfb\n");
      link(dir_ + dev_dir(bdf), g + "/device");
      link(g, dir_ + "/sys/class/graphics/fb" + std::to_string(*card.fb));
    }
  }
}

// "detect": the connector keeps its status unless on_detect queued another.
Status Fixture::drm_detect(const std::string& path) {
  const std::string conn = path.substr(std::string("/sys/class/drm/").size(),
                                       path.size() - std::string("/sys/class/drm/").size() - 7);
  auto it = detect_.find(conn);
  if (it == detect_.end()) return {};
  const std::string real = dir_ + "/sys/class/drm/" + conn;
  put(real + "/status", it->second.first + "\n");
  std::string modes;
  for (int i = 0; i < it->second.second; ++i) modes += std::to_string(1920 - 64 * i) + "x1080\n";
  put(real + "/modes", modes);
  return {};
}

Fixture& Fixture::add_fbcon(bool bound) {
  add_vtconsole(0, "(S) dummy device", !bound);
  add_vtconsole(1, "(M) frame buffer device", bound);
  put(dir_ + "/sys/class/tty/tty0/active", "tty1\n");
  return *this;
}

}  // namespace pt::test
