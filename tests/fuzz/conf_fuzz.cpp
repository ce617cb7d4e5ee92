// libFuzzer target for the pt.conf parser and the udev rules made from it.
// Properties, for any bytes given as pt.conf:
//  - no crash, uncaught exception or sanitizer report;
//  - parsing is deterministic;
//  - an accepted configuration written back as TOML parses to the same
//    devices (round trip), so what pt accepted is what the file says;
//  - no udev rule is injected: pt-bind udev-rules yields exactly the rule
//    lines the devices call for, every other line a comment or blank, each
//    rule made only of the keys pt writes with values from a closed alphabet
//    (so no RUN, PROGRAM or IMPORT); and pt-bind udev-match yields exactly
//    its PT_DEVICE/PT_BOOT/PT_RECOVER lines;
//  - a drm-wait timeout pt accepts is one the tools can take: a finite
//    number of seconds whose milliseconds fit the int64_t that
//    open_system's conversion makes of them (a larger double is undefined
//    behaviour there, before any clamp).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "pt/boot_udev.hpp"
#include "pt/conf_file.hpp"

namespace {

constexpr const char* kPath = "/etc/pt/pt.conf";

void check(bool ok, const char* what, const std::string& detail = {}) {
  if (ok) return;
  std::fprintf(stderr, "property violated: %s\n%s\n", what, detail.c_str());
  std::abort();
}

std::vector<std::string_view> split(std::string_view s, std::string_view ends) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    auto end = s.find_first_of(ends);
    out.push_back(s.substr(0, end));
    s = end == std::string_view::npos ? std::string_view() : s.substr(end + 1);
  }
  return out;
}

// Lines as udev reads them: systemd's read_line() ends a rules file's line
// at "\n", "\r" or NUL, and IMPORT{program} splits a program's output at
// "\n" and "\r" (a NUL ends it), so a name holding any of them starts a
// line of its own.
std::vector<std::string_view> udev_lines_of(std::string_view s) {
  return split(s, std::string_view("\n\r\0", 3));
}

std::string hex4(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", v);
  return buf;
}

// A TOML basic string: every key and string value is written quoted, with
// each control character, quote and backslash escaped. (toml++'s formatter
// writes a key holding a newline as a literal string, which TOML forbids.)
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

std::string number(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // "15" comes out as a TOML integer, which timeout takes too.
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

// The configuration as pt.conf text: the serializer the parser lacks.
std::string to_toml(const pt::Conf& conf) {
  std::string out;
  for (const auto& d : conf.devices) {
    const std::string table = "device." + quoted(d.name);
    out += "[" + table + "]\n";
    out += "bdf = " + quoted(d.bdf.str()) + "\n";
    if (d.vendor && d.device)
      out += "id = " + quoted(hex4(*d.vendor) + ":" + hex4(*d.device)) + "\n";
    if (d.boot != pt::BootAction::none) out += "boot = " + quoted(pt::to_string(d.boot)) + "\n";
    if (!d.companions.empty()) {
      out += "companions = [";
      for (const auto& c : d.companions) out += quoted(c.str()) + ", ";
      out += "]\n";
    }
    if (d.recover.empty()) continue;
    out += "recover = [";
    for (const auto& s : d.recover) out += quoted(s.name) + ", ";
    out += "]\n";
    for (const auto& s : d.recover) {
      if (s.options.empty()) continue;
      out += "[" + table + ".step." + quoted(s.name) + "]\n";
      for (const auto& [k, v] : s.options) {
        out += quoted(k) + " = ";
        if (k == "timeout")
          out += number(std::strtod(v.c_str(), nullptr));
        else if (k == "force")
          out += v;
        else
          out += quoted(v);
        out += "\n";
      }
    }
  }
  return out;
}

std::vector<pt::DeviceConf> by_name_without_lines(std::vector<pt::DeviceConf> devices) {
  for (auto& d : devices) d.line = 0;
  std::sort(devices.begin(), devices.end(),
            [](const pt::DeviceConf& a, const pt::DeviceConf& b) { return a.name < b.name; });
  return devices;
}

bool value_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ':' ||
         c == '.' || c == '@' || c == '-' || c == '_';
}

// One rule line as udev reads it: KEY OP "VALUE" pairs separated by commas.
// Returns the pairs as "KEY OP", or an empty list when the line is not one.
std::vector<std::string> rule_keys(std::string_view line) {
  static const std::vector<std::string> allowed = {
      "ACTION==",       "SUBSYSTEM==",    "KERNEL==",
      "ATTR{vendor}==", "ATTR{device}==", "ATTR{driver_override}=",
      "DRIVER!=",       "TAG+=",          "ENV{SYSTEMD_WANTS}+="};
  std::vector<std::string> keys;
  size_t i = 0;
  while (i < line.size()) {
    const auto quote = line.find('"', i);
    if (quote == std::string_view::npos) return {};
    const std::string key(line.substr(i, quote - i));
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) return {};
    const auto close = line.find('"', quote + 1);
    if (close == std::string_view::npos || close == quote + 1) return {};
    for (char c : line.substr(quote + 1, close - quote - 1))
      if (!value_char(c)) return {};
    keys.push_back(key);
    i = close + 1;
    if (i == line.size()) break;
    if (line.substr(i, 2) != ", ") return {};
    i += 2;
  }
  return keys;
}

void check_udev_rules(const pt::Conf& conf) {
  const std::string rules = pt::boot::udev_rules(conf);
  size_t want_rules = 0;
  for (const auto& d : conf.devices) {
    if (d.boot == pt::BootAction::vfio) want_rules += 1 + d.companions.size();
    if (!d.recover.empty()) want_rules += 1;
  }
  // Four lines of header, then a blank line and a comment for each device.
  const size_t want_lines = 4 + 2 * conf.devices.size() + want_rules;
  check(!rules.empty() && rules.back() == '\n', "the rules file does not end in a newline", rules);
  const auto lines = udev_lines_of(rules);
  check(lines.size() == want_lines, "the rules file has more or fewer lines than pt writes", rules);
  size_t got_rules = 0;
  for (auto line : lines) {
    if (line.empty() || line.front() == '#') continue;
    const auto keys = rule_keys(line);
    check(!keys.empty(), "a line that is neither a comment nor a rule pt writes",
          std::string(line));
    const bool add = keys.front() == "ACTION==" && line.starts_with("ACTION==\"add\"");
    const bool bind = keys.front() == "ACTION==" && line.starts_with("ACTION==\"bind\"");
    check(add || bind, "a rule for another action", std::string(line));
    ++got_rules;
  }
  check(got_rules == want_rules, "more or fewer rules than the devices call for", rules);
}

void check_timeouts(const pt::Conf& conf) {
  for (const auto& d : conf.devices)
    for (const auto& step : d.recover)
      if (auto t = step.options.find("timeout"); t != step.options.end()) {
        const double seconds = std::strtod(t->second.c_str(), nullptr);
        check(std::isfinite(seconds) && seconds > 0 && seconds * 1000.0 < 9.2e18,
              "a timeout the tools cannot hold in milliseconds", t->second);
      }
}

void check_udev_match(const pt::Conf& conf) {
  for (const auto& d : conf.devices) {
    std::vector<pt::PciAddress> functions{d.bdf};
    functions.insert(functions.end(), d.companions.begin(), d.companions.end());
    for (const auto& f : functions) {
      const std::string out =
          pt::boot::udev_match(conf, f, d.vendor.value_or(0), d.device.value_or(0));
      std::vector<std::string> want = {"PT_DEVICE=" + d.name};
      if (d.boot == pt::BootAction::vfio) want.push_back("PT_BOOT=vfio");
      if (f == d.bdf && !d.recover.empty()) want.push_back("PT_RECOVER=1");
      const auto lines = udev_lines_of(out);
      check(std::vector<std::string>(lines.begin(), lines.end()) == want,
            "udev-match gives other lines than PT_DEVICE, PT_BOOT, PT_RECOVER", out);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto conf = pt::parse_conf(text, kPath);
  auto twice = pt::parse_conf(text, kPath);
  check(conf.has_value() == twice.has_value(), "parsing the same text twice differs");
  if (!conf) {
    check(conf.error().exit == pt::Exit::usage, "a refused pt.conf is not a usage error");
    check(conf.error().subject == twice.error().subject &&
              conf.error().message == twice.error().message,
          "the same text is refused twice with different errors");
    return 0;
  }
  check(conf->devices == twice->devices, "parsing the same text twice differs");

  check_udev_rules(*conf);
  check_udev_match(*conf);
  check_timeouts(*conf);

  const std::string written = to_toml(*conf);
  auto again = pt::parse_conf(written, kPath);
  check(again.has_value(), "pt.conf written back from an accepted one is refused",
        written + "\n" + (again ? std::string() : again.error().describe()));
  check(by_name_without_lines(again->devices) == by_name_without_lines(conf->devices),
        "pt.conf written back parses to other devices", written);
  return 0;
}
