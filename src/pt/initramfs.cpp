#include "pt/initramfs.hpp"

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

#include "pt/spawn.hpp"
#include "pt/sysfs.hpp"
#include "pt/try.hpp"

namespace pt {

namespace {

// Runs ARGV (in CWD when given) with stdout captured; stderr goes to the
// caller's stderr.
Result<std::string> run_capture(const std::vector<std::string>& argv,
                                std::optional<std::string> cwd = std::nullopt) {
  auto oc =
      spawn::exec(Root{}, argv, {.capture = true, .search_path = true, .cwd = std::move(cwd)});
  if (!oc) return fail(argv[0], "cannot start it", oc.error().err);
  if (oc->code == 127)
    return fail(argv[0], "is not installed; install the package of the system's initramfs builder",
                ENOENT);
  if (oc->code != 0)
    return fail(argv[0] + (argv.size() > 1 ? " " + argv.back() : std::string()),
                "failed (exit " + std::to_string(oc->code) + ")");
  return std::move(oc->out);
}

// A reader that unpacks the image once, with the builder's own tool, into a
// private directory on disk (/var/tmp: an unpacked initramfs outgrows a
// small /run) that lives as long as the reader. boot-check wants the listing
// and one file, and every pass over a compressed image costs seconds, a
// minute under emulation: lsinitrd's listing alone decompresses the image
// five times, and a dracut boot-check that listed twice and then extracted
// took over two minutes in the TCG testbed. The image is the system's own
// boot image, which runs as root at every boot, so unpacking it as root
// gives it nothing it does not already have.
class Unpacking : public InitramfsReader {
 public:
  explicit Unpacking(std::string scratch) : scratch_(std::move(scratch)) {}
  ~Unpacking() override { discard(); }
  Unpacking(const Unpacking&) = delete;
  Unpacking& operator=(const Unpacking&) = delete;

  Result<std::vector<std::string>> list(const std::string& image) override {
    const std::string base = PT_TRY(unpacked(image));
    std::vector<std::string> paths;
    std::error_code ec;
    // Symlinks are listed, never followed: the tree is the archive's.
    std::filesystem::recursive_directory_iterator it(base, ec), end;
    for (; !ec && it != end; it.increment(ec))
      paths.push_back(std::filesystem::relative(it->path(), base, ec).generic_string());
    if (ec) return fail(base, "cannot list the unpacked initramfs", ec.value());
    return paths;
  }

  Result<std::optional<std::string>> read(const std::string& image,
                                          const std::string& path) override {
    const std::string base = PT_TRY(unpacked(image));
    const std::string file = base + "/" + path;
    struct stat st {};
    if (::lstat(file.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return std::optional<std::string>();
      return fail(file, "cannot read the unpacked initramfs", errno);
    }
    // The archive decides what each path is: a link out of the tree, a FIFO
    // or a huge file there is an error, not a read of the host or a hang.
    if (S_ISLNK(st.st_mode))
      return fail(image, "holds /" + path + " as a symbolic link, not a file; rebuild it", ELOOP);
    return std::optional<std::string>(PT_TRY(read_bytes(file)));
  }

 protected:
  // Unpacks IMAGE into DIR, an empty private directory.
  virtual Status unpack(const std::string& image, const std::string& dir) = 0;
  // Where the main archive's tree is once DIR holds the unpacked image.
  virtual std::string main_tree(const std::string& dir) const { return dir; }

 private:
  Result<std::string> unpacked(const std::string& image) {
    if (!dir_.empty() && image_ == image) return main_tree(dir_);
    discard();
    std::string tmpl = scratch_ + "/pt-boot-check.XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      return fail(scratch_, "cannot create scratch space to unpack the initramfs", errno);
    if (auto st = unpack(image, tmpl); !st) {
      std::error_code ec;
      std::filesystem::remove_all(tmpl, ec);
      return std::unexpected(st.error());
    }
    image_ = image;
    dir_ = tmpl;
    return main_tree(dir_);
  }
  void discard() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }

  std::string scratch_;
  std::string image_;
  std::string dir_;
};

class InitramfsTools final : public Unpacking {
 public:
  using Unpacking::Unpacking;
  std::string flavor() const override { return "initramfs-tools"; }

 protected:
  Status unpack(const std::string& image, const std::string& dir) override {
    PT_TRY(run_capture({"unmkinitramfs", image, dir}));
    return {};
  }
  // With early microcode in front, unmkinitramfs puts the main archive in
  // main/.
  std::string main_tree(const std::string& dir) const override {
    struct stat st {};
    const std::string main = dir + "/main";
    return ::lstat(main.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? main : dir;
  }
};

class Dracut final : public Unpacking {
 public:
  using Unpacking::Unpacking;
  std::string flavor() const override { return "dracut"; }

 protected:
  // lsinitrd --unpack skips an early microcode archive itself and unpacks
  // the main one into its working directory.
  Status unpack(const std::string& image, const std::string& dir) override {
    PT_TRY(run_capture({"lsinitrd", "--unpack", image}, dir));
    return {};
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
    return std::make_unique<Dracut>(root.path("/var/tmp"));
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
