#include "pt/recover_cmd.hpp"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "pt/recover.hpp"
#include "pt/recover_log.hpp"
#include "pt/render.hpp"
#include "pt/reset.hpp"
#include "pt/state.hpp"
#include "pt/target.hpp"
#include "pt/try.hpp"

namespace pt::recover {

namespace {

// Each slot once: 01:00.0 and 01:00.1 both name slot 01:00.
std::vector<std::string> slots_of(const std::vector<DeviceSpec>& specs) {
  std::vector<std::string> out;
  for (const auto& s : specs) {
    DeviceSpec slot = s;
    slot.func.reset();
    const std::string name = PciAddress{slot.domain, slot.bus, slot.dev, 0}.str();
    const std::string key = name.substr(0, name.size() - 2);
    if (std::find(out.begin(), out.end(), key) == out.end()) out.push_back(key);
  }
  return out;
}

}  // namespace

namespace {

Result<Exit> print_recipe(const CommandOptions& o, const std::vector<DeviceSpec>& specs,
                          Context& ctx, std::ostream& out) {
  const auto functions = PT_TRY(target::present(ctx.root, specs, target::any()));
  const auto steps = PT_TRY(recipe(ctx.root, functions, o.reset_method));
  if (o.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& s : steps)
      arr.push_back(
          {{"step", s.name}, {"device", s.devices.front().str()}, {"argv", step_argv(s)}});
    render::emit(out, arr);
  } else {
    for (const auto& s : steps) out << render::join(step_argv(s), " ") << "\n";
  }
  return Exit::ok;
}

}  // namespace

Result<Exit> command(const CommandOptions& o, Context& ctx, std::ostream& out) {
  const auto specs = PT_TRY(target::parse_all(o.devices));
  if (specs.empty())
    return usage_error(o.recipe ? "recover --recipe" : "recover", "needs at least one device");
  PT_TRY(reset::check_method(o.reset_method, "--reset-method", true));
  if (o.recipe) return print_recipe(o, specs, ctx, out);
  const auto units = PT_TRY(plan(ctx.root, specs, o.reset_method));
  const std::string root = ctx.root.is_real() ? "/" : ctx.root.dir();

  // The state before, for the comparison after: a slot that cannot be read
  // is left out of it, not a reason to leave the GPU unrecovered.
  const bool compare = o.state_backend && !ctx.dry_run;
  const state::Sources sources{ctx.arbiter, o.state_backend, ctx.modules};
  std::vector<std::pair<std::string, state::Snapshot>> before;
  if (compare)
    for (const auto& slot : slots_of(specs))
      if (auto s = state::collect(ctx.root, slot, sources)) before.emplace_back(slot, *s);
  std::vector<state::Change> changes;
  auto compare_after = [&] {
    for (const auto& [slot, a] : before)
      if (auto b = state::collect(ctx.root, slot, sources))
        for (auto& c : state::diff(a, *b)) changes.push_back(std::move(c));
  };

  nlohmann::json steps = nlohmann::json::array();
  Observer show;
  if (o.json) {
    show = recorder(steps, root);
  } else {
    // A person watching gets a line per step with the time since the start.
    const bool terminal = &out == &std::cout && ::isatty(STDOUT_FILENO) == 1;
    show = printer(out, terminal, root);
  }
  const Observer on_event =
      ctx.dry_run ? show : state_logger(ctx.root, ctx.arbiter, o.tag, units, show);
  auto r = run(ctx, units, on_event);
  if (compare) compare_after();

  if (o.json) {
    nlohmann::json doc{{"op", "recover"},
                       {"dry_run", ctx.dry_run},
                       {"steps", steps},
                       {"exit", r ? 0 : int(r.error().exit)}};
    if (compare) doc["changes"] = state::changes_json(changes);
    render::emit(out, doc);
  } else if (compare) {
    std::string t = changes.empty() ? "state: no change\n" : "state changes:\n";
    for (const auto& c : changes) t += "  " + c.describe() + "\n";
    out << render::printable(t, true);
  }
  return r;
}

}  // namespace pt::recover
