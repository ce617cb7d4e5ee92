// The udev side of pt.conf: the rules file pt-bind udev-rules writes and the
// properties pt-bind udev-match gives the packaged rules. Kept apart from
// boot.cpp's sysfs work as pure functions of the parsed configuration, so the
// conf fuzzer (tests/fuzz) can check every rule any accepted pt.conf yields.
#pragma once

#include <cstdint>
#include <string>

#include "pt/conf_file.hpp"

namespace pt::boot {

// The rules file for /etc/udev/rules.d/ (pt-bind(8), pt.conf(5)). Every
// value in it comes from the validated configuration, never from a device.
std::string udev_rules(const Conf& conf, const std::string& systemd_unit = "pt-recover@");

// The udev properties of the function ADDR for the packaged rules' generic
// match (IMPORT{program}), one KEY=VALUE per line; empty when pt.conf does
// not name it. The ID guard of pt.conf applies with VENDOR and DEVICE.
std::string udev_match(const Conf& conf, const PciAddress& addr, uint16_t vendor, uint16_t device);

}  // namespace pt::boot
