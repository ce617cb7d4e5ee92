#include "pt/target.hpp"

#include <cstdio>
#include <set>

#include "pt/render.hpp"
#include "pt/sysfs.hpp"
#include "pt/try.hpp"
#include "pt/vgaarb.hpp"

namespace pt::target {

namespace {

std::unexpected<Error> missing(const DeviceSpec& spec, const Rules& rules) {
  return no_such_device("'" + spec.input + "'", rules.list_hint);
}

}  // namespace

Result<std::vector<Device>> resolve(const std::vector<Device>& all, const DeviceSpec& spec,
                                    const Rules& rules) {
  std::vector<const Device*> matched;
  for (const auto& d : all)
    if (spec.matches(d.addr)) matched.push_back(&d);
  if (matched.empty()) return missing(spec, rules);
  if (!spec.func && rules.slot == Slot::refuse)
    return usage_error("'" + spec.input + "'",
                       "names a slot; " + rules.slot_refusal + spec.input + ".0");
  if (!spec.func && rules.slot == Slot::function0) {
    std::erase_if(matched, [](const Device* d) { return d->addr.func != 0; });
    if (matched.empty()) return missing(spec, rules);
  }
  if (rules.endpoints_only) {
    std::vector<const Device*> endpoints;
    for (auto* d : matched)
      if (!d->is_bridge()) endpoints.push_back(d);
    if (endpoints.empty())
      return fail(
          matched.front()->addr.str(),
          matched.front()->has_secondary_bus()
              ? "is a PCI bridge; pt works on endpoint functions only: name the device below it"
              : "is a bridge (class " + render::class_hex(matched.front()->class_id()) +
                    "), which pt never unbinds; pt works on endpoint functions only",
          EINVAL);
    matched = std::move(endpoints);
  }
  if (rules.kind) {
    std::vector<const Device*> kind;
    for (auto* d : matched)
      if (rules.kind(*d)) kind.push_back(d);
    if (rules.slot == Slot::single && kind.size() > 1)
      return usage_error("'" + spec.input + "'",
                         "names " + std::to_string(kind.size()) + " " + rules.kind_name +
                             " functions; name one function, such as " + kind.front()->addr.str());
    if (kind.empty() || (rules.slot != Slot::single && kind.size() != matched.size())) {
      const Device* refused = matched.front();
      for (auto* d : matched)
        if (!rules.kind(*d)) {
          refused = d;
          break;
        }
      if (rules.not_kind) return std::unexpected(rules.not_kind(*refused, spec));
      return fail(refused->addr.str(), "is not a function this tool works on", EINVAL);
    }
    matched = std::move(kind);
  }
  std::vector<Device> out;
  for (auto* d : matched) out.push_back(*d);
  return out;
}

Result<std::vector<Device>> resolve(const std::vector<Device>& all,
                                    const std::vector<DeviceSpec>& specs, const Rules& rules) {
  std::vector<Device> out;
  std::set<PciAddress> seen;
  for (const auto& spec : specs)
    for (auto& d : PT_TRY(resolve(all, spec, rules)))
      if (seen.insert(d.addr).second) out.push_back(std::move(d));
  return out;
}

Result<Device> read_one(const Root& root, std::string_view input, const Rules& rules) {
  if (input.empty() && !rules.empty_message.empty())
    return usage_error(rules.empty_subject, rules.empty_message);
  const DeviceSpec spec = PT_TRY(parse_device_spec(input));
  if (!spec.func && rules.slot == Slot::refuse)
    return usage_error("'" + spec.input + "'",
                       "names a slot; " + rules.slot_refusal + spec.input + ".0");
  const PciAddress addr{spec.domain, spec.bus, spec.dev, spec.func.value_or(0)};
  if (!rules.list_hint.empty() && !path_exists(root, "/sys/bus/pci/devices/" + addr.str()))
    return missing(spec, rules);
  Device d = PT_TRY(read_device(root, addr));
  if (rules.kind && !rules.kind(d)) {
    if (rules.not_kind) return std::unexpected(rules.not_kind(d, spec));
    return fail(d.addr.str(), "is not a function this tool works on", EINVAL);
  }
  return d;
}

Result<std::vector<PciAddress>> present(const Root& root, const std::vector<DeviceSpec>& specs,
                                        const Rules& rules) {
  std::vector<PciAddress> there;
  for (const auto& name : list_dir(root, "/sys/bus/pci/devices"))
    if (auto a = parse_sysfs_name(name)) there.push_back(*a);
  std::set<PciAddress> out;
  for (const auto& spec : specs) {
    bool any = false;
    for (const auto& a : there)
      if (spec.matches(a)) any = out.insert(a).second || true;
    if (!any) return missing(spec, rules);
  }
  return std::vector<PciAddress>(out.begin(), out.end());
}

Result<std::vector<DeviceSpec>> parse_all(const std::vector<std::string>& inputs) {
  std::vector<DeviceSpec> specs;
  for (const auto& s : inputs) specs.push_back(PT_TRY(parse_device_spec(s)));
  return specs;
}

const Rules& any() {
  static const Rules r{};
  return r;
}

const Rules& endpoints() {
  static const Rules r{.endpoints_only = true};
  return r;
}

const Rules& vga(bool allow_display) {
  auto make = [](bool display) {
    Rules r;
    r.slot = Slot::single;
    r.kind = [display](const Device& d) { return is_vga_class(d) || (display && d.is_display()); };
    r.kind_name = "VGA";
    r.list_hint = "list VGA devices with 'pt-vgaarb list'";
    r.not_kind = [](const Device& d, const DeviceSpec&) {
      const std::string cls = render::class_hex(d.class_id());
      std::string what = d.is_display() ? "is a display device of class " + cls +
                                              ", which the VGA arbiter does not manage"
                                        : "is not a VGA device (class " + cls + ")";
      return Error{EINVAL, d.addr.str(),
                   what +
                       "; the arbiter manages VGA class 0300 (and 0001) only: name the GPU's VGA "
                       "function (see 'pt-vgaarb list')",
                   Exit::failed};
    };
    return r;
  };
  static const Rules with_display = make(true), vga_only = make(false);
  return allow_display ? with_display : vga_only;
}

const Rules& console_gpu() {
  static const Rules r = [] {
    Rules r;
    r.slot = Slot::refuse;
    r.slot_refusal = "name the GPU function, e.g. ";
    r.empty_subject = "pt-console";
    r.empty_message = "name the GPU, e.g. 01:00.0";
    r.kind = [](const Device& d) { return d.is_display(); };
    r.not_kind = [](const Device& d, const DeviceSpec& spec) {
      return Error{0, "'" + spec.input + "'",
                   d.addr.str() + " is not a display controller (class " +
                       render::class_hex(d.class_id()) +
                       "); pt-console frees the consoles of a GPU (class 03xx)",
                   Exit::usage};
    };
    return r;
  }();
  return r;
}

const Rules& drm_display() {
  static const Rules r = [] {
    Rules r;
    r.slot = Slot::function0;
    r.list_hint = "";
    r.kind = [](const Device& d) { return d.is_display(); };
    r.not_kind = [](const Device& d, const DeviceSpec&) {
      char cls[16];
      std::snprintf(cls, sizeof cls, "0x%06x", d.class_code);
      return Error{0, d.addr.str(),
                   std::string("is not a display device (class ") + cls +
                       (d.is_audio() ? ", audio" : "") +
                       "); pt-drm reads the display function of a GPU, usually function .0",
                   Exit::failed};
    };
    return r;
  }();
  return r;
}

}  // namespace pt::target
