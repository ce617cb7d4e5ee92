// pt-drm wait's engine on fixture trees: woken by inotify below the root.
#include "pt/drm_wait.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "fixture.hpp"

using namespace pt;
using pt::test::FakeConnector;
using pt::test::FakeDrmCard;
using pt::test::Fixture;

namespace {

struct Env {
  Fixture fx;
  Context ctx;
  std::unique_ptr<drm::Backend> backend;
  std::vector<std::string> trace;
  Env() {
    Fixture::gpu_with_display(fx);
    ctx = fx.context();
    ctx.timeout = std::chrono::milliseconds(2000);
    backend = drm::make_root_backend(fx.root());
  }
  Result<drm::Ready> wait() {
    auto dev = read_device(fx.root(), PciAddress{0, 1, 0, 0});
    REQUIRE(dev);
    return drm::wait_ready(ctx, *backend, *dev, "01:00.0",
                           [this](const std::string& line) { trace.push_back(line); });
  }
};

}  // namespace

TEST_CASE("wait_ready: a ready card at the first look") {
  Env e;
  auto r = e.wait();
  REQUIRE(r);
  CHECK(r->card == "card0");
  CHECK(r->waited_ms < 1000);
  REQUIRE(e.trace.size() == 1);
  CHECK(e.trace[0].rfind("look 1 at ", 0) == 0);
  CHECK(e.trace[0].find("card0, KMS read ok") != std::string::npos);
}

TEST_CASE("wait_ready: past the timeout, exit 5 and what the last look saw") {
  Env e;
  e.ctx.timeout = std::chrono::milliseconds(200);
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0",
                              WriteKind::blocking));
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/vfio-pci/bind", "0000:01:00.0",
                              WriteKind::blocking));
  auto r = e.wait();
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::timeout);
  CHECK(r.error().subject == "0000:01:00.0");
  CHECK(r.error().message ==
        "no ready DRM card within 0.2 s: driver vfio-pci is bound (a parking driver, which never "
        "creates one), but no DRM card node appeared");
  REQUIRE(!e.trace.empty());
  CHECK(e.trace[0].find("driver vfio-pci, no card") != std::string::npos);
}

TEST_CASE("wait_ready: woken by the bind that creates the card") {
  Env e;
  e.ctx.timeout = std::chrono::milliseconds(5000);
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0",
                              WriteKind::blocking));
  std::thread binder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/bind", "0000:01:00.0",
                              WriteKind::blocking);
  });
  auto r = e.wait();
  binder.join();
  REQUIRE(r);
  CHECK(r->card == "card0");
  CHECK(r->waited_ms < 4000);
  CHECK(e.trace.size() <= 10);
}

TEST_CASE("wait_ready: its observer hears of the wait with growing times, and of its end") {
  Env e;
  std::vector<Wait> seen;
  e.ctx.on_wait = [&](const Wait& w) { seen.push_back(w); };
  auto r = e.wait();  // ready at the first look: no wait to tell of
  REQUIRE(r);
  CHECK(seen.empty());

  e.ctx.timeout = std::chrono::milliseconds(900);
  REQUIRE(e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/unbind", "0000:01:00.0",
                              WriteKind::blocking));
  r = e.wait();  // the card never comes back
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::timeout);
  REQUIRE(seen.size() >= 4);  // start, ticks about every 250 ms, end
  CHECK(seen.front().phase == Wait::Phase::start);
  CHECK(seen.front().what == "0000:01:00.0's DRM card to become readable");
  CHECK(seen.front().subject == "0000:01:00.0");
  CHECK(seen.front().limit == std::chrono::milliseconds(900));
  for (size_t i = 1; i + 1 < seen.size(); ++i) CHECK(seen[i].phase == Wait::Phase::tick);
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i].elapsed > seen[i - 1].elapsed);
  CHECK(seen.back().phase == Wait::Phase::end);
  CHECK_FALSE(seen.back().ok);
  CHECK(seen.back().elapsed >= std::chrono::milliseconds(900));

  // Comes back within the wait: the end is ok.
  seen.clear();
  e.ctx.timeout = std::chrono::milliseconds(5000);
  std::thread binder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    (void)e.fx.kernel().write("/sys/bus/pci/drivers/nvidia/bind", "0000:01:00.0",
                              WriteKind::blocking);
  });
  r = e.wait();
  binder.join();
  REQUIRE(r);
  REQUIRE(seen.size() >= 3);
  CHECK(seen[1].phase == Wait::Phase::tick);
  CHECK(seen.back().phase == Wait::Phase::end);
  CHECK(seen.back().ok);
  CHECK(seen.back().elapsed >= std::chrono::milliseconds(550));
}
