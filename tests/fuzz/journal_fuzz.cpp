// libFuzzer target for the journal loader (journal.json under /run/pt).
// Properties, for any bytes given as the journal:
//  - no crash, uncaught exception or sanitizer report (nlohmann throws on
//    bad input; the loader must turn that into a pt::Error);
//  - a journal that loads, saved and loaded again, is equal to it and saves
//    to the same text (round trip), so nothing the loader accepted is lost or
//    changed by the next save;
//  - what loads has the shape pt writes: version the integer 1, devices an
//    object, and no object with a key twice (JSON lets the last one win
//    silently, so a journal edited by hand could say two things at once).
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "pt/journal.hpp"

namespace {

constexpr const char* kPath = "/run/pt/journal.json";

void check(bool ok, const char* what, const std::string& detail = {}) {
  if (ok) return;
  std::fprintf(stderr, "property violated: %s\n%s\n", what, detail.c_str());
  std::abort();
}

// Finds a key given twice in one object, which json::parse hides.
struct DuplicateKeys : nlohmann::json_sax<nlohmann::json> {
  std::vector<std::set<std::string>> open;
  bool found = false;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    open.emplace_back();
    return true;
  }
  bool key(string_t& k) override {
    if (!open.back().insert(k).second) found = true;
    return true;
  }
  bool end_object() override {
    open.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
};

void check_shape(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  const auto version = j.find("version");
  check(version != j.end() && version->is_number_integer() && *version == 1,
        "accepted a journal whose version is not the integer 1", text);
  const auto devices = j.find("devices");
  check(devices != j.end() && devices->is_object(),
        "accepted a journal whose devices is not an object", text);
  DuplicateKeys sax;
  nlohmann::json::sax_parse(text, &sax);
  check(!sax.found, "accepted a journal with a key twice in one object", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto journal = pt::journal_from_text(text, kPath);
  if (!journal) {
    check(journal.error().err == EINVAL, "a refused journal is not EINVAL");
    check(journal.error().subject == kPath, "a refused journal's error names another file");
    return 0;
  }
  check_shape(text);
  const std::string saved = pt::journal_to_text(*journal);
  auto again = pt::journal_from_text(saved, kPath);
  check(again.has_value(), "a journal pt saved from an accepted one is refused",
        saved + (again ? std::string() : again.error().describe()));
  check(*again == *journal, "saving and loading the journal changes it", saved);
  check(pt::journal_to_text(*again) == saved, "saving the journal is not stable", saved);
  return 0;
}
