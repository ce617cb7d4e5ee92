// pt-drm wait's engine: waits for a GPU's DRM card to become usable (its
// node exists and its KMS resources can be read), woken by kernel uevents and
// inotify instead of polling, and says what it saw last when it gives up.
#pragma once

#include <functional>
#include <string>

#include "pt/context.hpp"
#include "pt/drm.hpp"
#include "pt/error.hpp"
#include "pt/pci.hpp"

namespace pt::drm {

struct Ready {
  std::string card;  // "card0"
  double waited_ms = 0;
};

// Waits up to the context's timeout for DEV's card to be KMS-readable; past
// it an Exit::timeout error says what the last look saw. INPUT is DEV as the
// user named it, for messages; TRACE (may be empty) gets a line for each look.
Result<Ready> wait_ready(Context& ctx, Backend& backend, const Device& dev,
                         const std::string& input,
                         const std::function<void(const std::string&)>& trace);

}  // namespace pt::drm
