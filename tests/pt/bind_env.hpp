// pt-bind's tests' shared setup: a fixture tree, a context on its fake
// kernel and modules, and bind::run_in with its output kept (bind_test,
// power_test).
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "pt/bind.hpp"
#include "pt/bind_cmd.hpp"
#include "pt/journal.hpp"

namespace pt::test {

struct BindEnv {
  using Shape = void (*)(Fixture&);

  Fixture fx;
  Context ctx;
  std::string out;

  explicit BindEnv(Shape shape = Fixture::gpu_with_audio) {
    using namespace std::chrono_literals;
    shape(fx);
    ctx.root = fx.root();
    ctx.writer = &fx.kernel();
    ctx.modules = &fx.modules();
    ctx.timeout = 200ms;
    ctx.lock_timeout = 2000ms;
    ctx.now = [] { return int64_t(1700000000); };
  }

  Result<Exit> run(const std::string& command, std::vector<std::string> devices,
                   bind::Options o = {}) {
    o.command = command;
    o.devices = std::move(devices);
    std::ostringstream s;
    auto r = bind::run_in(o, ctx, s);
    out = s.str();
    return r;
  }

  Journal journal() { return load_journal(ctx.root).value(); }
};

}  // namespace pt::test
