// Checks shared by the example-plugin tests in and out of the sandbox
// (plugins_test.cc, plugins_sandbox_test.cc).
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "workers/examples/testdata/plugin_host.h"

namespace capsa::examples::testing {

using Lines = std::vector<std::string>;

inline Lines split_lines(const std::string& text) {
  Lines out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The grants examples/hostile.json gives: "log", and "texts" with Stat only
// (fs.Directory ordinal 3), so that the plugin's List is denied.
inline void add_hostile_grants(PluginHost& host, const std::filesystem::path& texts) {
  host.add_log("log");
  host.add_directory("texts", texts, right_of(3));
}

// The hostile plugin's stdout (7 lines) for steps c, d and e, which depend on
// capabilities alone and so read the same inside the sandbox or out: each
// attempt is refused by the serving side (this test host closes the abused
// port instead of killing, so the plugin survives step e).
inline void expect_hostile_capability_steps(const Lines& out) {
  ASSERT_EQ(out.size(), 7u);
  EXPECT_EQ(out[2], "hostile: c Get \"secrets\" (not granted): refused (not found)");
  EXPECT_EQ(out[4], "hostile: d List on \"texts\" bypassing the SDK: refused (denied)");
  EXPECT_EQ(out[6], "hostile: e malformed message on a log port: survived: the port was closed");
}

}  // namespace capsa::examples::testing
