#include "pt/root.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>

#include "fixture.hpp"

using namespace pt;

TEST_CASE("the root seam prefixes and unprefixes paths") {
  test::Fixture fx;
  auto root = Root::open(fx.dir());
  REQUIRE(root);
  CHECK_FALSE(root->is_real());
  CHECK(root->path("/sys/bus/pci") == fx.dir() + "/sys/bus/pci");
  CHECK(root->unprefix(fx.dir() + "/dev/dri/card0") == "/dev/dri/card0");
  CHECK(root->unprefix("/elsewhere/x") == "/elsewhere/x");

  auto real = Root::open("/");
  REQUIRE(real);
  CHECK(real->is_real());
  CHECK(real->path("/sys") == "/sys");
}

TEST_CASE("a missing --root is a usage error naming it") {
  auto r = Root::open("/nonexistent/pt-root");
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::usage);
  CHECK(r.error().subject == "/nonexistent/pt-root");
}

TEST_CASE("PT_ROOT stands in for --root, and --root wins") {
  test::Fixture a, b;
  ::setenv("PT_ROOT", a.dir().c_str(), 1);
  auto from_env = Root::from_option(std::nullopt);
  auto from_flag = Root::from_option(b.dir());
  ::unsetenv("PT_ROOT");
  REQUIRE(from_env);
  REQUIRE(from_flag);
  CHECK(from_env->dir() == a.dir());
  CHECK(from_flag->dir() == b.dir());
}

TEST_CASE("an empty --root is a usage error, also over PT_ROOT: never the live system") {
  test::Fixture a;
  for (bool env : {false, true}) {
    CAPTURE(env);
    if (env) ::setenv("PT_ROOT", a.dir().c_str(), 1);
    auto r = Root::from_option(std::string());
    ::unsetenv("PT_ROOT");
    REQUIRE_FALSE(r);
    CHECK(r.error().exit == Exit::usage);
    CHECK(r.error().subject == "--root");
    CHECK(r.error().message.find("DIR is empty") != std::string::npos);
  }
}
