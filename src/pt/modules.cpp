#include "pt/modules.hpp"

#include <dlfcn.h>
#include <libkmod.h>
#include <sys/utsname.h>

#include <cerrno>
#include <string>
#include <type_traits>
#include <vector>

#include "pt/sysfs.hpp"
#include "pt/try.hpp"

namespace pt {

bool driver_registered(const Root& root, const std::string& driver) {
  return !driver.empty() && path_exists(root, "/sys/bus/pci/drivers/" + driver);
}

std::string module_of_driver(const Root& root, const std::string& driver) {
  if (driver.empty()) return "";
  return link_basename(root, "/sys/bus/pci/drivers/" + driver + "/module").value_or("");
}

std::string pci_driver_of_module(const Root& root, const std::string& module) {
  if (module.empty()) return "";
  std::string found;
  for (const auto& n : list_dir(root, "/sys/module/" + module + "/drivers")) {
    if (!n.starts_with("pci:")) continue;
    if (!found.empty()) return "";
    found = n.substr(4);
  }
  return found;
}

namespace {

std::string kernel_release(const Root& root) {
  if (auto r = read_attr(root, "/proc/sys/kernel/osrelease"); r && !r->empty()) return *r;
  struct utsname u {};
  ::uname(&u);
  return u.release;
}

// libkmod is opened on first use, not linked. Debian's libkmod brings
// libcrypto, libzstd, liblzma and libz along (about 22,000 relocations),
// which every pt tool would map and relocate at each start, although only
// pt-bind loads modules, and only when a driver is not registered yet. Under
// emulation that start-up cost was most of a pt-drm or pt-vgaarb run.
// (systemd opens libkmod the same way.)
struct Kmod {
  decltype(&::kmod_new) new_ctx;
  decltype(&::kmod_unref) unref;
  decltype(&::kmod_load_resources) load_resources;
  decltype(&::kmod_module_new_from_lookup) new_from_lookup;
  decltype(&::kmod_module_unref_list) unref_list;
  decltype(&::kmod_list_next) list_next;
  decltype(&::kmod_module_get_module) get_module;
  decltype(&::kmod_module_probe_insert_module) probe_insert;
  decltype(&::kmod_module_get_name) get_name;
  decltype(&::kmod_module_unref) module_unref;
};

// The library's functions, or the reason it cannot be loaded.
const Kmod* kmod_api(std::string* why) {
  static std::string error;
  static const Kmod* api = []() -> const Kmod* {
    void* h = ::dlopen("libkmod.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = ::dlerror();
      error = e ? e : "dlopen failed";
      return nullptr;
    }
    static Kmod k;
    bool ok = true;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
      if (!fn) {
        ok = false;
        error = std::string("libkmod.so.2 has no ") + name;
      }
    };
    sym(k.new_ctx, "kmod_new");
    sym(k.unref, "kmod_unref");
    sym(k.load_resources, "kmod_load_resources");
    sym(k.new_from_lookup, "kmod_module_new_from_lookup");
    sym(k.unref_list, "kmod_module_unref_list");
    sym(k.list_next, "kmod_list_next");
    sym(k.get_module, "kmod_module_get_module");
    sym(k.probe_insert, "kmod_module_probe_insert_module");
    sym(k.get_name, "kmod_module_get_name");
    sym(k.module_unref, "kmod_module_unref");
    return ok ? &k : nullptr;
  }();
  if (!api && why) *why = error;
  return api;
}

class KmodLoader final : public ModuleLoader {
 public:
  explicit KmodLoader(Root root) : root_(std::move(root)) {
    dir_ = root_.path("/lib/modules/" + kernel_release(root_));
  }
  ~KmodLoader() override {
    if (ctx_) kmod_->unref(ctx_);
  }

  bool knows(const std::string& driver) override {
    if (driver_registered(root_, driver)) return true;
    kmod_list* list = nullptr;
    if (!lookup(driver, &list)) return false;
    bool found = list != nullptr;
    kmod_->unref_list(list);
    return found;
  }

  Status ensure_driver(const std::string& driver, const std::string& module) override {
    if (driver_registered(root_, driver)) return {};
    PT_TRY(need_api("find the module of driver " + driver,
                    "install libkmod2, or load the module with modprobe"));
    kmod_list* list = nullptr;
    if (!module.empty()) PT_TRY(index_lookup(module, &list));
    if (!list) PT_TRY(index_lookup(driver, &list));
    if (!list)
      return fail(driver,
                  "no PCI driver and no kernel module of that name (looked in " + dir_ +
                      "); check the name with 'ls /sys/bus/pci/drivers' or 'modinfo " + driver +
                      "'",
                  ENOENT);
    Status result = insert(list, driver, "driver " + driver);
    kmod_->unref_list(list);
    if (!result) return result;
    if (!driver_registered(root_, driver))
      return fail(driver,
                  "the module loaded but registers no PCI driver of that name; name a PCI driver",
                  ENOENT);
    return {};
  }

  Result<std::vector<std::string>> lookup_alias(const std::string& alias) override {
    PT_TRY(need_api("look up " + alias, "install libkmod2"));
    kmod_list* list = nullptr;
    PT_TRY(index_lookup(alias, &list));
    std::vector<std::string> out;
    for (kmod_list* it = list; it; it = kmod_->list_next(list, it)) {
      kmod_module* mod = kmod_->get_module(it);
      out.push_back(kmod_->get_name(mod));
      kmod_->module_unref(mod);
    }
    kmod_->unref_list(list);
    return out;
  }

  Status load_module(const std::string& module) override {
    if (path_exists(root_, "/sys/module/" + module + "/drivers")) return {};
    PT_TRY(need_api("load module " + module, "install libkmod2, or load it with modprobe"));
    kmod_list* list = nullptr;
    PT_TRY(index_lookup(module, &list));
    if (!list)
      return fail(module, "no kernel module of that name (looked in " + dir_ + ")", ENOENT);
    Status result = insert(list, module, "module " + module);
    kmod_->unref_list(list);
    return result;
  }

 private:
  // libkmod, opened on first use: "cannot load libkmod to PURPOSE (why); ADVICE".
  Status need_api(const std::string& purpose, const std::string& advice) {
    std::string why;
    if (!kmod_ && !(kmod_ = kmod_api(&why)))
      return fail("libkmod.so.2", "cannot load libkmod to " + purpose + " (" + why + "); " + advice,
                  ELIBACC);
    return {};
  }

  Status index_lookup(const std::string& name, kmod_list** list) {
    if (!lookup(name, list))
      return fail(dir_, "cannot open the module index; run depmod or check --root", errno);
    return {};
  }

  // Inserts the modules of LIST with their dependencies; WHAT names what
  // they are for in errors, SUBJECT is the error's subject under --root.
  Status insert(kmod_list* list, const std::string& subject, const std::string& what) {
    if (!root_.is_real())
      return fail(subject,
                  what + " is not loaded under " + root_.dir() +
                      " and pt does not load modules into the running kernel while --root is given",
                  ENOENT);
    for (kmod_list* it = list; it; it = kmod_->list_next(list, it)) {
      kmod_module* mod = kmod_->get_module(it);
      int r = kmod_->probe_insert(mod, 0, nullptr, nullptr, nullptr, nullptr);
      std::string name = kmod_->get_name(mod);
      kmod_->module_unref(mod);
      if (r < 0 && r != -EEXIST)
        return fail(name, "loading the module for " + what + " failed", -r);
    }
    return {};
  }

  bool lookup(const std::string& name, kmod_list** list) {
    if (!kmod_ && !(kmod_ = kmod_api(nullptr))) {
      errno = ELIBACC;
      return false;
    }
    if (!ctx_) {
      // Under --root the tree's modprobe.d (aliases, blacklists) applies, not ours.
      std::vector<std::string> paths;
      std::vector<const char*> cpaths;
      if (!root_.is_real()) {
        for (const char* p :
             {"/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/lib/modprobe.d"})
          paths.push_back(root_.path(p));
        for (const auto& p : paths) cpaths.push_back(p.c_str());
        cpaths.push_back(nullptr);
      }
      ctx_ = kmod_->new_ctx(dir_.c_str(), cpaths.empty() ? nullptr : cpaths.data());
      if (!ctx_) return false;
      kmod_->load_resources(ctx_);
    }
    // Driver names use '-', module names '_'; kmod normalises both.
    return kmod_->new_from_lookup(ctx_, name.c_str(), list) >= 0;
  }

  Root root_;
  std::string dir_;
  const Kmod* kmod_ = nullptr;
  kmod_ctx* ctx_ = nullptr;
};

}  // namespace

std::unique_ptr<ModuleLoader> make_kmod_loader(const Root& root) {
  return std::make_unique<KmodLoader>(root);
}

}  // namespace pt
