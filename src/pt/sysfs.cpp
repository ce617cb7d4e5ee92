#include "pt/sysfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>

#include "pt/try.hpp"

namespace pt {

namespace {

// KIND names what a file that breaks the rules is not, for the message.
Result<std::string> read_regular(const std::string& real_path, const std::string& kind) {
  // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
  int fd = ::open(real_path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail(real_path, "cannot open", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return fail(real_path, "cannot inspect", e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(real_path, "is not a regular file" + kind + "; not read", EINVAL);
  }
  std::string out;
  char buf[4096];
  // Kernel attributes fit one page; keep reading only for ordinary files.
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return fail(real_path, "cannot read", e);
    }
    if (n == 0) break;
    if (out.size() + size_t(n) > kMaxReadBytes) {
      ::close(fd);
      return fail(real_path, "is larger than 1 MiB" + kind + "; not read", EFBIG);
    }
    out.append(buf, size_t(n));
    if (size_t(n) < sizeof buf) break;
  }
  ::close(fd);
  return out;
}

}  // namespace

Result<std::string> read_file(const std::string& real_path) {
  auto out = PT_TRY(read_regular(real_path, ", so not a kernel attribute"));
  while (!out.empty() && (out.back() == '\n' || out.back() == '\0')) out.pop_back();
  return out;
}

Result<std::string> read_bytes(const std::string& real_path) { return read_regular(real_path, ""); }

std::optional<uint32_t> parse_index(std::string_view text) {
  uint32_t v = 0;
  if (text.empty() || text[0] < '0' || text[0] > '9') return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > uint32_t(INT32_MAX))
    return std::nullopt;
  return v;
}

std::optional<std::string> read_attr(const std::string& real_path) {
  auto r = read_file(real_path);
  if (!r) return std::nullopt;
  return std::move(*r);
}

std::optional<std::string> read_link(const std::string& real_path) {
  char buf[4096];
  ssize_t n = ::readlink(real_path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return std::nullopt;
  return std::string(buf, size_t(n));
}

std::optional<std::string> link_basename(const std::string& real_path) {
  auto target = read_link(real_path);
  if (!target) return std::nullopt;
  auto slash = target->rfind('/');
  return slash == std::string::npos ? *target : target->substr(slash + 1);
}

std::vector<std::string> list_dir(const std::string& real_path) {
  std::vector<std::string> out;
  DIR* d = ::opendir(real_path.c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0)))
      continue;
    out.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool path_exists(const std::string& real_path) {
  struct stat st {};
  return ::lstat(real_path.c_str(), &st) == 0;
}

std::string show_value(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out + "\"";
}

Result<std::string> read_file(const Root& root, std::string_view abs) {
  return read_file(root.path(abs));
}
std::optional<std::string> read_attr(const Root& root, std::string_view abs) {
  return read_attr(root.path(abs));
}
std::optional<std::string> link_basename(const Root& root, std::string_view abs) {
  return link_basename(root.path(abs));
}
std::optional<std::string> read_link(const Root& root, std::string_view abs) {
  return read_link(root.path(abs));
}
std::vector<std::string> list_dir(const Root& root, std::string_view abs) {
  return list_dir(root.path(abs));
}
bool path_exists(const Root& root, std::string_view abs) {
  return path_exists(root.path(abs));
}

}  // namespace pt
