#include "tests/sandbox/fixture.h"

#include "tests/sandbox/cgroup_util.h"

namespace capsa::sandbox::testing {
namespace {

// The sandbox library may create long-lived state on first use (its spawning
// thread and the fds it talks through). One worker before any test makes that
// state part of every test's baseline, so the fd check sees only leaks.
class WarmUp : public ::testing::Environment {
 public:
  void SetUp() override { expect_still_serves(); }
};

[[maybe_unused]] const auto* const kWarmUp = ::testing::AddGlobalTestEnvironment(new WarmUp);

}  // namespace

Aftermath::Aftermath() = default;

void Aftermath::check() const {
  expect_still_serves();
  EXPECT_EQ(child_pids(), std::vector<int>{}) << "a child process outlived its test";
  EXPECT_EQ(leftover_cgroups(), std::vector<std::string>{}) << "a worker's cgroup outlived it";
  EXPECT_EQ(fds_.leaked(), 0) << "fd leak; open now:\n" << capsa::testing::describe_open_fds();
}

}  // namespace capsa::sandbox::testing
