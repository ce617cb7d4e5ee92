#include "pt/boot.hpp"

#include <cstdio>

#include "pt/pci.hpp"
#include "pt/render.hpp"
#include "pt/try.hpp"

namespace pt::boot {

namespace {

}  // namespace

Status check_companions(const Root& root, const Conf& conf) {
  for (const auto& d : conf.devices) {
    if (d.companions.empty()) continue;
    auto main = read_device(root, d.bdf);
    for (const auto& c : d.companions) {
      auto comp = read_device(root, c);
      if (!comp) continue;
      std::string why;
      if (comp->is_bridge())
        why =
            "is a bridge (class " + render::class_hex(comp->class_id()) + "), which pt never moves";
      else if (main && !c.same_slot(d.bdf) &&
               (!comp->iommu_group || comp->iommu_group != main->iommu_group))
        why = "shares neither the slot nor the IOMMU group of " + d.bdf.str();
      if (why.empty()) continue;
      return usage_error(
          conf.path + ": [device." + d.name + "]",
          "companion " + c.str() + " " + why +
              "; a companion is another function of the device's slot or IOMMU group, such "
              "as its HDMI audio: remove it from companions");
    }
  }
  return {};
}

Result<bind::Plan> plan_boot(const Context& ctx, const Conf& conf, const Journal& journal,
                             bool force, std::vector<std::string>& skipped) {
  auto all = PT_TRY(scan_devices(ctx.root, ScanOptions{.names = false}));
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
