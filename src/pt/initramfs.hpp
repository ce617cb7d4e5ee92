// What an initramfs holds, for pt-bind boot-check: the distribution's own
// tools read the image (lsinitramfs and unmkinitramfs for initramfs-tools,
// lsinitrd for dracut), behind an interface so tests can fake them.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pt/error.hpp"
#include "pt/conf_file.hpp"
#include "pt/root.hpp"

namespace pt {

class InitramfsReader {
 public:
  virtual ~InitramfsReader() = default;
  // "initramfs-tools" or "dracut": which builder's layout to expect.
  virtual std::string flavor() const = 0;
  // Every path in IMAGE (a real path), without a leading "/".
  virtual Result<std::vector<std::string>> list(const std::string& image) = 0;
  // The content of PATH inside IMAGE, nullopt when it is not there.
  virtual Result<std::optional<std::string>> read(const std::string& image,
                                                  const std::string& path) = 0;
};

// The reader for the builder installed on the system under ROOT: dracut when
// ROOT has its lsinitrd, initramfs-tools otherwise. It runs the host's tools
// on the image file; nothing under ROOT is changed.
std::unique_ptr<InitramfsReader> make_initramfs_reader(const Root& root);

struct BootCheck {
  std::string image;                  // as shown, "/boot/initrd.img-6.1.0-50-amd64"
  std::vector<std::string> ok;        // what is in place
  std::vector<std::string> problems;  // what is missing or stale, with what to do
};

// Checks IMAGE for pt-bind at SBINDIR, pt.conf, the boot hook and vfio-pci
// with vfio_iommu_type1, and compares its pt.conf with ROOT's. Problems make
// the verdict; an absent /etc/pt/pt.conf makes the hook unnecessary.
Result<BootCheck> boot_check(const Root& root, InitramfsReader& reader, const std::string& image,
                             const std::string& sbindir);

// /boot/initrd.img-RELEASE, or /boot/initramfs-RELEASE.img (dracut's own
// name), for RELEASE: the running kernel on the real root, the newest under
// ROOT/lib/modules otherwise.
Result<std::string> default_initramfs(const Root& root);

}  // namespace pt
