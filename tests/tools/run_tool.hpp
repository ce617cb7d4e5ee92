// Runs a built tool as a user would; stdout and stderr together.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace pt::test {

struct Run {
  int status;
  std::string out;
};

inline Run run_tool(const std::string& tool, const std::string& args) {
  std::string cmd = std::string(PT_BIN_DIR) + "/" + tool + " " + args + " 2>&1";
  Run r{0, ""};
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace pt::test
