// completion/pt.bash as bash runs it: the completion function called with
// the COMP_WORDS bash would pass (it splits words at ':' and '='), against
// the built tools and a fixture tree named by --root.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "run_tool.hpp"

namespace {

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The candidates, one a line, for the last of WORDS (COMP_CWORD points at
// it); COMP_TYPE 9 is a plain Tab, 63 the listing of a second Tab.
std::vector<std::string> complete(const std::vector<std::string>& words, int comp_type = 63) {
  std::string script = "source " + quote(PT_COMPLETION) + " && PATH=" + quote(PT_BIN_DIR) +
                       ":$PATH && COMP_WORDS=(";
  for (const auto& w : words) script += quote(w) + " ";
  script += ") && COMP_CWORD=" + std::to_string(words.size() - 1) +
            " && COMP_TYPE=" + std::to_string(comp_type) +
            " && _pt_complete && printf '%s\\n' \"${COMPREPLY[@]}\"";
  std::string cmd = "bash --norc --noprofile -c " + quote(script) + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  REQUIRE(::pclose(p) == 0);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1)
    if (nl > start) lines.push_back(out.substr(start, nl - start));
  return lines;
}

using Words = std::vector<std::string>;

}  // namespace

TEST_SUITE("completion") {
  TEST_CASE("subcommands and options come from the tool's --help") {
    CHECK(complete({"pt-bind", ""}) == Words{"list", "show", "detach", "attach", "set", "unset", "boot",
                                             "boot-check", "udev-rules", "udev-match", "recover"});
    CHECK(complete({"pt-console", "re"}) == Words{"release", "restore"});
    CHECK(complete({"pt-bind", "--r"}) == Words{"--root"});
    // A subcommand's own options, then the tool's (CLI11 accepts them after it).
    auto opts = complete({"pt-bind", "detach", "--"});
    CHECK(opts.front() == "--help");
    CHECK(opts.size() == 12);
    for (const auto* o : {"--to", "--force", "--force-group", "--root", "--json", "--dry-run", "--lock-timeout"})
      CHECK(std::count(opts.begin(), opts.end(), o) == 1);
  }

  TEST_CASE("devices under --root, with class names while several match") {
    pt::test::Fixture fx;
    pt::test::Fixture::gpu_with_audio(fx);
    const auto root = fx.dir();
    CHECK(complete({"pt-bind", "--root", root, "detach", ""}) ==
          Words{"0000:01:00.0 (VGA compatible controller)", "0000:01:00.1 (Audio device)"});
    // --root=DIR: bash hands over "--root", "=", DIR.
    CHECK(complete({"pt-bind", "--root", "=", root, "show", ""}).size() == 2);
    // One match: the bare address, which is what bash inserts. bash split
    // "0000:01:00.1" at the colons, so the reply is the last part.
    CHECK(complete({"pt-bind", "--root", root, "attach", "0000", ":", "01", ":", "00.1"}) == Words{"00.1"});
    CHECK(complete({"pt-bind", "--root", root, "attach", "0000", ":", "01", ":", "00."}) ==
          Words{"00.0 (VGA compatible controller)", "00.1 (Audio device)"});
    // Menu completion inserts every candidate whole: no class names then.
    CHECK(complete({"pt-reset", "--root", root, "methods", "0"}, 37) == Words{"0000:01:00.0", "0000:01:00.1"});
    // pt-reset takes devices before its subcommand.
    CHECK(complete({"pt-reset", "--root", root, ""}, 37) == Words{"methods", "0000:01:00.0", "0000:01:00.1"});
    // Display tools offer display functions only.
    CHECK(complete({"pt-drm", "--root", root, "check", ""}) == Words{"0000:01:00.0"});
    CHECK(complete({"pt-vgaarb", "--root", root, "show", ""}) == Words{"0000:01:00.0"});
    // No tree, no devices: a --root without PCI devices offers none.
    CHECK(complete({"pt-bind", "--root", root + "/dev", "detach", ""}).empty());
  }

  TEST_CASE("option and positional values") {
    pt::test::Fixture fx;
    pt::test::Fixture::gpu_with_audio(fx);
    const auto root = fx.dir();
    CHECK(complete({"pt-bind", "list", "--class", ""}) == Words{"display", "audio", "all"});
    CHECK(complete({"pt-reset", "--method", "f"}) == Words{"flr"});
    CHECK(complete({"pt-vgaarb", "--root", root, "decodes", "0000:01:00.0", "io"}) == Words{"io", "io+mem"});
    // Drivers of the tree: the fixture registers these three.
    CHECK(complete({"pt-bind", "--root", root, "detach", "--to", ""}) == Words{"nvidia", "snd_hda_intel", "vfio-pci"});
    CHECK(complete({"pt-bind", "--root", root, "set", "0000:01:00.0", "v"}) == Words{"vfio-pci"});
    // --root completes directories.
    CHECK(complete({"pt-bind", "--root", root + "/s"}) == Words{root + "/sys"});
    // A count (--timeout SECONDS) has no candidates.
    CHECK(complete({"pt-bind", "--timeout", ""}).empty());
  }
}
