#include "pt/render.hpp"

#include <doctest/doctest.h>

#include <sstream>

#include "pt/try.hpp"
#include "pt/error.hpp"

using namespace pt;

TEST_CASE("a table pads every column but the last") {
  render::Table t({6, 4});
  t.row({"BDF", "DRV", "rest"});
  t.row({"0000:01:00.0", "x", "y"});
  CHECK(t.text() == "BDF   DRV rest\n0000:01:00.0x   y\n");
}

TEST_CASE("empty strings are null in JSON, and documents end with one newline") {
  CHECK(render::nullable("").is_null());
  CHECK(render::nullable("vfio-pci") == "vfio-pci");
  CHECK(render::opt(std::optional<int>{}).is_null());
  std::ostringstream out;
  render::emit(out, {{"a", 1}});
  CHECK(out.str() == "{\n  \"a\": 1\n}\n");
  CHECK(render::class_hex(0x0300) == "0300");
  CHECK(render::join({"a", "b"}, ", ") == "a, b");
}

TEST_CASE("a document with bytes that are not UTF-8 is printed, not aborted") {
  // A process name is any bytes; nlohmann's default dump throws on them.
  std::ostringstream out;
  render::emit(out, {{"command", "\xff\xfe\x1b[31mevil"}});
  auto back = render::json::parse(out.str());
  CHECK(back["command"] == "\xEF\xBF\xBD\xEF\xBF\xBD\x1b[31mevil");  // U+FFFD twice
  CHECK(out.str().find("\\u001b[31mevil") != std::string::npos);     // ESC escaped by JSON
  // Text: a table cell's control characters are shown, not sent.
  render::Table t({4});
  t.row({"\x1b[31m", "a\nb\rc"});
  CHECK(t.text() == "\\x1b[31ma\\x0ab\\x0dc\n");
}

namespace {
Result<int> twice(Result<int> r) { return 2 * PT_TRY(std::move(r)); }
Status check(Status s, int& reached) {
  PT_TRY(std::move(s));
  ++reached;
  return {};
}
}  // namespace

TEST_CASE("PT_TRY yields the value or returns the error") {
  CHECK(*twice(21) == 42);
  auto e = twice(fail("x", "broken", 5));
  REQUIRE_FALSE(e);
  CHECK(e.error().subject == "x");
  CHECK(e.error().err == 5);
  int reached = 0;
  CHECK(check({}, reached));
  CHECK(reached == 1);
  CHECK_FALSE(check(fail("y", "no"), reached));
  CHECK(reached == 1);
}

TEST_CASE("the progress printer: nothing under 300 ms, then one line rewritten in place") {
  using namespace std::chrono_literals;
  std::ostringstream err;
  auto print = render::progress_printer("pt-bind", err);
  Wait w{Wait::Phase::start, "nvidia to release 0000:01:00.0 (unbind)", "/sys/x", 0ms, 10000ms};
  print(w);
  w.phase = Wait::Phase::tick;
  w.elapsed = 250ms;
  print(w);
  CHECK(err.str().empty());
  w.elapsed = 2340ms;
  print(w);
  const std::string line =
      "pt-bind: waiting for nvidia to release 0000:01:00.0 (unbind) ... 2.3 s of 10 s";
  CHECK(err.str() == "\r" + line);
  w.elapsed = 12000ms;
  w.what = "x";  // a shorter line blanks what the longer one left
  print(w);
  const std::string shorter = "pt-bind: waiting for x ... 12.0 s of 10 s";
  CHECK(err.str() == "\r" + line + "\r" + shorter + std::string(line.size() - shorter.size(), ' '));

  // Succeeded: the line is cleared, nothing is left on the screen.
  err.str("");
  w.phase = Wait::Phase::end;
  w.ok = true;
  print(w);
  CHECK(err.str() == "\r" + std::string(line.size(), ' ') + "\r");

  // A short wait that ends is not shown at all; a long one that fails keeps
  // its line and ends it, so the error that follows has a line of its own.
  err.str("");
  w = Wait{Wait::Phase::end, "the pt lock", "/run/pt/lock", 100ms, 0ms, false};
  print(w);
  CHECK(err.str().empty());
  w.elapsed = 1000ms;
  print(w);
  CHECK(err.str() == "\rpt-bind: waiting for the pt lock ... 1.0 s\n");
}

TEST_CASE("a progress line shows control characters escaped") {
  Wait w{Wait::Phase::tick, "drv\x1b[2J to release", "", std::chrono::milliseconds(500),
         std::chrono::milliseconds(1500)};
  CHECK(render::progress_text(w) == "waiting for drv\\x1b[2J to release ... 0.5 s of 1.5 s");
}
