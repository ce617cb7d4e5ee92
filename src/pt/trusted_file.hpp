// Reading a file whose owner and mode decide whether pt may act on it (the
// journal, pt.conf): the file is opened once, without following a symlink,
// and the descriptor that passed the checks is the one that is read, so what
// is read is what was checked.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "pt/error.hpp"
#include "pt/root.hpp"

namespace pt {

// What a trusted file must be, and what each refusal says (its subject is the
// absolute path).
struct TrustRules {
  // When open(2) or fstat(2) fails ("cannot open the journal").
  std::string open_failure;
  std::string inspect_failure;
  // Refused unless a regular file (EINVAL).
  bool regular = false;
  std::string not_regular;
  // Refused unless owned by the user running pt, or by root when
  // root_may_own (EPERM); the message names the owner.
  bool root_may_own = false;
  std::function<std::string(uid_t owner)> foreign_owner;
  // Refused when the group or others can write it (EPERM).
  std::string others_can_write;
  // The caller's own checks, after the ones above; an error refuses the file.
  std::function<Status(const struct stat&)> check;
};

// The checks of RULES (but not RULES.check) on a file (or directory) already opened or lstat'ed.
Status check_trust(const std::string& subject, const struct stat& st, const TrustRules& rules);

// The text of ROOT/ABS (trailing newlines removed, as read_file does), or
// nullopt when it does not exist. A symlink is refused (ELOOP), a FIFO does
// not block the open.
Result<std::optional<std::string>> read_trusted_file(const Root& root, std::string_view abs,
                                                     const TrustRules& rules);

}  // namespace pt
