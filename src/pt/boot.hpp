// pt.conf applied: the boot-time claim (pt-bind boot). The udev rules that
// pt-bind udev-rules generates are boot_udev.hpp's, the recovery steps
// recover.hpp's.
#pragma once

#include <string>
#include <vector>

#include "pt/bind.hpp"
#include "pt/boot_udev.hpp"
#include "pt/conf_file.hpp"
#include "pt/context.hpp"
#include "pt/journal.hpp"

namespace pt::boot {

// Refuses (exit 2) a companion that cannot move with its device: one that
// is a bridge (class 06xx), or that shares neither the device's slot nor its
// IOMMU group, as the tree under ROOT shows them. A device or companion that
// is not present is not judged (boot skips it). Every command that applies
// pt.conf (boot, boot-check, udev-rules, udev-match) checks through here.
Status check_companions(const Root& root, const Conf& conf);

// The moves that put every function of every `boot = "vfio"` device on
// vfio-pci through driver_override. A device whose configured ID does not
// match the card at its BDF is left alone and named in NOTES, as is one that
// is absent. Each claim is journaled as made at boot: such a function has no
// host driver to go back to, so attach lets the kernel choose one, and the
// companions come back with the named function.
Result<bind::Plan> plan_boot(const Context& ctx, const Conf& conf, const Journal& journal,
                             bool force, std::vector<std::string>& skipped);

}  // namespace pt::boot
