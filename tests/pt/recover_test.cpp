#include "pt/recover.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <sstream>

#include "fixture.hpp"

using namespace pt;
using pt::test::Fixture;

namespace {

const char* const kClaim = test::kGuestClaim;

std::vector<std::string> lines(const std::vector<recover::Command>& steps) {
  std::vector<std::string> out;
  for (const auto& c : steps) {
    std::string l;
    for (const auto& a : c.argv) l += (l.empty() ? "" : " ") + a;
    out.push_back(c.step + ": " + l);
  }
  return out;
}

}  // namespace

TEST_CASE("each recovery step is its tool's command line") {
  auto conf = parse_conf(kClaim, "/etc/pt/pt.conf");
  REQUIRE(conf);
  const auto& d = conf->devices[0];
  using V = std::vector<std::string>;
  CHECK(recover::step_argv(d.recover[0], d.bdf, "/usr/sbin", "/") ==
        V{"/usr/sbin/pt-reset", "--method", "bus", "--force", "0000:01:00.0"});
  CHECK(recover::step_argv(d.recover[1], d.bdf, "/usr/sbin", "/t") ==
        V{"/usr/sbin/pt-bind", "--root", "/t", "attach", "0000:01:00.0"});
  CHECK(recover::step_argv(d.recover[2], d.bdf, "/b", "/")[0] == "/b/pt-drm");
  CHECK(recover::step_argv(d.recover[2], d.bdf, "/b", "/") ==
        V{"/b/pt-drm", "wait", "0000:01:00.0", "--timeout", "20"});
  CHECK(recover::step_argv(d.recover[3], d.bdf, "/b", "/") ==
        V{"/b/pt-vgaarb", "restore", "0000:01:00.0"});
  CHECK(recover::step_argv(d.recover[4], d.bdf, "/b", "/") ==
        V{"/b/pt-console", "restore", "0000:01:00.0"});
  CHECK(recover::step_argv(d.recover[5], d.bdf, "/b", "/") ==
        V{"/b/pt-drm", "check", "0000:01:00.0"});
}

TEST_CASE("the built-in recipe is pt(7)'s pipeline, for every display function named") {
  Fixture fx;
  Fixture::gpu_with_audio(fx);
  const PciAddress gpu{0, 1, 0, 0}, audio{0, 1, 0, 1};
  auto steps = recover::recipe(fx.root(), {audio, gpu});
  REQUIRE(steps);
  using V = std::vector<std::string>;
  CHECK(lines(*steps) ==
        V{"reset: pt-reset --method bus 0000:01:00.0",
          "attach: pt-bind attach 0000:01:00.0 0000:01:00.1", "drm-wait: pt-drm wait 0000:01:00.0",
          "vgaarb: pt-vgaarb restore 0000:01:00.0", "console: pt-console restore 0000:01:00.0",
          "drm-check: pt-drm check 0000:01:00.0"});
  auto own = recover::recipe(fx.root(), {gpu}, "auto");
  REQUIRE(own);
  CHECK(lines(*own).front() == "reset: pt-reset 0000:01:00.0");
  CHECK(lines(*own)[1] == "attach: pt-bind attach 0000:01:00.0");
  // The audio function alone is no display: it is only attached.
  auto sound = recover::recipe(fx.root(), {audio});
  REQUIRE(sound);
  CHECK(lines(*sound) == V{"attach: pt-bind attach 0000:01:00.1"});
  auto gone = recover::recipe(fx.root(), {PciAddress{0, 7, 0, 0}});
  REQUIRE_FALSE(gone);
  CHECK(gone.error().err == ENODEV);
}

TEST_CASE("the recipe's steps are the steps pt.conf knows, in its order") {
  auto conf = parse_conf(kClaim, "/etc/pt/pt.conf");
  REQUIRE(conf);
  const auto& d = conf->devices[0];
  REQUIRE(d.recover.size() == recover::kRecipe.size());
  for (size_t i = 0; i < d.recover.size(); ++i) CHECK(d.recover[i].name == recover::kRecipe[i]);
}

TEST_CASE("recover runs pt.conf's steps as tools, hands down the lock, stops at a failure") {
  Fixture fx;
  Fixture::gpu_with_audio(fx);
  fx.write_file("/etc/pt/pt.conf", R"([device.guest]
bdf = "0000:01:00.0"
recover = ["attach", "drm-check"]
)");
  ::chmod((fx.dir() + "/etc/pt/pt.conf").c_str(), 0644);
  // Stand-ins for the tools: pt-bind notes whether PT_LOCK_FD is an open
  // descriptor, pt-drm fails like an unhealthy check.
  fx.write_file("/bin/pt-bind", "#!/bin/sh\n[ -e /proc/self/fd/$PT_LOCK_FD ] && echo \"$*\" >" +
                                    fx.dir() + "/attach.ran\n");
  fx.write_file("/bin/pt-drm", "#!/bin/sh\nexit 6\n");
  ::chmod((fx.dir() + "/bin/pt-bind").c_str(), 0755);
  ::chmod((fx.dir() + "/bin/pt-drm").c_str(), 0755);
  Context ctx = fx.context();
  std::ostringstream out;
  auto r = recover::run(ctx, PciAddress{0, 1, 0, 0}, fx.dir() + "/bin", out);
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit(6));
  CHECK(r.error().message == "recovery stopped at step 'drm-check' (exit 6)");
  CHECK(fx.exists("/attach.ran"));
  CHECK(out.str().find("recover 0000:01:00.0: attach exited 0 after ") != std::string::npos);
  CHECK(out.str().find("recover 0000:01:00.0: drm-check exited 6 after ") != std::string::npos);

  std::ostringstream none;
  auto missing = recover::run(ctx, PciAddress{0, 2, 0, 0}, fx.dir() + "/bin", none);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("no [device.NAME] table") != std::string::npos);
}
