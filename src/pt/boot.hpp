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

// The moves that put every function of every `boot = "vfio"` device on
// vfio-pci through driver_override. A device whose configured ID does not
// match the card at its BDF is left alone and named in NOTES, as is one that
// is absent. Each claim is journaled as made at boot: such a function has no
// host driver to go back to, so attach lets the kernel choose one, and the
// companions come back with the named function.
Result<bind::Plan> plan_boot(const Context& ctx, const Conf& conf, const Journal& journal,
                             bool force, std::vector<std::string>& skipped);

}  // namespace pt::boot
