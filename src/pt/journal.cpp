#include "pt/journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "pt/address.hpp"
#include "pt/sysfs.hpp"
#include "pt/trusted_file.hpp"
#include "pt/try.hpp"

namespace pt {

using nlohmann::json;

namespace {

// The state directory and the journal decide what pt undoes: the user
// running pt (root) must own them and nobody else may write them.
const TrustRules kStateRules{
    .open_failure = "cannot open the journal",
    .inspect_failure = "cannot inspect the journal",
    .foreign_owner =
        [](uid_t uid) {
          return "refusing state owned by uid " + std::to_string(uid) +
                 ": it must belong to the user running pt (root); remove it if it is not yours";
        },
    .others_can_write = "refusing state that others can write; fix with chmod go-w or remove it",
};

}  // namespace

// In a --root tree, /run must lead to a directory inside the tree: the state
// directory, the lock and the journal are written through it, and a symbolic
// link there would carry those writes (as root) anywhere on the host.
Status check_run_in_root(const Root& root) {
  if (root.is_real()) return {};
  const std::string run = root.path("/run");
  char* base = ::realpath(root.dir().c_str(), nullptr);
  char* real = ::realpath(run.c_str(), nullptr);
  const int e = errno;
  std::string base_text = base ? base : "", real_text = real ? real : "";
  ::free(base);
  ::free(real);
  if (base_text.empty()) return fail(root.dir(), "cannot resolve the --root directory", e);
  if (real_text.empty()) {
    struct stat st {};
    if (::lstat(run.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      return fail("/run",
                  "is a symbolic link that leads nowhere inside the --root tree; pt writes its "
                  "state only under the root: make it a directory",
                  e);
    return {};  // missing: creating the state directory says so
  }
  if (real_text != base_text && !real_text.starts_with(base_text + "/"))
    return fail("/run",
                "leads out of the --root tree (to " + real_text +
                    "); pt writes its state only under the root: make it a directory",
                EXDEV);
  return {};
}

Status check_state_dir(const Root& root, bool create) {
  if (auto r = check_run_in_root(root); !r) return r;
  const std::string dir = root.path(kStateDir);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return fail(kStateDir, "cannot inspect the state directory", errno);
    if (!create) return {};
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      int e = errno;
      return fail(kStateDir,
                  e == EACCES || e == EPERM
                      ? "cannot create the state directory; pt must run as root"
                      : "cannot create the state directory",
                  e);
    }
    if (::lstat(dir.c_str(), &st) != 0)
      return fail(kStateDir, "cannot inspect the state directory", errno);
  }
  if (!S_ISDIR(st.st_mode)) return fail(kStateDir, "is not a directory; remove it", ENOTDIR);
  if (auto r = check_trust(kStateDir, st, kStateRules); !r) return r;
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    return fail(kStateDir,
                "the state directory is open to other users; it must be mode 0700 (chmod 0700)",
                EPERM);
  return {};
}

std::string journal_to_text(const Journal& journal) {
  json j;
  j["version"] = 1;
  j["devices"] = json::object();
  for (const auto& [bdf, e] : journal.devices) {
    json d;
    d["driver"] = e.driver.empty() ? json(nullptr) : json(e.driver);
    d["module"] = e.module.empty() ? json(nullptr) : json(e.module);
    d["driver_override"] = e.driver_override.empty() ? json(nullptr) : json(e.driver_override);
    d["to"] = e.to;
    d["attach_order"] = e.attach_order;
    d["time"] = e.time;
    if (e.boot) d["boot"] = true;
    if (!e.power.empty()) d["power"] = e.power;
    if (!e.rebar.empty()) {
      d["rebar"] = json::object();
      for (const auto& [bar, size] : e.rebar) d["rebar"][std::to_string(bar)] = size;
    }
    j["devices"][bdf] = d;
  }
  if (journal.job) {
    j["job"] = {{"op", journal.job->op},
                {"pid", journal.job->pid},
                {"started", journal.job->started},
                {"devices", journal.job->devices}};
    if (journal.job->writer > 0)
      j["job"]["stuck_write"] = {{"writer", journal.job->writer},
                                 {"path", journal.job->write_path},
                                 {"value", journal.job->write_value}};
  } else {
    j["job"] = nullptr;
  }
  // Written only when present, so journals of pt-bind alone stay as before.
  for (const auto& [bdf, v] : journal.vga)
    j["vga"][bdf] = {{"decodes", v.decodes},
                     {"owns", v.owns},
                     {"boot_vga", v.boot_vga},
                     {"driver", v.driver.empty() ? json(nullptr) : json(v.driver)},
                     {"time", v.time}};
  for (const auto& [bdf, v] : journal.sriov) {
    j["sriov"][bdf] = {{"numvfs", v.numvfs},
                       {"autoprobe", v.autoprobe.empty() ? json(nullptr) : json(v.autoprobe)},
                       {"count", v.count},
                       {"to", v.to},
                       {"time", v.time}};
    if (!v.drivers.empty()) j["sriov"][bdf]["drivers"] = v.drivers;
  }
  for (const auto& [bdf, changes] : journal.consoles) {
    json list = json::array();
    for (const auto& c : changes) {
      json item = {{"kind", c.kind},
                   {"name", c.name},
                   {"driver", c.driver.empty() ? json(nullptr) : json(c.driver)},
                   {"node", c.node},
                   {"time", c.time}};
      if (c.kind == "vtconsole") {
        item["served"] = json::array();
        for (const auto& f : c.served)
          item["served"].push_back({{"fb", f.node}, {"name", f.name}, {"consoles", f.consoles}});
      }
      list.push_back(item);
    }
    j["consoles"][bdf] = list;
  }
  // A sysfs name that is not UTF-8 must not abort the save of a job in flight.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

namespace {

// Strict reading: every field the writer writes must be there with exactly
// its type, an integer must be an integer in range, and a key may appear once
// per object. What does not fit is refused, naming the file and the field,
// rather than read as a default: a default here silently drops a function's
// original driver.
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {}

  std::unexpected<Error> bad(const std::string& field, const std::string& what) const {
    return fail(path_,
                "field " + field + " " + what +
                    "; the journal was not written by this pt or was edited. Inspect it, then "
                    "remove it to start afresh (pt-bind attach will then let the kernel choose "
                    "drivers)",
                EINVAL);
  }

  Result<const json*> member(const json& o, const std::string& where, const char* key,
                             bool required = true) const {
    auto it = o.find(key);
    if (it == o.end()) {
      if (required) return bad(where + key, "is missing");
      return nullptr;
    }
    return &*it;
  }

  Result<const json*> object(const json& o, const std::string& where, const char* key,
                             bool required = true) const {
    auto v = PT_TRY(member(o, where, key, required));
    if (v && !v->is_object()) return bad(where + key, "must be an object, not " + kind(*v));
    return v;
  }

  // NULLABLE: null reads as the empty string, the writer's spelling of "none".
  Result<std::string> string(const json& o, const std::string& where, const char* key,
                             bool nullable) const {
    auto v = PT_TRY(member(o, where, key));
    if (nullable && v->is_null()) return std::string();
    if (!v->is_string())
      return bad(where + key, std::string("must be a string") + (nullable ? " or null" : "") +
                                  ", not " + kind(*v));
    return v->get<std::string>();
  }

  Result<int64_t> integer(const json& o, const std::string& where, const char* key, int64_t lo,
                          int64_t hi, bool required = true, int64_t absent = 0) const {
    auto v = PT_TRY(member(o, where, key, required));
    if (!v) return absent;
    return integer_value(*v, where + key, lo, hi);
  }

  Result<int64_t> integer_value(const json& v, const std::string& field, int64_t lo,
                                int64_t hi) const {
    const std::string range =
        "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    if (!v.is_number_integer()) return bad(field, range + ", not " + kind(v));
    if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t(hi)
                               : v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      return bad(field, range + ", not " + v.dump());
    return v.get<int64_t>();
  }

  Result<bool> boolean(const json& o, const std::string& where, const char* key,
                       bool required = true) const {
    auto v = PT_TRY(member(o, where, key, required));
    if (!v) return false;
    if (!v->is_boolean()) return bad(where + key, "must be true or false, not " + kind(*v));
    return v->get<bool>();
  }

  // A key naming a PCI function, as the writer spells it ("0000:01:00.0").
  Status address(const std::string& field, const std::string& text) const {
    auto a = parse_sysfs_name(text);
    if (!a || a->str() != text)
      return bad(field, "'" + text + "' is not a PCI address as sysfs spells it (0000:01:00.0)");
    return {};
  }

  static std::string kind(const json& v) {
    if (v.is_number_float()) return "the fraction " + v.dump();
    return v.type_name();
  }

 private:
  const std::string& path_;
};

constexpr int64_t kIntMax = std::numeric_limits<int>::max();
constexpr int64_t kIntMin = std::numeric_limits<int>::min();
constexpr int64_t kTimeMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kTimeMin = std::numeric_limits<int64_t>::min();

Result<JournalEntry> read_entry(const Reader& r, const json& d, const std::string& where) {
  JournalEntry e;
  e.driver = PT_TRY(r.string(d, where, "driver", true));
  e.module = PT_TRY(r.string(d, where, "module", true));
  e.driver_override = PT_TRY(r.string(d, where, "driver_override", true));
  e.to = PT_TRY(r.string(d, where, "to", false));
  e.attach_order = int(PT_TRY(r.integer(d, where, "attach_order", kIntMin, kIntMax)));
  e.time = PT_TRY(r.integer(d, where, "time", kTimeMin, kTimeMax));
  e.boot = PT_TRY(r.boolean(d, where, "boot", false));
  if (const json* p = PT_TRY(r.object(d, where, "power", false))) {
    // Attach writes these values into these files: only the two a policy sets.
    for (const auto& [attr, v] : p->items()) {
      const std::string field = where + "power." + attr;
      if (attr != "power/control" && attr != "d3cold_allowed")
        return r.bad(field, "is not an attribute pt's power policy sets (power/control, d3cold_allowed)");
      if (!v.is_string()) return r.bad(field, "must be a string, not " + Reader::kind(v));
      const std::string value = v.get<std::string>();
      if (value.empty() || value.size() > 16 ||
          value.find_first_of("\n/") != std::string::npos)
        return r.bad(field, "'" + value + "' is not a value the kernel shows there");
      e.power[attr] = value;
    }
  }
  if (auto rb = PT_TRY(r.object(d, where, "rebar", false))) {
    for (const auto& [key, size] : rb->items()) {
      // One digit, as the writer spells a BAR (parse_index is sysfs.cpp's,
      // which the journal fuzz target does not link).
      if (key.size() != 1 || key[0] < '0' || key[0] > '5')
        return r.bad(where + "rebar", "'" + key + "' is not a BAR number from 0 to 5");
      e.rebar[key[0] - '0'] = int(PT_TRY(r.integer_value(size, where + "rebar." + key, 0, 43)));
    }
  }
  return e;
}

Result<Job> read_job(const Reader& r, const json& o) {
  const std::string where = "job.";
  Job job;
  job.op = PT_TRY(r.string(o, where, "op", false));
  if (job.op != "detach" && job.op != "attach" && job.op != "set" && job.op != "unset")
    return r.bad("job.op", "'" + job.op + "' is not detach, attach, set or unset");
  job.pid = int(PT_TRY(r.integer(o, where, "pid", 0, kIntMax)));
  job.started = PT_TRY(r.integer(o, where, "started", kTimeMin, kTimeMax));
  auto list = PT_TRY(r.member(o, where, "devices"));
  if (!list->is_array())
    return r.bad("job.devices", "must be an array, not " + Reader::kind(*list));
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string field = "job.devices[" + std::to_string(i) + "]";
    const json& d = (*list)[i];
    if (!d.is_string()) return r.bad(field, "must be a string, not " + Reader::kind(d));
    PT_TRY(r.address(field, d.get<std::string>()));
    job.devices.push_back(d.get<std::string>());
  }
  if (auto sw = PT_TRY(r.object(o, where, "stuck_write", false))) {
    const std::string w = "job.stuck_write.";
    job.writer = int(PT_TRY(r.integer(*sw, w, "writer", 1, kIntMax)));
    job.write_path = PT_TRY(r.string(*sw, w, "path", false));
    job.write_value = PT_TRY(r.string(*sw, w, "value", false));
  }
  return job;
}

Result<VgaRecord> read_vga(const Reader& r, const json& v, const std::string& where) {
  VgaRecord rec;
  rec.decodes = PT_TRY(r.string(v, where, "decodes", false));
  rec.owns = PT_TRY(r.string(v, where, "owns", true));
  rec.boot_vga = PT_TRY(r.boolean(v, where, "boot_vga"));
  rec.driver = PT_TRY(r.string(v, where, "driver", true));
  rec.time = PT_TRY(r.integer(v, where, "time", kTimeMin, kTimeMax));
  return rec;
}

Result<SriovRecord> read_sriov(const Reader& r, const json& v, const std::string& where) {
  SriovRecord rec;
  rec.numvfs = int(PT_TRY(r.integer(v, where, "numvfs", 0, 65535)));
  rec.autoprobe = PT_TRY(r.string(v, where, "autoprobe", true));
  if (rec.autoprobe != "" && rec.autoprobe != "0" && rec.autoprobe != "1")
    return r.bad(where + "autoprobe", "must be \"0\", \"1\" or null");
  rec.count = int(PT_TRY(r.integer(v, where, "count", 0, 65535)));
  rec.to = PT_TRY(r.string(v, where, "to", false));
  rec.time = PT_TRY(r.integer(v, where, "time", kTimeMin, kTimeMax));
  if (auto drivers = PT_TRY(r.object(v, where, "drivers", false)))
    for (const auto& [vf, d] : drivers->items()) {
      PT_TRY(r.address(where + "drivers." + vf, vf));
      rec.drivers[vf] = PT_TRY(r.string(*drivers, where + "drivers.", vf.c_str(), false));
    }
  return rec;
}

Result<ConsoleChange> read_change(const Reader& r, const json& c, const std::string& where) {
  if (!c.is_object()) return r.bad(where, "must be an object, not " + Reader::kind(c));
  const std::string w = where + ".";
  ConsoleChange ch;
  ch.kind = PT_TRY(r.string(c, w, "kind", false));
  if (ch.kind != "vtconsole" && ch.kind != "framebuffer")
    return r.bad(w + "kind", "'" + ch.kind + "' is not vtconsole or framebuffer");
  ch.name = PT_TRY(r.string(c, w, "name", false));
  ch.driver = PT_TRY(r.string(c, w, "driver", true));
  ch.node = PT_TRY(r.string(c, w, "node", false));
  ch.time = PT_TRY(r.integer(c, w, "time", kTimeMin, kTimeMax));
  auto served = PT_TRY(r.member(c, w, "served", ch.kind == "vtconsole"));
  if (!served) return ch;
  if (!served->is_array())
    return r.bad(w + "served", "must be an array, not " + Reader::kind(*served));
  for (size_t i = 0; i < served->size(); ++i) {
    const std::string fw = w + "served[" + std::to_string(i) + "]";
    const json& f = (*served)[i];
    if (!f.is_object()) return r.bad(fw, "must be an object, not " + Reader::kind(f));
    ServedFb fb;
    fb.node = PT_TRY(r.string(f, fw + ".", "fb", false));
    fb.name = PT_TRY(r.string(f, fw + ".", "name", false));
    auto cons = PT_TRY(r.member(f, fw + ".", "consoles"));
    if (!cons->is_array())
      return r.bad(fw + ".consoles", "must be an array, not " + Reader::kind(*cons));
    for (size_t k = 0; k < cons->size(); ++k)
      fb.consoles.push_back(int(PT_TRY(
          r.integer_value((*cons)[k], fw + ".consoles[" + std::to_string(k) + "]", 0, kIntMax))));
    ch.served.push_back(std::move(fb));
  }
  return ch;
}

}  // namespace

Result<Journal> journal_from_text(const std::string& text, const std::string& path) {
  const Reader r(path);
  // The parser keeps the last of two equal keys; a journal with both would
  // be read as one of two different stories, so duplicates are refused.
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  auto watch = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty() &&
        !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  json j;
  try {
    j = json::parse(text, watch);
  } catch (const json::exception& e) {
    return fail(
        path,
        std::string("the journal is not valid JSON: ") + e.what() +
            "; inspect it, then remove it to start afresh (pt-bind attach will then let the kernel "
            "choose drivers)",
        EINVAL);
  }
  if (!duplicate.empty()) return r.bad("'" + duplicate + "'", "appears twice in one object");
  if (!j.is_object()) return r.bad("(top level)", "must be an object, not " + Reader::kind(j));
  if (!j.contains("version"))
    return fail(
        path,
        "the journal has no version field; it was not written by pt: inspect it, then remove it",
        EINVAL);
  const json& version = j["version"];
  if (!version.is_number_integer() || version.get<int64_t>() != 1 ||
      (version.is_number_unsigned() && version.get<uint64_t>() != 1))
    return fail(path,
                "unknown journal version " + version.dump() +
                    "; this pt reads version 1 only (a newer pt wrote it, or it was edited): "
                    "inspect it, then remove it to start afresh",
                EINVAL);

  Journal out;
  const json* devices = PT_TRY(r.object(j, "", "devices"));
  for (const auto& [bdf, d] : devices->items()) {
    const std::string where = "devices." + bdf;
    PT_TRY(r.address(where, bdf));
    if (!d.is_object()) return r.bad(where, "must be an object, not " + Reader::kind(d));
    out.devices[bdf] = PT_TRY(read_entry(r, d, where + "."));
  }
  const json* job = PT_TRY(r.member(j, "", "job"));
  if (!job->is_null()) {
    if (!job->is_object())
      return r.bad("job", "must be an object or null, not " + Reader::kind(*job));
    out.job = PT_TRY(read_job(r, *job));
  }
  if (const json* vga = PT_TRY(r.object(j, "", "vga", false)))
    for (const auto& [bdf, v] : vga->items()) {
      const std::string where = "vga." + bdf;
      PT_TRY(r.address(where, bdf));
      if (!v.is_object()) return r.bad(where, "must be an object, not " + Reader::kind(v));
      out.vga[bdf] = PT_TRY(read_vga(r, v, where + "."));
    }
  if (const json* sriov = PT_TRY(r.object(j, "", "sriov", false)))
    for (const auto& [bdf, v] : sriov->items()) {
      const std::string where = "sriov." + bdf;
      PT_TRY(r.address(where, bdf));
      if (!v.is_object()) return r.bad(where, "must be an object, not " + Reader::kind(v));
      out.sriov[bdf] = PT_TRY(read_sriov(r, v, where + "."));
    }
  if (const json* consoles = PT_TRY(r.object(j, "", "consoles", false)))
    for (const auto& [bdf, list] : consoles->items()) {
      const std::string where = "consoles." + bdf;
      PT_TRY(r.address(where, bdf));
      if (!list.is_array()) return r.bad(where, "must be an array, not " + Reader::kind(list));
      auto& changes = out.consoles[bdf];
      for (size_t i = 0; i < list.size(); ++i)
        changes.push_back(PT_TRY(read_change(r, list[i], where + "[" + std::to_string(i) + "]")));
    }
  return out;
}

Result<Journal> load_journal(const Root& root) {
  PT_TRY(check_run_in_root(root));
  auto text = PT_TRY(read_trusted_file(root, kJournalPath, kStateRules));
  if (!text) return Journal{};
  return journal_from_text(*text, kJournalPath);
}

Status save_journal(const Root& root, const Journal& journal) {
  PT_TRY(check_state_dir(root, false));
  const std::string path = root.path(kJournalPath);
  // A fresh name created exclusively: whatever sits at a fixed temporary
  // name (a hard link to another file, a symlink) is never opened, so never
  // truncated or written through. The name ends as the fault shim's rules
  // (tests/vm/fault_inject.c) expect: "journal.json.tmp".
  const std::string suffix = ".journal.json.tmp";
  std::string tmp = root.path(std::string(kStateDir) + "/new-XXXXXX" + suffix);
  const std::string text = journal_to_text(journal);
  int fd = ::mkostemps(tmp.data(), int(suffix.size()), O_CLOEXEC);
  if (fd < 0) return fail(kJournalPath, "cannot write the journal", errno);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return fail(kJournalPath, "cannot write the journal", e);
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return fail(kJournalPath, "cannot flush the journal", e);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return fail(kJournalPath, "cannot replace the journal", e);
  }
  int dfd = ::open(root.path(kStateDir).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

}  // namespace pt
