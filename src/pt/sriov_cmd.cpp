#include "pt/sriov_cmd.hpp"

#include <charconv>

#include "pt/bind.hpp"
#include "pt/render.hpp"
#include "pt/sriov.hpp"
#include "pt/sysfs.hpp"
#include "pt/try.hpp"

namespace pt::bind {

using nlohmann::json;

namespace {

std::optional<uint16_t> hex_id(const std::string& s) {
  uint16_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

Result<Exit> cmd_vfs(const Options& o, Context& ctx, std::ostream& out) {
  if (o.devices.size() != 1) return usage_error("vfs", "takes exactly one device");
  auto count = parse_index(o.count);
  if (!count || *count > 65535)
    return usage_error("N '" + o.count + "'", "must be a number of VFs from 0 to 65535");
  if (o.vf_to != sriov::kAuto) PT_TRY(check_driver_name(o.vf_to, "--to"));
  sriov::Request req{o.devices[0], int(*count), o.vf_to};
  if (ctx.dry_run) {
    PT_TRY(check_state_dir(ctx.root, false));
    auto journal = PT_TRY(load_journal(ctx.root));
    auto p = PT_TRY(sriov::plan(ctx, req, journal));
    if (o.common.json) {
      json drivers = json::array();
      for (const auto& [vf, d] : p.drivers)
        drivers.push_back({{"device", vf},
                           {"driver", d.name()},
                           {"module", render::nullable(d.module)},
                           {"why", d.why}});
      render::emit(out, json{{"op", "vfs"},
                             {"dry_run", true},
                             {"device", p.before.pf.str()},
                             {"vfs", p.count},
                             {"to", p.count ? json(p.to) : json(nullptr)},
                             {"already", p.already},
                             {"functions", drivers},
                             {"steps", p.steps},
                             {"notes", p.notes},
                             {"warnings", p.warnings}});
      return Exit::ok;
    }
    std::string t;
    for (const auto& w : p.warnings) t += "warning: " + w + "\n";
    for (const auto& n : p.notes) t += "note: " + n + "\n";
    t += "dry run: vfs " + p.before.pf.str() + " " + std::to_string(p.count) +
         "; nothing is changed\n";
    for (const auto& step : p.steps) t += "  " + step + "\n";
    out << render::printable(t, true);
    return Exit::ok;
  }
  auto oc = PT_TRY(sriov::run(ctx, req));
  if (o.common.json) {
    json vfs = json::array();
    for (const auto& v : oc.vfs)
      vfs.push_back({{"device", v.device}, {"driver", v.driver}, {"why", v.why}});
    render::emit(out, json{{"op", "vfs"},
                           {"dry_run", false},
                           {"device", oc.pf},
                           {"vfs", oc.count},
                           {"functions", vfs},
                           {"notes", oc.notes},
                           {"warnings", oc.warnings}});
    return Exit::ok;
  }
  std::string t;
  for (const auto& w : oc.warnings) t += "warning: " + w + "\n";
  for (const auto& n : oc.notes) t += "note: " + n + "\n";
  if (oc.count == 0) t += oc.pf + "  no VFs\n";
  for (const auto& v : oc.vfs) t += v.device + "  VF of " + oc.pf + " on " + v.driver + "\n";
  out << render::printable(t, true);
  return Exit::ok;
}

}  // namespace

std::optional<Result<Exit>> run_sriov_command(const Options& o, Context& ctx, std::ostream& out) {
  if (o.command != "vfs") return std::nullopt;
  return cmd_vfs(o, ctx, out);
}

void show_sriov(const Root& root, const PciAddress& addr, json& j, std::string& text) {
  if (auto pf = sriov::physfn(root, addr)) {
    j["sriov"] = {{"role", "vf"}, {"physfn", pf->str()}};
    text += "  sr-iov:           VF of " + pf->str() + "\n";
    return;
  }
  auto st = sriov::read_state(root, addr);
  if (!st) {
    j["sriov"] = nullptr;
    return;
  }
  json vfs = json::array();
  std::string names;
  for (const auto& v : st->vfs) {
    vfs.push_back(v.str());
    names += " " + v.str();
  }
  // sysfs prints the VF device ID as %x ("10"); shown as lspci does ("0010").
  std::string vf_device;
  if (auto id = st->vf_device.empty() ? std::nullopt : hex_id(st->vf_device))
    vf_device = hex4(*id);
  else if (st->cap)
    vf_device = hex4(st->cap->vf_device);
  json cap = nullptr;
  if (st->cap)
    cap = {{"initial_vfs", st->cap->initial_vfs},
           {"total_vfs", st->cap->total_vfs},
           {"num_vfs", st->cap->num_vfs},
           {"vf_enable", st->cap->vf_enable()},
           {"first_vf_offset", st->cap->first_vf_offset},
           {"vf_stride", st->cap->vf_stride},
           {"vf_device", hex4(st->cap->vf_device)}};
  j["sriov"] = {{"role", "pf"},
                {"total_vfs", st->total_vfs},
                {"num_vfs", st->num_vfs},
                {"vf_device", render::nullable(vf_device)},
                {"drivers_autoprobe", st->autoprobe ? json(*st->autoprobe) : json(nullptr)},
                {"vfs", vfs},
                {"capability", cap}};
  text += "  sr-iov:           PF, " + std::to_string(st->num_vfs) + " of " +
          std::to_string(st->total_vfs) + " VFs" +
          (vf_device.empty() ? "" : ", VF device " + vf_device) + ", autoprobe " +
          (st->autoprobe ? (*st->autoprobe ? "on" : "off") : "unknown") + "\n";
  if (st->cap)
    text += "  sr-iov cap:       VF offset " + std::to_string(st->cap->first_vf_offset) +
            ", stride " + std::to_string(st->cap->vf_stride) + ", initial " +
            std::to_string(st->cap->initial_vfs) + ", VF Enable" +
            (st->cap->vf_enable() ? "+" : "-") + "\n";
  if (!names.empty()) text += "  vfs:             " + names + "\n";
}

}  // namespace pt::bind
