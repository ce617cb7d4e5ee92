#include "pt/journald.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <set>

#include "pt/vgaarb.hpp"

namespace pt::journald {

namespace {

struct KindInfo {
  Kind kind;
  std::string_view name;
  std::string_view id;
};

// Fixed for good: journalctl filters and the catalog name them. A new kind
// gets a new id (systemd-id128 new); an id is never reused for another.
constexpr KindInfo kKinds[] = {
    {Kind::bind, "bind", "98b470185afa48fd8203bb10038a19b9"},
    {Kind::reset, "reset", "115553ce4e2d407da19c522d29df9801"},
    {Kind::vgaarb, "vgaarb", "b9c3dce01f7443a9a2fd9aba175d3322"},
    {Kind::console, "console", "40c06d22d6a244f188eaf12e2f9efc31"},
    {Kind::power, "power", "ca801c8d129c482d8f74722668f93cca"},
    {Kind::write, "write", "c68eedb2d2ce48a6aa452d73d9fa8ee7"},
    {Kind::recover_step, "recover-step", "e2394d9cfd564b209c03e43df7d7d10f"},
    {Kind::command, "command", "9b85f776526f4672ad554159b97538af"},
};

const KindInfo& info(Kind kind) {
  for (const auto& k : kKinds)
    if (k.kind == kind) return k;
  return kKinds[0];
}

// journald drops a datagram over its buffer whole; a record pt builds stays
// far below this, and a longer message is cut, not lost.
constexpr size_t kMaxValue = 2000;

void append_field(std::string& out, std::string_view key, std::string_view value) {
  value = value.substr(0, kMaxValue);
  if (value.find('\n') == std::string_view::npos) {
    out.append(key).append("=").append(value).append("\n");
    return;
  }
  out.append(key).append("\n");
  uint64_t n = value.size();
  for (int i = 0; i < 8; ++i) out.push_back(char((n >> (8 * i)) & 0xff));
  out.append(value).append("\n");
}

// The process's runs that changed something, for command_end(): like
// openlog(3), logging is the process's own state.
struct Session {
  std::mutex mu;
  std::optional<Root> root;
  std::set<std::string> devices;
  int records = 0;
};

Session& session() {
  static Session s;
  return s;
}

const char* result_of(const WriteEvent& ev) {
  return ev.timed_out ? "timed-out" : ev.failed ? "failed" : "ok";
}

}  // namespace

std::string_view message_id(Kind kind) { return info(kind).id; }
std::string_view kind_name(Kind kind) { return info(kind).name; }

std::string encode(const Record& r) {
  std::string out;
  append_field(out, "MESSAGE_ID", message_id(r.kind));
  append_field(out, "PRIORITY", std::to_string(r.priority));
  append_field(out, "SYSLOG_IDENTIFIER", r.identifier);
  append_field(out, "SYSLOG_FACILITY", "3");  // daemon, as the syslog lines
  append_field(out, "PT_EVENT", kind_name(r.kind));
  append_field(out, "MESSAGE", r.message);
  for (const auto& [k, v] : r.fields) append_field(out, k, v);
  return out;
}

bool send(const Root& root, const Record& record) {
  const std::string path = root.path("/run/systemd/journal/socket");
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  const std::string data = encode(record);
  auto n = ::sendto(fd, data.data(), data.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::close(fd);
  return n == ssize_t(data.size());
}

std::optional<Record> step_record(const std::string& tool, const WriteEvent& ev,
                                  std::string& arbiter_target) {
  Record r;
  r.identifier = tool;
  std::string bdf, step, driver;
  const std::string& p = ev.path;
  auto under = [&](std::string_view prefix) { return p.starts_with(prefix); };
  if (p == kArbiterPath) {
    // "target PCI:0000:01:00.0", "decodes io+mem", "lock io+mem", "unlock all"
    const auto space = ev.value.find(' ');
    const std::string verb = ev.value.substr(0, space);
    const std::string arg = space == std::string::npos ? "" : ev.value.substr(space + 1);
    if (verb == "target") {
      arbiter_target = arg.starts_with("PCI:") ? arg.substr(4) : "";
      return std::nullopt;
    }
    if (verb != "decodes") return std::nullopt;
    r.kind = Kind::vgaarb;
    step = "decodes";
    bdf = arbiter_target;
  } else if (under("/sys/bus/pci/devices/")) {
    const std::string rest = p.substr(std::strlen("/sys/bus/pci/devices/"));
    const auto slash = rest.find('/');
    bdf = rest.substr(0, slash);
    step = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (step == "driver_override" || step.starts_with("sriov_"))
      r.kind = Kind::bind;
    else if (step == "reset" || step == "reset_method" || step == "reset_subordinate" ||
             step == "remove" || step == "rescan")
      r.kind = Kind::reset;
    else if (step == "power/control" || step == "d3cold_allowed")
      r.kind = Kind::power;
    else if (step == "drm")
      r.kind = Kind::console;
    else
      r.kind = Kind::write;
  } else if (under("/sys/bus/pci/drivers/")) {
    // /sys/bus/pci/drivers/DRV/{bind,unbind,new_id,remove_id}, VALUE the BDF
    const std::string rest = p.substr(std::strlen("/sys/bus/pci/drivers/"));
    const auto slash = rest.find('/');
    driver = rest.substr(0, slash);
    step = slash == std::string::npos ? "" : rest.substr(slash + 1);
    r.kind = Kind::bind;
    if (step == "bind" || step == "unbind") bdf = ev.value;
  } else if (p == "/sys/bus/pci/drivers_probe") {
    r.kind = Kind::bind;
    step = "drivers_probe";
    bdf = ev.value;
  } else if (p == "/sys/bus/pci/rescan") {
    r.kind = Kind::reset;
    step = "rescan";
  } else if (under("/sys/bus/pci/slots/")) {
    r.kind = Kind::reset;
    step = "slot-power";
  } else if (under("/sys/class/vtconsole/") || under("/sys/bus/platform/drivers/") ||
             under("/sys/class/drm/")) {
    r.kind = Kind::console;
    step = p.substr(p.rfind('/') + 1);
  } else {
    r.kind = Kind::write;
    step = p.substr(p.rfind('/') + 1);
  }
  const std::string result = result_of(ev);
  r.priority = ev.failed ? 4 : 6;
  r.message = tool + ": " + (bdf.empty() ? "" : bdf + ": ") + step + " " +
              printable(ev.value) + " in " + printable(p) + ": " + result +
              (ev.err ? std::string(" (") + std::strerror(ev.err) + ")" : "");
  if (!bdf.empty()) r.fields.emplace_back("PT_BDF", bdf);
  r.fields.emplace_back("PT_STEP", step);
  r.fields.emplace_back("PT_RESULT", result);
  // A step's own status in pt(7)'s table: what the run exits with if it
  // stops here (5 for a write abandoned in the kernel).
  r.fields.emplace_back("PT_EXIT", std::to_string(ev.failed ? int(ev.exit) : 0));
  r.fields.emplace_back("PT_PATH", p);
  r.fields.emplace_back("PT_VALUE", ev.value);
  if (!driver.empty()) r.fields.emplace_back("PT_DRIVER", driver);
  if (ev.err) r.fields.emplace_back("ERRNO", std::to_string(ev.err));
  r.fields.emplace_back("PT_ELAPSED_US", std::to_string(ev.elapsed.count()));
  return r;
}

ObservedWriter::Observer step_logger(const Root& root, std::string tool,
                                     ObservedWriter::Observer next) {
  auto target = std::make_shared<std::string>();
  return [root, tool = std::move(tool), next = std::move(next), target](const WriteEvent& ev) {
    if (auto r = step_record(tool, ev, *target)) {
      {
        Session& s = session();
        std::lock_guard lock(s.mu);
        if (!s.root) s.root = root;
        ++s.records;
        for (const auto& [k, v] : r->fields)
          if (k == "PT_BDF") s.devices.insert(v);
      }
      send(root, *r);
    }
    if (next) next(ev);
  };
}

void command_end(const std::string& tool, Exit exit, const std::string& error_text) {
  Session& s = session();
  std::optional<Root> root;
  std::vector<std::string> devices;
  int records = 0;
  {
    std::lock_guard lock(s.mu);
    if (!s.root || s.records == 0) return;
    root = s.root;
    records = s.records;
    devices.assign(s.devices.begin(), s.devices.end());
    s.records = 0;
    s.devices.clear();
  }
  std::string listed;
  for (const auto& d : devices) listed += (listed.empty() ? "" : " ") + d;
  Record r;
  r.kind = Kind::command;
  r.identifier = tool;
  r.priority = exit == Exit::ok ? 6 : 3;
  r.message = tool + ": finished, exit " + std::to_string(int(exit)) + " after " +
              std::to_string(records) + " change(s)" + (listed.empty() ? "" : " to " + listed) +
              (error_text.empty() ? "" : ": " + error_text);
  // One PT_BDF field per function: journalctl PT_BDF=X matches any of them.
  for (const auto& d : devices) r.fields.emplace_back("PT_BDF", d);
  r.fields.emplace_back("PT_RESULT", exit == Exit::ok ? "ok" : "failed");
  r.fields.emplace_back("PT_EXIT", std::to_string(int(exit)));
  r.fields.emplace_back("PT_CHANGES", std::to_string(records));
  send(*root, r);
}

}  // namespace pt::journald
