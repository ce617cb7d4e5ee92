#include "pt/power.hpp"

#include <algorithm>
#include <cerrno>

#include "pt/render.hpp"
#include "pt/sysfs.hpp"

namespace pt::power {

Attrs read(const Root& root, const Device& device) {
  Attrs a;
  a.control = read_attr(root, device.sysfs(kControl)).value_or("");
  a.runtime_status = read_attr(root, device.sysfs("power/runtime_status")).value_or("");
  if (auto d = read_attr(root, device.sysfs(kD3cold)); d && (*d == "0" || *d == "1"))
    a.d3cold_allowed = *d == "1";
  return a;
}

std::optional<bool> vfio_disable_idle_d3(const Root& root) {
  auto v = read_attr(root, kDisableIdleD3);
  if (!v) return std::nullopt;
  // A bool module parameter reads Y or N.
  if (*v == "Y" || *v == "1") return true;
  if (*v == "N" || *v == "0") return false;
  return std::nullopt;
}

std::vector<Setting> settings(const PowerPolicy& policy) {
  std::vector<Setting> out;
  if (policy.control) out.push_back({kControl, *policy.control});
  if (policy.d3cold_allowed) out.push_back({kD3cold, *policy.d3cold_allowed ? "1" : "0"});
  return out;
}

Result<std::string> current(const Root& root, const Device& device, const std::string& attr) {
  const std::string path = device.sysfs(attr);
  if (auto v = read_attr(root, path)) return *v;
  return fail(path,
              "pt.conf sets " + std::string(attr == kControl ? "power_control" : "d3cold_allowed") +
                  " for " + device.addr.str() + ", but the kernel has no such attribute" +
                  (attr == kControl ? " (a kernel without CONFIG_PM)" : "") +
                  "; remove the key from pt.conf",
              ENOENT);
}

WriteKind write_kind(const std::string& attr) {
  return attr == kControl ? WriteKind::blocking : WriteKind::attribute;
}

Status write_checked(Context& ctx, const std::string& path, const std::string& value,
                     WriteKind kind) {
  if (auto r = ctx.writer->write(path, value, kind); !r) return r;
  auto got = read_attr(ctx.root, path);
  if (got && *got == value) return {};
  return fail(path,
              "wrote " + show_value(value) + " but the kernel reads back " +
                  (got ? show_value(*got) : std::string("nothing")) +
                  "; the kernel did not take the power setting (check dmesg, or remove the key "
                  "from pt.conf)",
              EIO);
}

Result<std::optional<PowerPolicy>> policy_for(const Conf& conf, const Device& device) {
  const DeviceConf* dc = conf.find(device.addr);
  if (!dc || dc->power.empty()) return std::optional<PowerPolicy>();
  if (dc->bdf == device.addr && dc->vendor && dc->device &&
      (*dc->vendor != device.vendor || *dc->device != device.device))
    return usage_error(conf.path + ":" + std::to_string(dc->line),
                       "[device." + dc->name + "] names " + device.addr.str() + " with id " +
                           hex4(*dc->vendor) + ":" + hex4(*dc->device) +
                           ", but that function is " + id_string(device) +
                           "; its power policy is not applied. Fix bdf or id in pt.conf");
  return std::optional<PowerPolicy>(dc->power);
}

std::string describe(const PowerPolicy& policy) {
  std::string out;
  if (policy.control) out = "power_control = \"" + *policy.control + "\"";
  if (policy.d3cold_allowed)
    out += std::string(out.empty() ? "" : ", ") + "d3cold_allowed = " +
           (*policy.d3cold_allowed ? "true" : "false");
  return out;
}

namespace {

// METHODS available and not excluded, in the kernel's order, as pt-reset names them.
std::vector<const reset::MethodStatus*> usable(const std::vector<reset::MethodStatus>& methods,
                                               std::initializer_list<const char*> excluded) {
  std::vector<const reset::MethodStatus*> out;
  for (const auto& m : methods) {
    bool skip = false;
    for (const char* e : excluded) skip = skip || m.name == e;
    if (!skip && m.available) out.push_back(&m);
  }
  return out;
}

std::string offer(const Device& device, const std::vector<const reset::MethodStatus*>& ok,
                  const std::string& none) {
  if (ok.empty()) return none;
  std::string out = "try 'pt-reset --method " + ok.front()->name + " " + device.addr.str() + "' (" +
                    ok.front()->reason + ")";
  if (ok.size() > 1) {
    std::string rest;
    for (size_t i = 1; i < ok.size(); ++i) rest += (rest.empty() ? "" : ", ") + ok[i]->name;
    out += "; also possible: " + rest;
  }
  return out;
}

}  // namespace

std::optional<std::string> stuck_advice(const Device& device, const ConfigSpace& config,
                                        const Attrs& attrs, const std::string& power_state,
                                        const std::vector<reset::MethodStatus>& methods) {
  if (config.size() == 0) return std::nullopt;  // nothing read: not a verdict
  if (!config.present()) {
    // The function's own config space is what FLR, AF FLR, PM reset and a
    // quirk write to; nothing written there arrives. What is left acts from
    // outside: the bridge above (bus), the slot's power (slot), ACPI, or
    // removing and scanning again.
    std::string out =
        "config space reads all ones (vendor 0xffff): " + device.addr.str() +
        " is in D3cold, powered off or gone, and FLR and PM reset cannot reach it";
    if (attrs.runtime_status == "suspended")
      out += "; runtime PM has it suspended: write \"on\" to " + device.sysfs(kControl) +
             " to wake it first";
    // Removing and scanning again finds it only if its link comes back: the
    // last thing to try, not a reset that powers it.
    auto ok = usable(methods, {"device_specific", "flr", "af_flr", "pm", "rescan"});
    const bool rescan = std::any_of(methods.begin(), methods.end(),
                                    [](const auto& m) { return m.name == "rescan" && m.available; });
    out += "; " + offer(device, ok,
                        std::string("no reset reaches it from outside (") +
                            (device.parent ? "the bus below " + device.parent->str() +
                                                 " is shared and there is no hotplug slot"
                                           : "it sits on a root bus, with no bridge above it, "
                                             "and there is no hotplug slot") +
                            ")");
    for (const auto* m : ok)
      if (m->name == "slot" && m->reason.starts_with("hotplug slot "))
        out += "; the slot's power file power-cycles it: write 0, then 1, to /sys/bus/pci/slots/" +
               m->reason.substr(13) + "/power";
    if (rescan)
      out += "; 'pt-reset --method rescan " + device.addr.str() +
             "' finds it again only if its link comes back";
    if (ok.empty()) out += "; otherwise power the machine off and on";
    return out;
  }
  if (config.caps_unreadable()) return std::nullopt;
  auto pm = config.power_state();
  // The kernel caches the state it set; a function that reports D3hot while
  // the kernel set D0 went there behind its back (a guest's write the kernel
  // did not see, firmware, a failed resume). Without power_state (older
  // kernels) a function a host driver holds awake stands in for D0.
  const bool kernel_d0 =
      power_state == "D0" ||
      (power_state.empty() && !device.driver.empty() && !is_parking_driver(device.driver) &&
       attrs.runtime_status == "active");
  if (!pm || *pm != 3 || !kernel_d0) return std::nullopt;
  return "the PM capability reports D3hot while the kernel has " + device.addr.str() +
         " in D0: the function will not answer memory or I/O; " +
         offer(device, usable(methods, {}),
               "no reset is available for it; writing D0 to PMCSR (setpci) or a reboot are left");
}

std::optional<std::string> stuck_advice(const Root& root, const Device& device,
                                        const std::vector<Device>& all) {
  // Runtime PM first: sysfs's config read wakes a suspended function.
  const Attrs attrs = read(root, device);
  auto cfg = load_config(root, device.addr, 256);
  if (!cfg) return std::nullopt;
  const auto methods =
      reset::detect(root, device, *cfg, all, reset::kernel_has_reset_method(root, all)).methods;
  return stuck_advice(device, *cfg, attrs,
                      read_attr(root, device.sysfs("power_state")).value_or(""), methods);
}

nlohmann::json show_json(const Root& root, const Device& device, const std::vector<Device>& all) {
  using nlohmann::json;
  const Attrs a = read(root, device);
  auto idle = vfio_disable_idle_d3(root);
  auto stuck = stuck_advice(root, device, all);
  return {{"control", render::nullable(a.control)},
          {"runtime_status", render::nullable(a.runtime_status)},
          {"d3cold_allowed", a.d3cold_allowed ? json(*a.d3cold_allowed) : json(nullptr)},
          {"vfio_disable_idle_d3",
           device.driver == "vfio-pci" && idle ? json(*idle) : json(nullptr)},
          {"stuck", stuck ? json(*stuck) : json(nullptr)}};
}

std::string show_text(const nlohmann::json& p) {
  auto text = [](const nlohmann::json& v) {
    return v.is_null() ? std::string("-") : v.is_boolean() ? (v.get<bool>() ? "1" : "0") : v.get<std::string>();
  };
  std::string out = "  runtime pm:       control " + text(p["control"]) + ", " + text(p["runtime_status"]) +
                    "; d3cold_allowed " + text(p["d3cold_allowed"]);
  if (!p["vfio_disable_idle_d3"].is_null())
    out += "; vfio-pci disable_idle_d3 " + text(p["vfio_disable_idle_d3"]);
  out += "\n";
  if (!p["stuck"].is_null()) out += "  warning: " + p["stuck"].get<std::string>() + "\n";
  return out;
}

}  // namespace pt::power
