#include "pt/boot.hpp"

#include <cstdio>

#include "pt/pci.hpp"
#include "pt/try.hpp"

namespace pt::boot {

namespace {

std::string hex4(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", v);
  return buf;
}

}  // namespace

Result<bind::Plan> plan_boot(const Context& ctx, const Conf& conf, const Journal& journal,
                             bool force, std::vector<std::string>& skipped) {
  auto all = PT_TRY(scan_devices(ctx.root));
  std::vector<DeviceSpec> specs;
  for (const auto& d : conf.devices) {
    if (d.boot != BootAction::vfio) continue;
    const Device* main = nullptr;
    for (const auto& dev : all)
      if (dev.addr == d.bdf) main = &dev;
    if (!main) {
      skipped.push_back(d.bdf.str() + " ([device." + d.name + "]) is not present; not claimed");
      continue;
    }
    if ((d.vendor && *d.vendor != main->vendor) || (d.device && *d.device != main->device)) {
      skipped.push_back(d.bdf.str() + " ([device." + d.name + "]) is " + hex4(main->vendor) + ":" +
                        hex4(main->device) + ", not the configured " +
                        hex4(d.vendor.value_or(main->vendor)) + ":" +
                        hex4(d.device.value_or(main->device)) +
                        "; not claimed (the card moved? fix bdf or id)");
      continue;
    }
    std::vector<PciAddress> functions{d.bdf};
    functions.insert(functions.end(), d.companions.begin(), d.companions.end());
    for (const auto& f : functions) {
      bool present = false;
      for (const auto& dev : all) present = present || dev.addr == f;
      if (!present) {
        skipped.push_back(f.str() + " ([device." + d.name + "]) is not present; not claimed");
        continue;
      }
      specs.push_back(DeviceSpec{f.domain, f.bus, f.dev, f.func, f.str()});
    }
  }
  if (specs.empty()) {
    bind::Plan empty;
    empty.op = "boot";
    return empty;
  }
  auto plan = bind::plan_set(ctx, specs, "vfio-pci", force, journal);
  if (!plan) return plan;
  plan->op = "boot";
  for (auto& m : plan->moves) {
    if (m.record) {
      m.record->driver.clear();
      m.record->module.clear();
      m.record->boot = true;
    }
  }
  return plan;
}

}  // namespace pt::boot
