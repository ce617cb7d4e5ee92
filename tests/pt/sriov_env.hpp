// The SR-IOV tests' shared setup (sriov_test, sriov_variant_test): QEMU's
// NVMe controller as a PF, and pt-bind vfs run on a fixture tree.
#pragma once

#include <sstream>
#include <string>

#include "fixture.hpp"
#include "pt/bind_cmd.hpp"

namespace pt::test {

// An NVMe controller that is an SR-IOV PF (as QEMU's nvme with
// sriov_max_vfs): 01:00.0 on nvme behind root port 00:01.0, group 1; its
// VFs come as 01:00.1.. in groups 10.. with modalias
// pci:v00001B36d00000010…bc01sc08i02, and nvme would take them.
inline void nvme_pf(Fixture& fx, uint16_t total = 4) {
  fx.add_bridge("0000:00:01.0");
  fx.add_driver("vfio-pci", "vfio_pci");
  fx.add_device(
      {.bdf = "0000:01:00.0",
       .vendor = 0x1b36,
       .device = 0x0010,
       .class_code = 0x010802,
       .parent = "0000:00:01.0",
       .driver = "nvme",
       .group = 1,
       .caps = {
           .sriov = FakeSriov{
               .total_vfs = total, .vf_device = 0x0010, .vf_driver = "nvme", .vf_group = 10}}});
}

struct VfsRun {
  std::string dev = "01:00.0";
  std::string to = "auto";  // --to
  bool dry_run = false;
  bool json = false;
};

// pt-bind vfs DEV N on FX's tree; OUT gets what it printed.
inline Result<Exit> run_vfs(Fixture& fx, const std::string& n, std::string& out,
                            const VfsRun& how = {}) {
  bind::Options o;
  o.command = "vfs";
  o.devices = {how.dev};
  o.count = n;
  o.vf_to = how.to;
  o.common.dry_run = how.dry_run;
  o.common.json = how.json;
  Context ctx = fx.context(how.dry_run);
  std::ostringstream s;
  auto r = bind::run_in(o, ctx, s);
  out = s.str();
  return r;
}

}  // namespace pt::test
