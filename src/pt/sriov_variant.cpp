#include "pt/sriov_variant.hpp"

#include "pt/try.hpp"

namespace pt::sriov {

namespace {

// Module names as kmod normalises them: '-' and '_' are the same.
std::string normalised(std::string s) {
  for (auto& c : s)
    if (c == '-') c = '_';
  return s;
}

}  // namespace

std::string variant_alias(const std::string& modalias) {
  std::string m = modalias;
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  if (!m.starts_with("pci:v") || m.find_first_of(" \t\n") != std::string::npos) return "";
  return "vfio_pci:" + m.substr(4);
}

VfDriver choose_driver(const Root& root, ModuleLoader* modules, const std::string& to,
                       const std::string& modalias) {
  if (to != kAuto) return VfDriver{to, "", "--to " + to, ""};
  const std::string alias = variant_alias(modalias);
  if (alias.empty())
    return VfDriver{"vfio-pci", "", "no PCI modalias to look up a variant driver by", ""};
  if (!modules) return VfDriver{"vfio-pci", "", "no module index to look up " + alias + " in", ""};
  auto found = modules->lookup_alias(alias);
  if (!found)
    return VfDriver{"vfio-pci", "", "no variant driver looked up for " + alias,
                    "cannot look up the variant driver for " + alias + ": " +
                        found.error().describe() + "; using vfio-pci"};
  std::vector<std::string> variants;
  for (const auto& m : *found)
    if (normalised(m) != "vfio_pci") variants.push_back(normalised(m));
  if (variants.empty())
    return VfDriver{"vfio-pci", "", "modules.alias: no variant driver for " + alias, ""};
  if (variants.size() > 1) {
    std::string names;
    for (const auto& m : variants) names += (names.empty() ? "" : ", ") + m;
    return VfDriver{"vfio-pci", "", "modules.alias: " + alias + " -> " + names,
                    "modules.alias names " + std::to_string(variants.size()) +
                        " variant drivers for " + alias + " (" + names +
                        "); using vfio-pci (name one with --to)"};
  }
  VfDriver v{pci_driver_of_module(root, variants.front()), variants.front(),
             "modules.alias: " + alias + " -> " + variants.front(), ""};
  return v;
}

Status load_driver(const Root& root, ModuleLoader& modules, VfDriver& choice) {
  if (choice.module.empty()) return {};
  if (choice.driver.empty()) {
    PT_TRY(modules.load_module(choice.module));
    choice.driver = pci_driver_of_module(root, choice.module);
  }
  if (choice.driver.empty())
    return fail(choice.module,
                "the VFIO variant module modules.alias names registers no PCI driver (no "
                "/sys/module/" +
                    choice.module + "/drivers/pci:*); bind the VFs to vfio-pci with --to vfio-pci",
                ENOENT);
  return {};
}

}  // namespace pt::sriov
