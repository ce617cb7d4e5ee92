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
  std::string script =
      "source " + quote(PT_COMPLETION) + " && PATH=" + quote(PT_BIN_DIR) + ":$PATH && COMP_WORDS=(";
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

// "a|b|c": failures then print both sides.
std::string joined(const Words& w) {
  std::string out;
  for (const auto& s : w) out += (out.empty() ? "" : "|") + s;
  return out;
}

}  // namespace

TEST_SUITE("completion") {
  TEST_CASE("subcommands and options come from the tool's --help") {
    CHECK(joined(complete({"pt-bind", ""})) ==
          joined(Words{"list", "show", "detach", "attach", "set", "unset", "vfs", "boot",
                       "boot-check", "export", "udev-rules", "udev-match", "recover"}));
    CHECK(joined(complete({"pt-console", "re"})) == joined(Words{"release", "restore"}));
    CHECK(joined(complete({"pt-bind", "--r"})) == joined(Words{"--root"}));
    // A subcommand's own options, then the tool's (CLI11 accepts them after it).
    auto opts = complete({"pt-bind", "detach", "--"});
    CHECK(opts.front() == "--help");
    CHECK(opts.size() == 12);  // -h and -v do not start with "--"
    for (const auto* o :
         {"--to", "--force", "--force-group", "--rebar", "--root", "--json", "--dry-run", "--lock-timeout"})
      CHECK(std::count(opts.begin(), opts.end(), o) == 1);
  }

  TEST_CASE("pt: its subcommands, devices, and files for snapshots") {
    CHECK(joined(complete({"pt", ""})) ==
          joined(Words{"status", "snapshot", "diff", "metrics", "recover"}));
    pt::test::Fixture fx;
    pt::test::Fixture::gpu_with_audio(fx);
    const auto root = fx.dir();
    CHECK(joined(complete({"pt", "--root", root, "status", "0000", ":", "01", ":", "00."}, 37)) ==
          joined(Words{"00.0", "00.1"}));
    CHECK(joined(complete({"pt", "--root", root, "recover", "0000", ":", "01", ":", "00.1"})) ==
          joined(Words{"00.1"}));
    fx.write_file("/snap-before.json", "{}");
    CHECK(joined(complete({"pt", "diff", root + "/snap-b"})) == joined(Words{root + "/snap-before.json"}));
    CHECK(joined(complete({"pt", "snapshot", "01:00", "-o", root + "/snap-b"})) ==
          joined(Words{root + "/snap-before.json"}));
    auto opts = complete({"pt", "snapshot", "01:00", "--"});
    CHECK(std::count(opts.begin(), opts.end(), "--output") == 1);
    // recover has pt-bind recover's options, --reset-method without --recipe too.
    opts = complete({"pt", "recover", "--"});
    CHECK(std::count(opts.begin(), opts.end(), "--recipe") == 1);
    CHECK(std::count(opts.begin(), opts.end(), "--reset-method") == 1);
    CHECK(std::count(opts.begin(), opts.end(), "--json") == 1);
    // The --help footer (address forms, examples) offers no subcommand.
    CHECK(joined(complete({"pt", "s"})) == joined(Words{"status", "snapshot"}));
  }

  TEST_CASE("devices under --root, with class names while several match") {
    pt::test::Fixture fx;
    pt::test::Fixture::gpu_with_audio(fx);
    const auto root = fx.dir();
    // The fixture's slot behind its root port (a PCI bridge).
    CHECK(joined(complete({"pt-bind", "--root", root, "detach", ""})) ==
          joined(Words{"0000:00:01.0 (PCI bridge)", "0000:01:00.0 (VGA compatible controller)",
                       "0000:01:00.1 (Audio device)"}));
    // --root=DIR: bash hands over "--root", "=", DIR.
    CHECK(complete({"pt-bind", "--root", "=", root, "show", ""}).size() == 3);
    // One match: the bare address, which is what bash inserts. bash split
    // "0000:01:00.1" at the colons, so the reply is the last part.
    CHECK(joined(complete({"pt-bind", "--root", root, "attach", "0000", ":", "01", ":", "00.1"})) ==
          joined(Words{"00.1"}));
    CHECK(complete({"pt-bind", "--root", root, "attach", "0000", ":", "01", ":", "00."}) ==
          Words{"00.0 (VGA compatible controller)", "00.1 (Audio device)"});
    // Menu completion inserts every candidate whole: no class names then.
    CHECK(joined(complete({"pt-reset", "--root", root, "methods", "0000", ":", "01"}, 37)) ==
          joined(Words{"01:00.0", "01:00.1"}));
    // pt-reset takes devices before its subcommand.
    CHECK(joined(complete({"pt-reset", "--root", root, ""}, 37)) ==
          joined(Words{"methods", "0000:00:01.0", "0000:01:00.0", "0000:01:00.1"}));
    // Display tools offer display functions only.
    CHECK(joined(complete({"pt-drm", "--root", root, "check", ""})) ==
          joined(Words{"0000:01:00.0"}));
    CHECK(joined(complete({"pt-vgaarb", "--root", root, "show", ""})) ==
          joined(Words{"0000:01:00.0"}));
    // No tree, no devices: a --root without PCI devices offers none.
    CHECK(complete({"pt-bind", "--root", root + "/dev", "detach", ""}).empty());
  }

  TEST_CASE("option and positional values") {
    pt::test::Fixture fx;
    pt::test::Fixture::gpu_with_audio(fx);
    const auto root = fx.dir();
    CHECK(joined(complete({"pt-bind", "list", "--class", ""})) ==
          joined(Words{"display", "audio", "all"}));
    CHECK(joined(complete({"pt-reset", "--method", "f"})) == joined(Words{"flr"}));
    CHECK(joined(complete({"pt-vgaarb", "--root", root, "decodes", "0000:01:00.0", "io"})) ==
          joined(Words{"io", "io+mem"}));
    // Drivers of the tree: the fixture registers these.
    CHECK(joined(complete({"pt-bind", "--root", root, "detach", "--to", ""})) ==
          joined(Words{"nvidia", "pcieport", "snd_hda_intel", "vfio-pci"}));
    CHECK(joined(complete({"pt-bind", "--root", root, "set", "0000:01:00.0", "v"})) ==
          joined(Words{"vfio-pci"}));
    // --root completes directories.
    CHECK(joined(complete({"pt-bind", "--root", root + "/s"})) == joined(Words{root + "/sys"}));
    // After "--", pt-vgaarb lock runs a command: commands, not lock states.
    auto cmds = complete({"pt-vgaarb", "lock", "0000:01:00.0", "--", "pt-dr"});
    CHECK(std::count(cmds.begin(), cmds.end(), "pt-drm") == 1);
    // A count (--timeout SECONDS) has no candidates.
    CHECK(complete({"pt-bind", "--timeout", ""}).empty());
  }
}
