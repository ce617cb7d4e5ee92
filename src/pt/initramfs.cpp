#include "pt/initramfs.hpp"

#include "pt/spawn.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "pt/sysfs.hpp"

namespace pt {

namespace {

// Runs ARGV with stdout captured; stderr goes to the caller's stderr.
Result<std::string> run_capture(const std::vector<std::string>& argv) {
  auto oc = spawn::exec(Root{}, argv, {.capture = true, .search_path = true});
  if (!oc) return fail(argv[0], "cannot start it", oc.error().err);
  if (oc->code == 127)
    return fail(argv[0], "is not installed; install the package of the system's initramfs builder",
                ENOENT);
  if (oc->code != 0)
    return fail(argv[0] + (argv.size() > 1 ? " " + argv.back() : std::string()),
                "failed (exit " + std::to_string(oc->code) + ")");
  return std::move(oc->out);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

// PATH from an archive unmkinitramfs unpacked into DIR; none when absent.
// With early microcode in front, the main archive lands in main/. The
// archive decides what each path is, so it is read as any untrusted file: a
// FIFO or a huge file there is an error, not a hang.
Result<std::optional<std::string>> read_unpacked(const std::string& dir, const std::string& path) {
  for (const std::string& p : {dir + "/main/" + path, dir + "/" + path}) {
    auto bytes = read_bytes(p);
    if (bytes) return std::optional<std::string>(std::move(*bytes));
    if (bytes.error().err != ENOENT) return std::unexpected(bytes.error());
  }
  return std::nullopt;
}

class InitramfsTools final : public InitramfsReader {
 public:
  explicit InitramfsTools(std::string scratch) : scratch_(std::move(scratch)) {}
  std::string flavor() const override { return "initramfs-tools"; }
  Result<std::vector<std::string>> list(const std::string& image) override {
    auto out = run_capture({"lsinitramfs", image});
    if (!out) return std::unexpected(out.error());
    std::vector<std::string> paths;
    for (auto& l : lines_of(*out))
      if (l != ".") paths.push_back(l.rfind("./", 0) == 0 ? l.substr(2) : l);
    return paths;
  }
  Result<std::optional<std::string>> read(const std::string& image,
                                          const std::string& path) override {
    // unmkinitramfs has no single-file mode: unpack into a private directory
    // on disk (/var/tmp; an unpacked initramfs outgrows a small /run).
    std::string tmpl = scratch_ + "/pt-boot-check.XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      return fail(scratch_, "cannot create scratch space to unpack the initramfs", errno);
    const std::string dir = tmpl;
    std::error_code ec;
    auto r = run_capture({"unmkinitramfs", image, dir});
    auto content = r ? read_unpacked(dir, path) : std::unexpected(r.error());
    std::filesystem::remove_all(dir, ec);
    return content;
  }

 private:
  std::string scratch_;
};

class Dracut final : public InitramfsReader {
 public:
  std::string flavor() const override { return "dracut"; }
  Result<std::vector<std::string>> list(const std::string& image) override {
    auto out = run_capture({"lsinitrd", image});
    if (!out) return std::unexpected(out.error());
    // ls -l lines: "-rwxr-xr-x 1 root root 12 Nov 23 10:00 usr/sbin/pt-bind".
    std::vector<std::string> paths;
    for (const auto& l : lines_of(*out)) {
      if (l.size() < 11 || std::string("-dlcbps").find(l[0]) == std::string::npos) continue;
      if (l.find_first_not_of("rwxsStT-", 1) < 10) continue;
      std::istringstream in(l);
      std::string field;
      std::vector<std::string> fields;
      while (in >> field) fields.push_back(field);
      if (fields.size() < 9) continue;
      auto arrow = std::find(fields.begin(), fields.end(), "->");
      std::string p = *(arrow == fields.end() ? fields.end() - 1 : arrow - 1);
      if (p.rfind("./", 0) == 0) p = p.substr(2);
      if (p != ".") paths.push_back(p);
    }
    return paths;
  }
  Result<std::optional<std::string>> read(const std::string& image,
                                          const std::string& path) override {
    auto listing = list(image);
    if (!listing) return std::unexpected(listing.error());
    if (std::find(listing->begin(), listing->end(), path) == listing->end())
      return std::optional<std::string>();
    auto out = run_capture({"lsinitrd", "-f", path, image});
    if (!out) return std::unexpected(out.error());
    return std::optional<std::string>(*out);
  }
};

bool has_suffix(const std::vector<std::string>& paths, const std::string& suffix) {
  return std::any_of(paths.begin(), paths.end(), [&](const std::string& p) {
    return p.size() >= suffix.size() &&
           p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0;
  });
}

bool has_module(const std::vector<std::string>& paths, const std::string& name) {
  for (const char* ext : {".ko", ".ko.xz", ".ko.zst", ".ko.gz"})
    if (has_suffix(paths, "/" + name + ext)) return true;
  return false;
}

}  // namespace

std::unique_ptr<InitramfsReader> make_initramfs_reader(const Root& root) {
  if (path_exists(root, "/usr/bin/lsinitrd") &&
      !path_exists(root, "/usr/sbin/update-initramfs"))
    return std::make_unique<Dracut>();
  return std::make_unique<InitramfsTools>(root.path("/var/tmp"));
}

Result<std::string> default_initramfs(const Root& root) {
  std::string release;
  if (root.is_real()) {
    struct utsname u {};
    ::uname(&u);
    release = u.release;
  } else {
    auto names = list_dir(root, "/lib/modules");
    if (names.empty())
      return fail("/lib/modules", "holds no kernel; name the initramfs with --initramfs", ENOENT);
    // Newest by version: 6.12 after 6.9.
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
      return ::strverscmp(a.c_str(), b.c_str()) < 0;
    });
    release = names.back();
  }
  for (const std::string& p :
       {"/boot/initrd.img-" + release, "/boot/initramfs-" + release + ".img"})
    if (path_exists(root, p)) return p;
  return fail("/boot/initrd.img-" + release,
              "no initramfs for kernel " + release + "; build one (update-initramfs -c -k " +
                  release + " or dracut) or name it with --initramfs",
              ENOENT);
}

Result<BootCheck> boot_check(const Root& root, InitramfsReader& reader, const std::string& image,
                             const std::string& sbindir) {
  BootCheck bc;
  bc.image = image;
  if (!path_exists(root, kConfPath)) {
    bc.ok.push_back(std::string("no ") + kConfPath +
                    ": nothing to claim at boot, so the initramfs needs no pt");
    return bc;
  }
  auto conf = load_conf(root);
  if (!conf) return std::unexpected(conf.error());
  auto paths = reader.list(root.path(image));
  if (!paths) return std::unexpected(paths.error());
  const std::string rebuild = reader.flavor() == "dracut" ? "dracut -f" : "update-initramfs -u";

  const std::string tool = sbindir.substr(sbindir.find_first_not_of('/')) + "/pt-bind";
  if (std::find(paths->begin(), paths->end(), tool) != paths->end())
    bc.ok.push_back("/" + tool + " is inside");
  else
    bc.problems.push_back("/" + tool + " is missing: install pt's " + reader.flavor() +
                          " hook, then run " + rebuild);

  const std::string hook =
      reader.flavor() == "dracut" ? "dracut/hooks/pre-udev/30-pt-boot.sh" : "scripts/init-top/pt";
  if (has_suffix(*paths, hook))
    bc.ok.push_back("the boot hook (" + hook + ") is inside");
  else
    bc.problems.push_back("the boot hook " + hook + " is missing: nothing runs pt-bind boot; run " +
                          rebuild);

  for (const char* m : {"vfio-pci", "vfio_iommu_type1"}) {
    if (has_module(*paths, m))
      bc.ok.push_back(std::string("module ") + m + " is inside");
    else
      bc.problems.push_back(std::string("module ") + m +
                            " is missing: vfio-pci cannot bind before the root is mounted");
  }

  auto inside = reader.read(root.path(image), "etc/pt/pt.conf");
  if (!inside) return std::unexpected(inside.error());
  auto current = read_bytes(root.path(kConfPath));
  if (!current)
    return fail(kConfPath, "cannot read the configuration: " + current.error().message,
                current.error().err);
  if (!*inside)
    bc.problems.push_back(std::string(kConfPath) + " is missing from the initramfs: run " +
                          rebuild);
  else if (**inside != *current)
    bc.problems.push_back(std::string("the initramfs holds an older ") + kConfPath + ": run " +
                          rebuild);
  else
    bc.ok.push_back(std::string(kConfPath) + " inside is current");
  int vfio = 0;
  for (const auto& d : conf->devices) vfio += d.boot == BootAction::vfio;
  bc.ok.push_back(std::to_string(vfio) + " device(s) with boot = \"vfio\" in " + kConfPath);
  return bc;
}

}  // namespace pt
