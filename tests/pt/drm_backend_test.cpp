#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "pt/drm.hpp"

using namespace pt;
using namespace std::chrono_literals;

namespace {

// Answers from memory, or blocks for ever as a wedged GPU's open or ioctl does.
class FakeBackend final : public drm::Backend {
 public:
  drm::Kms kms;
  std::optional<Error> error;
  bool block = false;
  int probe_fd = -1;  // read reports whether this descriptor is open in the reader

  Result<drm::Kms> read(const drm::Card&) override {
    if (block)
      for (;;) ::pause();
    if (error) return std::unexpected(*error);
    drm::Kms k = kms;
    if (probe_fd >= 0) k.desc = ::fcntl(probe_fd, F_GETFD) < 0 ? "closed" : "open";
    return k;
  }
  Result<bool> kms_readable(const drm::Card& card) override {
    auto k = read(card);
    if (!k) return std::unexpected(k.error());
    return k->kms.value_or(false);
  }
  std::vector<std::pair<std::string, PciAddress>> devices() override {
    return {{"/dev/dri/card0", PciAddress{0, 1, 0, 0}}};
  }
  std::optional<int> console_fb(int console) override {
    if (block)
      for (;;) ::pause();
    return console + 1;
  }
};

drm::Card card0() {
  drm::Card c;
  c.name = "card0";
  c.minor = 0;
  c.node = "/dev/dri/card0";
  return c;
}

// "..., pid 1234, ..." from a timeout message.
pid_t pid_in(const std::string& message) {
  auto pos = message.find("pid ");
  REQUIRE(pos != std::string::npos);
  return pid_t(std::strtol(message.c_str() + pos + 4, nullptr, 10));
}

}  // namespace

TEST_CASE("a bounded read brings the whole KMS state back from its child") {
  auto fake = std::make_unique<FakeBackend>();
  drm::Kms& k = fake->kms;
  k.driver = "virtio_gpu";
  k.version = "0.1.0";
  k.date = "0";
  k.desc = "virtio GPU";
  k.kms = true;
  k.connectors = {{35, "Virtual-1", "connected", 36, 37, 4},
                  {38, "Virtual-2", "disconnected", 0, 0, 0}};
  k.crtcs = {{37, true, true, drm::Mode{"1280x800", 1280, 800, 60}, 42},
             {39, false, std::nullopt, {}, 0}};
  k.planes = {{31, 37, 42}};
  k.master = drm::Master{false, "", "pt-drm's open made it master"};
  const drm::Kms want = k;
  auto* raw = fake.get();
  auto b = drm::make_bounded_backend(std::move(fake), Root{}, 5000ms);
  auto got = b->read(card0());
  REQUIRE(got);
  CHECK(got->driver == want.driver);
  CHECK(got->version == want.version);
  CHECK(got->desc == want.desc);
  CHECK(got->kms == want.kms);
  CHECK_FALSE(got->from_sysfs);
  REQUIRE(got->connectors.size() == 2);
  CHECK(got->connectors[0].name == "Virtual-1");
  CHECK(got->connectors[0].crtc_id == 37);
  CHECK(got->connectors[0].modes == 4);
  CHECK(got->connectors[1].status == "disconnected");
  REQUIRE(got->crtcs.size() == 2);
  CHECK(got->crtcs[0].lit());
  REQUIRE(got->crtcs[0].mode);
  CHECK(got->crtcs[0].mode->name == "1280x800");
  CHECK(got->crtcs[0].mode->refresh == 60);
  CHECK(got->crtcs[0].fb_id == 42);
  CHECK_FALSE(got->crtcs[1].active.has_value());
  CHECK_FALSE(got->crtcs[1].mode.has_value());
  REQUIRE(got->planes.size() == 1);
  CHECK(got->planes[0].crtc_id == 37);
  CHECK(got->master.exists == false);
  CHECK(got->master.how == want.master.how);
  CHECK(b->kms_readable(card0()) == true);
  auto devs = b->devices();
  REQUIRE(devs.size() == 1);
  CHECK(devs[0].second == PciAddress{0, 1, 0, 0});
  CHECK(b->console_fb(1) == 2);

  raw->error = Error{EACCES, "/dev/dri/card0", "cannot open the DRM card", Exit::failed};
  auto e = b->read(card0());
  REQUIRE_FALSE(e);
  CHECK(e.error().err == EACCES);
  CHECK(e.error().subject == "/dev/dri/card0");
  CHECK(e.error().exit == Exit::failed);
}

TEST_CASE("the reader child keeps no descriptor of the caller's open (the pt lock)") {
  auto fake = std::make_unique<FakeBackend>();
  int fd = ::open("/dev/null", O_RDONLY);  // inherited across fork, as PT_LOCK_FD is
  REQUIRE(fd >= 0);
  fake->probe_fd = fd;
  auto b = drm::make_bounded_backend(std::move(fake), Root{}, 5000ms);
  auto got = b->read(card0());
  ::close(fd);
  REQUIRE(got);
  CHECK(got->desc == "closed");
}

TEST_CASE("a read that blocks is abandoned at --timeout with exit 5, naming node, pid and wchan") {
  auto fake = std::make_unique<FakeBackend>();
  fake->block = true;
  const auto start = std::chrono::steady_clock::now();
  auto b = drm::make_bounded_backend(std::move(fake), Root{}, 400ms);
  auto r = b->read(card0());
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r);
  CHECK(r.error().exit == Exit::timeout);
  CHECK(r.error().subject == "/dev/dri/card0");
  CHECK(took >= 400ms);
  CHECK(took < 3000ms);
  const auto& m = r.error().message;
  CAPTURE(m);
  CHECK(m.find("reading its KMS state did not return within --timeout (0.4 s for all of the "
               "command's reads; "
               "this one waited 0.4 s); the reader process, pid ") != std::string::npos);
  pid_t pid = pid_in(m);
  // wchan, or its stack on kernels whose wchan reads 0 (x86 before 5.16).
  CHECK((m.find("(/proc/" + std::to_string(pid) + "/wchan)") != std::string::npos ||
         m.find("(/proc/" + std::to_string(pid) + "/stack)") != std::string::npos));
  // The child was told to go: SIGKILL. pt reaps it at once when it died in
  // time (WNOHANG); otherwise its zombie is ours to reap here.
  int status = 0;
  const pid_t reaped = ::waitpid(pid, &status, 0);
  const int wait_errno = errno;
  if (reaped == pid) {
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
  } else {
    CHECK(reaped == -1);
    CHECK(wait_errno == ECHILD);
    const int alive = ::kill(pid, 0);
    const int kill_errno = errno;
    CHECK(alive == -1);
    CHECK(kill_errno == ESRCH);
  }

  // The budget is shared: later calls get the floor of a quarter second.
  const auto again = std::chrono::steady_clock::now();
  auto k = b->kms_readable(card0());
  REQUIRE_FALSE(k);
  CHECK(k.error().exit == Exit::timeout);
  CHECK(std::chrono::steady_clock::now() - again < 2000ms);
  ::waitpid(pid_in(k.error().message), nullptr, 0);
  // Calls that cannot fail answer nothing.
  CHECK_FALSE(b->console_fb(1).has_value());
}
