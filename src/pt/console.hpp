// Consoles and framebuffers: what the VT layer, fbdev and the firmware
// framebuffer devices look like, which of them belong to a GPU, and the
// changes pt-console release makes (and restore undoes) before a detach.
//
// Everything is found by name, never by number: vtcon numbers and fb numbers
// change with every driver that registers or goes away.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pt/context.hpp"
#include "pt/error.hpp"
#include "pt/journal.hpp"
#include "pt/root.hpp"

namespace pt::console {

inline constexpr const char* kFbconName = "frame buffer device";

// /sys/class/vtconsole/vtconN.
struct VtConsole {
  std::string node;  // "vtcon1"; for messages only
  std::string name;  // "frame buffer device", without the mark
  std::string mark;  // "S" (system driver), "M" (modular) or "" when absent
  bool bound = false;
  bool is_fbcon() const { return name == kFbconName; }
};

// /sys/class/graphics/fbN.
struct Framebuffer {
  std::string node;      // "fb0"
  std::string name;      // "virtio_gpudrmfb", "VESA VGA", "EFI VGA", "simpledrmdrmfb"
  std::string device;    // realpath of its device link, unprefixed; "" without one
  std::string driver;    // driver of that device ("virtio_gpu", "vesafb")
  std::string pci;       // the PCI function it hangs under ("0000:01:00.0"), or ""
  std::string platform;  // the firmware framebuffer device it is, or ""
  std::string gpu;       // the GPU it belongs to: pci, else its firmware device's gpu
};

// How a firmware framebuffer was tied to a GPU.
enum class Attribution {
  none,      // no GPU found
  parent,    // the kernel made the platform device a child of the GPU (6.9+)
  iomem,     // its range sits in one of the GPU's BARs (/proc/iomem)
  boot_vga,  // a guess: the boot VGA device
};
const char* attribution_name(Attribution a);

// /sys/bus/platform/devices/{simple,efi,vesa,vga}-framebuffer.N.
struct FirmwareFb {
  std::string name;                       // "vesa-framebuffer.0"
  std::string driver;                     // bound driver ("vesafb", "simpledrm"), or ""
  std::string device;                     // realpath, unprefixed
  std::vector<std::string> framebuffers;  // fbN it registered
  std::string gpu;                        // the PCI GPU it shows, or ""
  Attribution how = Attribution::none;
};

// FBIOGET_CON2FBMAP for consoles 1..63, read from /dev/fbN when that is a
// character device; empty when it cannot be read (a --root tree).
struct Con2Fb {
  bool known = false;
  std::map<int, int> map;  // console (1-based) -> fb index; consoles mapped to none are absent
};

struct State {
  std::vector<VtConsole> vtconsoles;
  std::vector<Framebuffer> framebuffers;
  std::vector<FirmwareFb> firmware;
  Con2Fb con2fb;
  std::optional<std::string> active_vt;  // "tty1" from /sys/class/tty/tty0/active
  std::string boot_vga;                  // PCI function with boot_vga=1, or ""

  const VtConsole* fbcon() const;
  const VtConsole* vtconsole(const std::string& name) const;
  const FirmwareFb* firmware_fb(const std::string& name) const;
  std::vector<const Framebuffer*> framebuffers_of(const std::string& gpu) const;
  std::vector<const FirmwareFb*> firmware_of(const std::string& gpu) const;
};

// The nesting of /proc/iomem, parsed: each entry with its depth and name.
struct IomemEntry {
  int depth = 0;
  std::string name;
  std::vector<int> parents;  // indices of enclosing entries, outermost first
};
std::vector<IomemEntry> parse_iomem(const std::string& text);

// Reads everything list shows. Missing directories are empty lists, never errors.
Result<State> discover(const Root& root);

// "(M) frame buffer device" -> {"M", "frame buffer device"}.
std::pair<std::string, std::string> split_mark(const std::string& raw);

// One step of a release, restore, bind or unbind.
struct Step {
  ConsoleChange change;  // kind, name, driver, node
  std::string path;      // the file written
  std::string value;     // what is written
  bool bind = false;     // true: a bind (restore), false: an unbind
  std::string note;      // why, for output
};

struct Plan {
  std::string gpu;
  std::vector<Step> steps;           // in execution order
  std::vector<std::string> notes;    // what was left alone and why
  std::vector<std::string> already;  // done before (recorded earlier), for idempotent release
};

// What release would do for GPU on STATE given what JOURNAL already recorded.
// GPU must be a display-class PCI function (checked by the caller).
Plan plan_release(const State& state, const std::string& gpu, const Journal& journal);

// Writes one step and reads it back; the error names the object and, for a
// vtconsole the kernel silently kept, the reason.
Status apply(Context& ctx, const Step& step);

// The platform driver for a firmware framebuffer device name that is
// registered now ("vesa-framebuffer.0" -> "vesafb"), or "" if none is.
std::string default_fb_driver(const Root& root, const std::string& device);

// Console lists as the journal keeps them: {1,2,3,7} <-> "1-3+7".
std::string console_ranges(const std::vector<int>& consoles);

// Maps CONSOLES to FB_NODE ("fb1") with FBIOPUT_CON2FBMAP on its /dev node,
// which must be a character device under the root.
Status set_con2fb(const Root& root, const std::string& fb_node, const std::vector<int>& consoles);

// "vesa-framebuffer.0": one of the four kinds the kernel registers.
bool is_firmware_fb_name(const std::string& name);

}  // namespace pt::console
