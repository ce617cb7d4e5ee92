#include "pt/journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "pt/sysfs.hpp"

namespace pt {

using nlohmann::json;

namespace {

Status check_owner(const std::string& shown, const struct stat& st) {
  if (st.st_uid != ::geteuid())
    return fail(shown,
                "refusing state owned by uid " + std::to_string(st.st_uid) +
                    ": it must belong to the user running pt (root); remove it if it is not yours",
                EPERM);
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fail(shown, "refusing state that others can write; fix with chmod go-w or remove it",
                EPERM);
  return {};
}

}  // namespace

Status check_state_dir(const Root& root, bool create) {
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
  if (auto r = check_owner(kStateDir, st); !r) return r;
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
  return j.dump(2) + "\n";
}

Result<Journal> journal_from_text(const std::string& text, const std::string& path) {
  Journal out;
  try {
    json j = json::parse(text);
    if (!j.contains("version"))
      return fail(
          path,
          "the journal has no version field; it was not written by pt: inspect it, then remove it",
          EINVAL);
    if (j.value("version", 0) != 1)
      return fail(path, "unknown journal version; it was written by a newer pt", EINVAL);
    auto str = [](const json& o, const char* key) {
      auto it = o.find(key);
      return (it == o.end() || it->is_null()) ? std::string() : it->get<std::string>();
    };
    for (const auto& [bdf, d] : j.at("devices").items()) {
      JournalEntry e;
      e.driver = str(d, "driver");
      e.module = str(d, "module");
      e.driver_override = str(d, "driver_override");
      e.to = str(d, "to");
      e.attach_order = d.value("attach_order", 0);
      e.time = d.value("time", int64_t(0));
      e.boot = d.value("boot", false);
      out.devices[bdf] = e;
    }
    if (auto it = j.find("job"); it != j.end() && !it->is_null()) {
      Job job;
      job.op = it->at("op").get<std::string>();
      job.pid = it->value("pid", 0);
      job.started = it->value("started", int64_t(0));
      job.devices = it->at("devices").get<std::vector<std::string>>();
      if (auto sw = it->find("stuck_write"); sw != it->end() && sw->is_object()) {
        job.writer = sw->value("writer", 0);
        job.write_path = str(*sw, "path");
        job.write_value = str(*sw, "value");
      }
      out.job = job;
    }
    if (auto it = j.find("vga"); it != j.end() && !it->is_null()) {
      for (const auto& [bdf, v] : it->items()) {
        VgaRecord r;
        r.decodes = v.at("decodes").get<std::string>();
        r.owns = str(v, "owns");
        r.boot_vga = v.value("boot_vga", false);
        r.driver = str(v, "driver");
        r.time = v.value("time", int64_t(0));
        out.vga[bdf] = r;
      }
    }
    if (auto it = j.find("consoles"); it != j.end() && !it->is_null()) {
      for (const auto& [bdf, list] : it->items()) {
        auto& changes = out.consoles[bdf];
        for (const auto& c : list) {
          ConsoleChange ch;
          ch.kind = c.at("kind").get<std::string>();
          ch.name = c.at("name").get<std::string>();
          ch.driver = str(c, "driver");
          ch.node = str(c, "node");
          ch.time = c.value("time", int64_t(0));
          if (auto sv = c.find("served"); sv != c.end() && sv->is_array())
            for (const auto& f : *sv)
              ch.served.push_back(ServedFb{f.at("fb").get<std::string>(),
                                           f.at("name").get<std::string>(),
                                           f.value("consoles", std::vector<int>{})});
          changes.push_back(ch);
        }
      }
    }
  } catch (const json::exception& e) {
    return fail(
        path,
        std::string("the journal is not valid: ") + e.what() +
            "; inspect it, then remove it to start afresh (pt-bind attach will then let the kernel "
            "choose drivers)",
        EINVAL);
  }
  return out;
}

Result<Journal> load_journal(const Root& root) {
  const std::string path = root.path(kJournalPath);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return Journal{};
    return fail(kJournalPath, "cannot open the journal", errno);
  }
  struct stat st {};
  ::fstat(fd, &st);
  ::close(fd);
  if (auto r = check_owner(kJournalPath, st); !r) return std::unexpected(r.error());
  auto text = read_file(path);
  if (!text) return std::unexpected(text.error());
  return journal_from_text(*text, kJournalPath);
}

Status save_journal(const Root& root, const Journal& journal) {
  const std::string path = root.path(kJournalPath);
  const std::string tmp = path + ".tmp";
  const std::string text = journal_to_text(journal);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
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
