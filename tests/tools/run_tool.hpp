// Runs a built tool as a user would; stdout and stderr together.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <string>

namespace pt::test {

struct Run {
  int status;
  std::string out;
};

// PREFIX goes before the tool on the shell line: "PT_ROOT=/tree ", "timeout 10 ".
inline Run run_tool_with(const std::string& prefix, const std::string& tool,
                         const std::string& args) {
  std::string cmd = prefix + std::string(PT_BIN_DIR) + "/" + tool + " " + args + " 2>&1";
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

inline Run run_tool(const std::string& tool, const std::string& args) {
  return run_tool_with("", tool, args);
}

// Runs TOOL with ARGS (through sh) with its stderr on a pseudo-terminal, as
// a person at a terminal runs it, and its stdout on /dev/null: OUT is what
// the terminal got, raw (\r and all).
inline Run run_tool_in_pty(const std::string& tool, const std::string& args) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  REQUIRE(master >= 0);
  REQUIRE(::grantpt(master) == 0);
  REQUIRE(::unlockpt(master) == 0);
  const std::string slave_name = ::ptsname(master);
  const std::string cmd = std::string(PT_BIN_DIR) + "/" + tool + " " + args;
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setsid();
    int slave = ::open(slave_name.c_str(), O_RDWR);
    int null = ::open("/dev/null", O_RDWR);
    if (slave < 0 || null < 0) ::_exit(127);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(slave, 2);
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  Run r{0, ""};
  std::array<char, 4096> buf;
  // Read until the last holder of the slave closes it (EIO), so nothing the
  // tool wrote is lost in the pty's buffer.
  for (;;) {
    ssize_t n = ::read(master, buf.data(), buf.size());
    if (n > 0) {
      r.out.append(buf.data(), size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(master);
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// pt(7), for every tool: an empty --root is exit 2 naming --root, also when
// PT_ROOT names TREE; it never means the live system. ARGS is a read-only
// command, so the unfixed tool only read the real system.
inline void check_empty_root_refused(const std::string& tool, const std::string& tree,
                                     const std::string& args) {
  for (const std::string& prefix : {std::string(), "PT_ROOT=" + tree + " "}) {
    CAPTURE(prefix);
    auto r = run_tool_with(prefix, tool, "--root '' " + args);
    CHECK(r.status == 2);
    CHECK(r.out.find("--root") != std::string::npos);
    CHECK(r.out.find("DIR is empty") != std::string::npos);
  }
}

// pt(7), for every tool: --timeout and --lock-timeout take a finite number
// of seconds up to a day, through one check; anything else is exit 2 naming
// the option and the value. ARGS is a read-only command under --root.
inline void check_durations(const std::string& tool, const std::string& args) {
  for (const std::string opt : {"--timeout", "--lock-timeout"}) {
    for (const std::string bad : {"nan", "inf", "-1", "1e300", "9.3e15", "86401", "ten"}) {
      CAPTURE(opt);
      CAPTURE(bad);
      auto r = run_tool(tool, opt + " " + bad + " " + args);
      CHECK(r.status == 2);
      CHECK(r.out.find(opt) != std::string::npos);
      CHECK(r.out.find(bad == "1e300"    ? "1e+300"
                       : bad == "9.3e15" ? "9.3e+15"
                                         : bad) != std::string::npos);
      CHECK(r.out.size() < 400);  // no 309-digit bound
    }
    CHECK(run_tool(tool, opt + " 2.5 " + args).status == 0);
  }
  CHECK(run_tool(tool, "--timeout 0 " + args).status == 2);
  CHECK(run_tool(tool, "--lock-timeout 0 " + args).status == 0);  // 0: try the lock once
}

}  // namespace pt::test
