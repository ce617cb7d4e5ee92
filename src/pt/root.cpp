#include "pt/root.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace pt {

Result<Root> Root::open(std::string_view dir) {
  Root root;
  if (dir.empty() || dir == "/") return root;
  std::error_code ec;
  auto abs = std::filesystem::absolute(std::filesystem::path(dir), ec);
  if (ec)
    return fail(std::string(dir), "cannot resolve the --root directory", ec.value(), Exit::usage);
  struct stat st {};
  if (::stat(abs.c_str(), &st) != 0)
    return fail(std::string(dir), "the --root directory does not exist; give an existing tree",
                errno, Exit::usage);
  if (!S_ISDIR(st.st_mode))
    return fail(std::string(dir), "--root must name a directory", ENOTDIR, Exit::usage);
  std::string p = abs.lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p != "/") root.prefix_ = p;
  return root;
}

Result<Root> Root::from_option(const std::optional<std::string>& option) {
  // An empty --root is a mistake (an unset variable in a script), not a way
  // to say "the live system" over PT_ROOT.
  if (option && option->empty())
    return usage_error("--root", "DIR is empty; name a directory, or leave --root out to use /");
  if (option) return open(*option);
  // secure_getenv: in a set-user-ID or capability-raised pt the caller does
  // not get to choose the tree pt changes.
  if (const char* env = ::secure_getenv("PT_ROOT"); env && *env) return open(env);
  return Root{};
}

std::string Root::path(std::string_view abs) const {
  std::string out = prefix_;
  out += abs;
  return out;
}

std::string Root::unprefix(std::string_view real) const {
  if (!prefix_.empty() && real.substr(0, prefix_.size()) == prefix_ &&
      (real.size() == prefix_.size() || real[prefix_.size()] == '/'))
    real.remove_prefix(prefix_.size());
  return std::string(real.empty() ? "/" : real);
}

}  // namespace pt
