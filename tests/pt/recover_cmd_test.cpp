#include "pt/recover_cmd.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "log_sink.hpp"
#include "pt/drm.hpp"
#include "recover_env.hpp"

using namespace pt;
using namespace pt::test::recover_env;
using pt::test::LogSink;

TEST_CASE("recover::command logs the state before and what each step changed") {
  Env e;
  // The origin story: the GPU's driver left the arbiter at decodes=none.
  e.arb->card("0000:01:00.0").decodes = 0;
  LogSink sink(e.fx);
  std::ostringstream out;
  auto r = recover::command({.devices = {"01:00.0"}, .reset_method = "bus", .tag = "pt-bind"},
                            e.ctx, out);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().describe()));
  CHECK(*r == Exit::ok);
  const auto recs = sink.drain();
  REQUIRE(recs.size() == 7);  // the state before, then one record a step
  CHECK(recs[0] ==
        "<30>pt-bind: recover 0000:01:00.0: state before: 0000:01:00.0 vfio-pci "
        "override=vfio-pci D0 decodes=none; 0000:01:00.1 vfio-pci override=vfio-pci D0; "
        "vtcon bound: none");
  CHECK(recs[1] == "<30>pt-bind: recover 0000:01:00.0: state after reset (ok): no change");
  CHECK(
      recs[2].starts_with("<30>pt-bind: recover 0000:01:00.0: state after attach (ok): "
                          "0000:01:00.0 driver: vfio-pci -> nvidia"));
  CHECK(recs[2].find("0000:01:00.1 driver: vfio-pci -> snd_hda_intel") != std::string::npos);
  CHECK(recs[4].starts_with("<30>pt-bind: recover 0000:01:00.0: state after vgaarb (ok): "));
  CHECK(recs[4].find("vga.decodes: none -> io+mem") != std::string::npos);
  for (const char* step : {"drm-wait", "console", "drm-check"})
    CHECK(std::count_if(recs.begin(), recs.end(), [&](const std::string& s) {
            return s.find(std::string("state after ") + step + " (ok): ") != std::string::npos;
          }) == 1);
  // The step lines went to OUT as before.
  CHECK(out.str().find("recover 0000:01:00.0: reset") != std::string::npos);
}

TEST_CASE("recover::command: a failed step is logged at warning level with its exit status") {
  Env e;
  LogSink sink(e.fx);
  // drivers_probe of the GPU fails: the attach undoes itself (exit 3).
  e.fx.fail_write("/sys/bus/pci/drivers_probe", "0000:01:00.0", EIO);
  std::ostringstream out;
  auto r =
      recover::command({.devices = {"01:00.0"}, .reset_method = "bus", .tag = "pt"}, e.ctx, out);
  REQUIRE_FALSE(r);
  const auto recs = sink.drain();
  REQUIRE_FALSE(recs.empty());
  CHECK(r.error().exit == Exit::rolled_back);
  // The attach rolled back: the functions are where they were.
  CHECK(recs.back() ==
        "<28>pt: recover 0000:01:00.0: state after attach (failed, exit 3): no change");
}

TEST_CASE("recover::command: a dry run logs nothing; pt's comparison is left out of it") {
  Env e;
  LogSink sink(e.fx);
  e.ctx.dry_run = true;
  auto backend = drm::make_root_backend(e.fx.root());
  std::ostringstream out;
  auto r = recover::command(
      {.devices = {"01:00.0"}, .reset_method = "bus", .tag = "pt", .state_backend = backend.get()},
      e.ctx, out);
  REQUIRE(r);
  CHECK(sink.drain().empty());
  CHECK(out.str().find("state") == std::string::npos);
}

TEST_CASE(
    "recover::command with a state backend (pt recover): the state compared before and after") {
  Env e;
  e.arb->card("0000:01:00.0").decodes = 0;
  auto backend = drm::make_root_backend(e.fx.root());
  std::ostringstream out;
  auto r = recover::command(
      {.devices = {"01:00"}, .reset_method = "bus", .tag = "pt", .state_backend = backend.get()},
      e.ctx, out);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().describe()));
  const std::string text = out.str();
  const auto at = text.find("state changes:\n");
  REQUIRE(at != std::string::npos);
  const std::string changes = text.substr(at);
  CHECK(changes.find("\n  0000:01:00.0 driver: vfio-pci -> nvidia\n") != std::string::npos);
  CHECK(changes.find("\n  0000:01:00.0 driver_override: vfio-pci -> (none)\n") !=
        std::string::npos);
  CHECK(changes.find("\n  0000:01:00.1 driver: vfio-pci -> snd_hda_intel\n") != std::string::npos);
  CHECK(changes.find("\n  0000:01:00.0 vga.decodes: none -> io+mem\n") != std::string::npos);

  // --json: the same changes as pt diff lists them.
  Env j;
  auto jb = drm::make_root_backend(j.fx.root());
  std::ostringstream jout;
  r = recover::command({.devices = {"01:00"},
                        .reset_method = "bus",
                        .json = true,
                        .tag = "pt",
                        .state_backend = jb.get()},
                       j.ctx, jout);
  REQUIRE(r);
  auto doc = nlohmann::json::parse(jout.str());
  CHECK(doc["exit"] == 0);
  REQUIRE(doc["changes"].is_array());
  bool driver = false;
  for (const auto& c : doc["changes"])
    driver = driver || (c["function"] == "0000:01:00.0" && c["field"] == "driver" &&
                        c["before"] == "vfio-pci" && c["after"] == "nvidia");
  CHECK(driver);
}
