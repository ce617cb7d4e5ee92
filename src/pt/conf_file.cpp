#include "pt/conf_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <set>

#include "pt/context.hpp"
#include "pt/render.hpp"
#include "pt/sysfs.hpp"
#include "pt/trusted_file.hpp"
#include "pt/try.hpp"

namespace pt {

namespace {

// A step's options and the TOML type each must have.
struct StepSpec {
  const char* name;
  std::vector<std::pair<const char*, toml::node_type>> options;
};

const std::vector<StepSpec>& step_specs() {
  static const std::vector<StepSpec> specs = {
      {"reset", {{"method", toml::node_type::string}, {"force", toml::node_type::boolean}}},
      {"attach", {}},
      {"drm-wait", {{"timeout", toml::node_type::floating_point}}},
      {"vgaarb", {}},
      {"console", {}},
      {"drm-check", {}},
  };
  return specs;
}

const StepSpec* find_step(std::string_view name) {
  for (const auto& s : step_specs())
    if (name == s.name) return &s;
  return nullptr;
}

std::string step_names() {
  std::string out;
  for (const auto& s : step_specs()) out += std::string(out.empty() ? "" : ", ") + s.name;
  return out;
}

std::unexpected<Error> at(const std::string& path, const toml::source_region& where,
                          const std::string& message) {
  return usage_error(
      path + ":" + std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column),
      message);
}

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::boolean:
      return "true or false";
    case toml::node_type::floating_point:
    case toml::node_type::integer:
      return "a number";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a value of another type";
  }
}

std::optional<PciAddress> parse_bdf(std::string_view text) {
  auto spec = parse_device_spec(text);
  if (!spec || !spec->func) return std::nullopt;
  return PciAddress{spec->domain, spec->bus, spec->dev, *spec->func};
}

std::optional<uint16_t> parse_hex16(std::string_view s) {
  if (s.empty() || s.size() > 4) return std::nullopt;
  uint16_t v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (d < 0) return std::nullopt;
    v = uint16_t(v * 16 + d);
  }
  return v;
}

// Calls TAKE with each element of the array NODE: its string value (none
// when it is not a string) and where it stands, for the error's position.
template <class Take>
Status each_element(const std::string& path, const toml::node& node, const std::string& not_array,
                    Take take) {
  const toml::array* arr = node.as_array();
  if (!arr) return at(path, node.source(), not_array);
  for (const auto& el : *arr) PT_TRY(take(el.value<std::string>(), el.source()));
  return {};
}

Status parse_step_options(const std::string& path, const std::string& dev, const toml::table& steps,
                          DeviceConf& conf) {
  for (auto&& [key, node] : steps) {
    const std::string step(key.str());
    auto it = std::find_if(conf.recover.begin(), conf.recover.end(),
                           [&](const RecoverStep& s) { return s.name == step; });
    if (!find_step(step))
      return at(
          path, key.source(),
          "unknown step '" + step + "' in [device." + dev + ".step]; steps are " + step_names());
    if (it == conf.recover.end())
      return at(path, key.source(),
                "options for step '" + step + "', which device." + dev +
                    ".recover does not list; add it there or remove the table");
    const toml::table* opts = node.as_table();
    if (!opts)
      return at(path, node.source(), "device." + dev + ".step." + step + " must be a table");
    const StepSpec* spec = find_step(step);
    for (auto&& [okey, oval] : *opts) {
      const std::string name(okey.str());
      auto o = std::find_if(spec->options.begin(), spec->options.end(),
                            [&](const auto& p) { return name == p.first; });
      if (o == spec->options.end()) {
        std::string known;
        for (const auto& p : spec->options)
          known += std::string(known.empty() ? "" : ", ") + p.first;
        return at(path, okey.source(),
                  "unknown option '" + name + "' for step '" + step + "'" +
                      (known.empty() ? "; it takes none" : "; it takes " + known));
      }
      std::string value;
      if (o->second == toml::node_type::floating_point &&
          (oval.is_floating_point() || oval.is_integer())) {
        double d = oval.value<double>().value_or(0);
        // The check --timeout gets, so nan, inf and 1e300 stop here, not at boot.
        if (auto ok = duration(d, step + "." + name, false); !ok)
          return at(path, oval.source(), ok.error().describe());
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", d);  // "15", "2.5": as a person wrote it
        value = buf;
      } else if (o->second == toml::node_type::string && oval.is_string()) {
        value = *oval.value<std::string>();
      } else if (o->second == toml::node_type::boolean && oval.is_boolean()) {
        value = *oval.value<bool>() ? "true" : "false";
      } else {
        return at(path, oval.source(), step + "." + name + " must be " + type_name(o->second));
      }
      if (step == "reset" && name == "method") {
        static const std::set<std::string> methods = {
            "device_specific", "acpi", "flr", "af_flr", "pm", "bus", "slot", "rescan"};
        if (!methods.count(value))
          return at(path, oval.source(),
                    "unknown reset method '" + value +
                        "'; use device_specific, acpi, flr, af_flr, pm, bus, slot or rescan");
      }
      it->options[name] = value;
    }
  }
  return {};
}

// A device's name goes into udev rules (a comment), udev properties
// (PT_DEVICE=NAME, read back by IMPORT{program}) and messages, so it keeps to
// characters that mean nothing in any of them.
bool name_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("_-.:@+()").find(char(c)) != std::string_view::npos;
}

Result<DeviceConf> parse_device(const std::string& path, const std::string& name,
                                const toml::table& t, const toml::source_region& where) {
  if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), name_char))
    return at(path, where,
              "device name " + render::quote(name) +
                  " must be 1 to 64 letters, digits or _ - . : @ + ( ), like [device.gpu0]");
  DeviceConf d;
  d.name = name;
  d.line = int(where.begin.line);
  const toml::table* steps = nullptr;
  bool have_bdf = false;
  for (auto&& [key, node] : t) {
    const std::string k(key.str());
    const std::string full = "device." + name + "." + k;
    if (k == "bdf") {
      auto s = node.value<std::string>();
      if (!s) return at(path, node.source(), full + " must be a string like \"0000:3b:00.0\"");
      auto a = parse_bdf(*s);
      if (!a)
        return at(path, node.source(),
                  "'" + *s + "' is not one PCI function; write it as 0000:3b:00.0");
      d.bdf = *a;
      have_bdf = true;
    } else if (k == "id") {
      auto s = node.value<std::string>();
      auto colon = s ? s->find(':') : std::string::npos;
      auto v = colon == std::string::npos ? std::nullopt
                                          : parse_hex16(std::string_view(*s).substr(0, colon));
      auto dv = colon == std::string::npos ? std::nullopt
                                           : parse_hex16(std::string_view(*s).substr(colon + 1));
      if (!v || !dv)
        return at(path, node.source(),
                  full + " must be \"vendor:device\" in hex, like \"10de:1b80\"");
      d.vendor = v;
      d.device = dv;
    } else if (k == "boot") {
      auto s = node.value<std::string>();
      if (s == "vfio")
        d.boot = BootAction::vfio;
      else if (s == "host")
        d.boot = BootAction::host;
      else
        return at(path, node.source(), full + " must be \"vfio\" (claim it at boot) or \"host\"");
    } else if (k == "companions") {
      PT_TRY(each_element(
          path, node, full + " must be an array of functions, like [\"0000:3b:00.1\"]",
          [&](const std::optional<std::string>& s, const toml::source_region& el) -> Status {
            auto a = s ? parse_bdf(*s) : std::nullopt;
            if (!a)
              return at(path, el,
                        full + " entries must be PCI functions written as \"0000:3b:00.1\"");
            d.companions.push_back(*a);
            return {};
          }));
    } else if (k == "recover") {
      PT_TRY(each_element(
          path, node, full + " must be an array of steps, like [\"reset\", \"attach\"]",
          [&](const std::optional<std::string>& s, const toml::source_region& el) -> Status {
            if (!s || !find_step(*s))
              return at(path, el,
                        "unknown recovery step" + (s ? " '" + *s + "'" : std::string()) +
                            "; steps are " + step_names());
            for (const auto& prev : d.recover)
              if (prev.name == *s)
                return at(path, el, "step '" + *s + "' is listed twice in " + full);
            d.recover.push_back(RecoverStep{*s, {}});
            return {};
          }));
    } else if (k == "power_control") {
      auto s = node.value<std::string>();
      if (s != "on" && s != "auto")
        return at(path, node.source(),
                  full + " must be \"on\" (keep the function in D0 while detached) or \"auto\" "
                         "(let runtime PM suspend it)");
      d.power.control = *s;
    } else if (k == "d3cold_allowed") {
      auto b = node.value<bool>();
      if (!node.is_boolean() || !b)
        return at(path, node.source(), full + " must be true or false");
      d.power.d3cold_allowed = *b;
    } else if (k == "vfs") {
      auto n = node.value<int64_t>();
      if (!node.is_integer() || !n || *n < 0 || *n > 65535)
        return at(path, node.source(),
                  full + " must be the number of SR-IOV VFs, an integer from 0 to 65535");
      d.vfs = int(*n);
    } else if (k == "step") {
      steps = node.as_table();
      if (!steps) return at(path, node.source(), full + " must be a table of step options");
    } else {
      return at(path, key.source(),
                "unknown key '" + k + "' in [device." + name +
                    "]; keys are bdf, id, boot, companions, recover, step, power_control, "
                    "d3cold_allowed, vfs");
    }
  }
  if (!have_bdf)
    return at(path, where, "[device." + name + "] has no bdf; add bdf = \"0000:3b:00.0\"");
  for (const auto& c : d.companions)
    if (c == d.bdf)
      return at(path, where, "[device." + name + "] lists its own bdf among its companions");
  if (steps)
    if (auto r = parse_step_options(path, name, *steps, d); !r) return std::unexpected(r.error());
  return d;
}

}  // namespace

const DeviceConf* Conf::find(const PciAddress& addr) const {
  for (const auto& d : devices) {
    if (d.bdf == addr) return &d;
    if (std::find(d.companions.begin(), d.companions.end(), addr) != d.companions.end()) return &d;
  }
  return nullptr;
}

const char* to_string(BootAction action) {
  switch (action) {
    case BootAction::vfio:
      return "vfio";
    case BootAction::host:
      return "host";
    case BootAction::none:
      break;
  }
  return "none";
}

namespace {

// toml++ 3.3.0, Debian 12's, has undefined behaviour on three kinds of input
// (its debug build asserts; the release build pt links assumes them away):
// a non-ASCII character where it looks for whitespace (upstream #190, #295),
// a table header whose first character is no key start, such as "[`"
// (upstream #301), and a '}' where an array expects a value, as in "[}" or
// "[1, }": parse_array() hands the '}' to parse_value(), which assumes it
// holds no value terminator. pt.conf holds addresses, driver names and step
// words, so it is ASCII; refusing these before toml++ sees the text costs an
// admin nothing but a non-ASCII comment.
//
// The scan follows TOML's strings and comments so that a '[' or '}' inside
// them is text, not structure: "...", '...', """...""" and '\'\'\'...\'\'\''
// (a closing triple may carry up to two more quotes of its kind).
Status check_toml_safe(std::string_view body, const std::string& path) {
  size_t line = 1, column = 1;
  bool line_start = true;
  // The last character outside strings, comments and whitespace, and how
  // deep the value being read nests arrays and inline tables: a '[' that
  // starts a line at depth 0 opens a table header, one inside a value that
  // spans lines opens an array.
  char last = 0;
  size_t depth = 0;
  auto where = [&] { return path + ":" + std::to_string(line) + ":" + std::to_string(column); };
  auto step = [&](size_t i) {
    if (body[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  };
  for (size_t i = 0; i < body.size(); ++i) {
    const unsigned char c = body[i];
    if (c >= 0x80) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", c);
      return usage_error(where(), std::string("byte ") + hex +
                                      " is not ASCII; pt.conf is ASCII only (names, addresses "
                                      "and drivers are): remove or replace it, comments included");
    }
    if (c == '\n') {
      step(i);
      line_start = true;
      continue;
    }
    if (c == '#') {
      // A comment runs to the end of the line; its bytes are only checked
      // for ASCII.
      while (i + 1 < body.size() && body[i + 1] != '\n') {
        if (static_cast<unsigned char>(body[i + 1]) >= 0x80) break;
        step(i++);
      }
      step(i);
      continue;
    }
    if (c == '"' || c == '\'') {
      const bool triple = body.substr(i, 3) == std::string_view(c == '"' ? "\"\"\"" : "\'\'\'");
      const bool escapes = c == '"';
      const size_t open = triple ? 3 : 1;
      for (size_t k = 0; k < open; ++k) step(i++);
      // Scan to the closing quote(s); a newline ends a one-line string (toml++
      // reports that), EOF ends any.
      while (i < body.size()) {
        const unsigned char d = body[i];
        if (d >= 0x80) break;  // reported by the ASCII check above
        // A backslash escapes the next character; one before a line end
        // inside a one-line string is toml++'s error to report.
        if (escapes && d == '\\' && i + 1 < body.size() && (triple || body[i + 1] != '\n')) {
          step(i++);
          step(i++);
          continue;
        }
        if (!triple && d == '\n') break;
        if (d == c && (!triple || body.substr(i, 3) == std::string(3, c))) break;
        step(i++);
      }
      if (i >= body.size()) break;
      if (static_cast<unsigned char>(body[i]) >= 0x80 || body[i] == '\n') {
        --i;  // let the loop see it
        continue;
      }
      // body[i] opens the closing quote(s).
      size_t close = triple ? 3 : 1;
      if (triple)
        while (close < 5 && i + close < body.size() && body[i + close] == c) ++close;
      for (size_t k = 0; k + 1 < close; ++k) step(i++);
      step(i);
      last = c;
      line_start = false;
      continue;
    }
    const bool header = line_start && depth == 0 && c == '[';
    if (header) {
      size_t j = i + 1;
      const bool array_header = j < body.size() && body[j] == '[';
      if (array_header) ++j;
      while (j < body.size() && (body[j] == ' ' || body[j] == '\t')) ++j;
      const char n = j < body.size() ? body[j] : ']';
      // "[ [" is refused by toml++ itself; "[[[" reaches the key parser.
      const bool key_start = std::isalnum(static_cast<unsigned char>(n)) || n == '_' || n == '-' ||
                             n == '"' || n == '\'' || n == ']' || (n == '[' && !array_header);
      if (!key_start)
        return usage_error(where(), "a line that starts with '[' must go on with a table name, as "
                                    "in [device.gpu]; put an array's '[' after its key's '='");
    }
    if (c == '}' && (last == '[' || last == ','))
      return usage_error(where(), std::string("'}' after '") + last +
                                      "' where a value belongs; '}' only closes an inline table "
                                      "opened with '{': remove it or add the missing '{'");
    if ((c == '[' && !header) || c == '{') ++depth;
    if ((c == ']' || c == '}') && depth > 0) --depth;
    if (header && i + 1 < body.size() && body[i + 1] == '[') {
      // "[[name]]": both brackets belong to the header.
      step(i++);
    }
    if (c != ' ' && c != '\t' && c != '\r') {
      line_start = false;
      last = static_cast<char>(c);
    }
    step(i);
  }
  return {};
}

}  // namespace

Result<Conf> parse_conf(const std::string& text, const std::string& path) {
  Conf conf;
  conf.path = path;
  toml::table root;
  // A file with CRLF line ends reaches here as "...\r": the reader trims the
  // last "\n" as it does a sysfs attribute's, and toml++ wants a '\n' after
  // every '\r' ("expected '\n' after '\r', saw EOF").
  std::string_view body = text;
  if (body.ends_with('\r')) body.remove_suffix(1);
  PT_TRY(check_toml_safe(body, path));
  try {
    root = toml::parse(body, path);
  } catch (const toml::parse_error& e) {
    return at(path, e.source(), std::string(e.description()));
  }
  std::map<PciAddress, std::string> owner;
  for (auto&& [key, node] : root) {
    if (key.str() != "device")
      return at(path, key.source(),
                "unknown top-level key '" + std::string(key.str()) +
                    "'; devices go in [device.NAME] tables");
    const toml::table* devices = node.as_table();
    if (!devices) return at(path, node.source(), "'device' must hold [device.NAME] tables");
    for (auto&& [dkey, dnode] : *devices) {
      const toml::table* t = dnode.as_table();
      if (!t)
        return at(path, dkey.source(),
                  "device." + std::string(dkey.str()) + " must be a table, [device." +
                      std::string(dkey.str()) + "]");
      auto d = parse_device(path, std::string(dkey.str()), *t, dkey.source());
      if (!d) return std::unexpected(d.error());
      std::vector<PciAddress> all = d->companions;
      all.push_back(d->bdf);
      for (const auto& a : all) {
        auto [it, fresh] = owner.emplace(a, d->name);
        if (!fresh)
          return at(path, dkey.source(),
                    a.str() + " appears in both [device." + it->second + "] and [device." +
                        d->name + "]; keep it in one");
      }
      conf.devices.push_back(std::move(*d));
    }
  }
  // toml++ iterates tables in key order; keep the file's order for people.
  std::sort(conf.devices.begin(), conf.devices.end(),
            [](const DeviceConf& a, const DeviceConf& b) { return a.line < b.line; });
  return conf;
}

Result<Conf> load_conf(const Root& root) {
  // pt.conf decides which drivers bind at boot.
  auto text = PT_TRY(read_trusted_file(
      root, kConfPath,
      {.open_failure = "cannot open the configuration",
       .inspect_failure = "cannot inspect the configuration",
       .regular = true,
       .not_regular = "is not a regular file",
       .root_may_own = true,
       .foreign_owner =
           [](uid_t uid) {
             return "refusing a configuration owned by uid " + std::to_string(uid) +
                    ": it decides which drivers bind at boot, so it must belong to root (chown "
                    "root:root)";
           },
       .others_can_write = "refusing a configuration that others can write; fix with chmod go-w"}));
  if (!text) return Conf{kConfPath, {}};
  return parse_conf(*text, kConfPath);
}

}  // namespace pt
