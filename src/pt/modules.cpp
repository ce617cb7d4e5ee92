#include "pt/modules.hpp"

#include <libkmod.h>
#include <sys/utsname.h>

#include <cerrno>
#include <vector>

#include "pt/sysfs.hpp"

namespace pt {

bool driver_registered(const Root& root, const std::string& driver) {
  return !driver.empty() && path_exists(root.path("/sys/bus/pci/drivers/" + driver));
}

std::string module_of_driver(const Root& root, const std::string& driver) {
  if (driver.empty()) return "";
  return link_basename(root.path("/sys/bus/pci/drivers/" + driver + "/module")).value_or("");
}

namespace {

std::string kernel_release(const Root& root) {
  if (auto r = read_attr(root.path("/proc/sys/kernel/osrelease")); r && !r->empty()) return *r;
  struct utsname u {};
  ::uname(&u);
  return u.release;
}

class KmodLoader final : public ModuleLoader {
 public:
  explicit KmodLoader(Root root) : root_(std::move(root)) {
    dir_ = root_.path("/lib/modules/" + kernel_release(root_));
  }
  ~KmodLoader() override {
    if (ctx_) kmod_unref(ctx_);
  }

  bool knows(const std::string& driver) override {
    if (driver_registered(root_, driver)) return true;
    kmod_list* list = nullptr;
    if (!lookup(driver, &list)) return false;
    bool found = list != nullptr;
    kmod_module_unref_list(list);
    return found;
  }

  Status ensure_driver(const std::string& driver, const std::string& module) override {
    if (driver_registered(root_, driver)) return {};
    kmod_list* list = nullptr;
    if (!module.empty() && !lookup(module, &list))
      return fail(dir_, "cannot open the module index; run depmod or check --root", errno);
    if (!list && !lookup(driver, &list))
      return fail(dir_, "cannot open the module index; run depmod or check --root", errno);
    if (!list)
      return fail(driver, "no PCI driver and no kernel module of that name (looked in " + dir_ +
                              "); check the name with 'ls /sys/bus/pci/drivers' or 'modinfo " + driver + "'",
                  ENOENT);
    Status result;
    if (!root_.is_real()) {
      result = fail(driver, "driver is not registered under " + root_.dir() +
                                " and pt does not load modules into the running kernel while --root is given",
                    ENOENT);
    } else {
      kmod_list* it;
      kmod_list_foreach(it, list) {
        kmod_module* mod = kmod_module_get_module(it);
        int r = kmod_module_probe_insert_module(mod, 0, nullptr, nullptr, nullptr, nullptr);
        std::string name = kmod_module_get_name(mod);
        kmod_module_unref(mod);
        if (r < 0 && r != -EEXIST) {
          result = fail(name, "loading the module for driver " + driver + " failed", -r);
          break;
        }
      }
    }
    kmod_module_unref_list(list);
    if (!result) return result;
    if (!driver_registered(root_, driver))
      return fail(driver, "the module loaded but registers no PCI driver of that name; name a PCI driver",
                  ENOENT);
    return {};
  }

 private:
  bool lookup(const std::string& name, kmod_list** list) {
    if (!ctx_) {
      // Under --root the tree's modprobe.d (aliases, blacklists) applies, not ours.
      std::vector<std::string> paths;
      std::vector<const char*> cpaths;
      if (!root_.is_real()) {
        for (const char* p : {"/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/lib/modprobe.d"})
          paths.push_back(root_.path(p));
        for (const auto& p : paths) cpaths.push_back(p.c_str());
        cpaths.push_back(nullptr);
      }
      ctx_ = kmod_new(dir_.c_str(), cpaths.empty() ? nullptr : cpaths.data());
      if (!ctx_) return false;
      kmod_load_resources(ctx_);
    }
    // Driver names use '-', module names '_'; kmod normalises both.
    return kmod_module_new_from_lookup(ctx_, name.c_str(), list) >= 0;
  }

  Root root_;
  std::string dir_;
  kmod_ctx* ctx_ = nullptr;
};

}  // namespace

std::unique_ptr<ModuleLoader> make_kmod_loader(const Root& root) { return std::make_unique<KmodLoader>(root); }

}  // namespace pt
