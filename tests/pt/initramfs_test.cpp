#include "pt/initramfs.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <map>

#include "fixture.hpp"

using namespace pt;
using pt::test::Fixture;

namespace {

// An initramfs as a list of paths with contents.
class FakeInitramfs final : public InitramfsReader {
 public:
  FakeInitramfs(std::string flavor, std::map<std::string, std::string> files)
      : flavor_(std::move(flavor)), files_(std::move(files)) {}
  std::string flavor() const override { return flavor_; }
  Result<std::vector<std::string>> list(const std::string& image) override {
    images.push_back(image);
    std::vector<std::string> out;
    for (const auto& [p, c] : files_) out.push_back(p);
    return out;
  }
  Result<std::optional<std::string>> read(const std::string&, const std::string& path) override {
    auto it = files_.find(path);
    if (it == files_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  std::vector<std::string> images;

 private:
  std::string flavor_;
  std::map<std::string, std::string> files_;
};

const char* kConf = "[device.gpu]\nbdf = \"0000:01:00.0\"\nboot = \"vfio\"\n";

std::map<std::string, std::string> complete(const std::string& conf) {
  return {{"usr/sbin/pt-bind", "ELF"},
          {"etc/pt/pt.conf", conf},
          {"scripts/init-top/pt", "#!/bin/sh"},
          {"usr/lib/modules/6.1.0-50-amd64/kernel/drivers/vfio/pci/vfio-pci.ko", ""},
          {"usr/lib/modules/6.1.0-50-amd64/kernel/drivers/vfio/vfio_iommu_type1.ko", ""}};
}

void write_conf(Fixture& fx, const std::string& text) {
  fx.write_file("/etc/pt/pt.conf", text);
  ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
}

}  // namespace

TEST_CASE("boot-check: a complete, current initramfs has no problems") {
  Fixture fx;
  write_conf(fx, kConf);
  FakeInitramfs img("initramfs-tools", complete(kConf));
  auto bc = boot_check(fx.root(), img, "/boot/initrd.img-6.1.0-50-amd64", "/usr/sbin");
  REQUIRE(bc);
  CHECK(bc->problems.empty());
  CHECK(img.images == std::vector<std::string>{fx.dir() + "/boot/initrd.img-6.1.0-50-amd64"});
  CHECK(bc->ok == std::vector<std::string>{
                      "/usr/sbin/pt-bind is inside",
                      "the boot hook (scripts/init-top/pt) is inside", "module vfio-pci is inside",
                      "module vfio_iommu_type1 is inside", "/etc/pt/pt.conf inside is current",
                      "1 device(s) with boot = \"vfio\" in /etc/pt/pt.conf"});
}

TEST_CASE("boot-check: a stale pt.conf, a missing hook or module, each with what to do") {
  Fixture fx;
  write_conf(fx, std::string(kConf) + "# edited since\n");
  auto files = complete(kConf);
  files.erase("scripts/init-top/pt");
  files.erase("usr/lib/modules/6.1.0-50-amd64/kernel/drivers/vfio/vfio_iommu_type1.ko");
  FakeInitramfs img("initramfs-tools", files);
  auto bc = boot_check(fx.root(), img, "/boot/initrd.img-6.1.0-50-amd64", "/usr/sbin");
  REQUIRE(bc);
  CHECK(bc->problems ==
        std::vector<std::string>{
            "the boot hook scripts/init-top/pt is missing: nothing runs pt-bind boot; run "
            "update-initramfs -u",
            "module vfio_iommu_type1 is missing: vfio-pci cannot bind before the root is mounted",
            "the initramfs holds an older /etc/pt/pt.conf: run update-initramfs -u"});
}

TEST_CASE("boot-check: dracut's layout, pt-bind elsewhere, compressed modules") {
  Fixture fx;
  write_conf(fx, kConf);
  FakeInitramfs img(
      "dracut",
      {{"usr/local/sbin/pt-bind", ""},
       {"etc/pt/pt.conf", kConf},
       {"usr/lib/dracut/hooks/pre-udev/30-pt-boot.sh", ""},
       {"usr/lib/modules/6.1.0-50-amd64/kernel/drivers/vfio/pci/vfio-pci.ko.xz", ""},
       {"usr/lib/modules/6.1.0-50-amd64/kernel/drivers/vfio/vfio_iommu_type1.ko.xz", ""}});
  auto bc = boot_check(fx.root(), img, "/boot/initramfs-6.1.0-50-amd64.img", "/usr/local/sbin");
  REQUIRE(bc);
  CHECK(bc->problems.empty());
  auto moved = boot_check(fx.root(), img, "/boot/initramfs-6.1.0-50-amd64.img", "/usr/sbin");
  REQUIRE(moved);
  CHECK(moved->problems ==
        std::vector<std::string>{
            "/usr/sbin/pt-bind is missing: install pt's dracut hook, then run dracut -f"});
}

TEST_CASE("boot-check: without pt.conf the initramfs needs no pt") {
  Fixture fx;
  FakeInitramfs img("initramfs-tools", {});
  auto bc = boot_check(fx.root(), img, "/boot/initrd.img-6.1.0-50-amd64", "/usr/sbin");
  REQUIRE(bc);
  CHECK(bc->problems.empty());
  CHECK(img.images.empty());
}

TEST_CASE("the default initramfs is the newest kernel's under a --root tree") {
  Fixture fx;
  fx.write_file("/lib/modules/6.1.0-50-amd64/modules.dep", "");
  fx.write_file("/lib/modules/6.12.0-1-amd64/modules.dep", "");
  fx.write_file("/lib/modules/6.9.0-1-amd64/modules.dep", "");
  auto none = default_initramfs(fx.root());
  REQUIRE_FALSE(none);
  CHECK(none.error().message.find("update-initramfs -c -k 6.12.0-1-amd64") != std::string::npos);
  fx.write_file("/boot/initramfs-6.12.0-1-amd64.img", "");
  auto dracut = default_initramfs(fx.root());
  REQUIRE(dracut);
  CHECK(*dracut == "/boot/initramfs-6.12.0-1-amd64.img");
  fx.write_file("/boot/initrd.img-6.12.0-1-amd64", "");
  CHECK(*default_initramfs(fx.root()) == "/boot/initrd.img-6.12.0-1-amd64");
}
