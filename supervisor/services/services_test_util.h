// Test support for the built-in services: a real Supervisor built from a
// policy (PolicyBuilder against Supervisor::api_catalog()), one worker "w"
// attached in-process, its loop on a thread of its own (LoopThread), and the
// worker's side as the SDK sees it (capsa::worker::Context). Calls go
// through everything a sandboxed worker's calls go through: the bootstrap,
// the grant table, validation, rights, limits, the service, the reply.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "policy/builder.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor_test_util.h"
#include "workers/sdk/builtins.h"
#include "workers/sdk/context.h"

namespace capsa::supervisor::services::testing {

struct LoggedLine {
  std::string worker;
  LogLevel level = LogLevel::kInfo;
  std::string text;
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    root_ = dir_.path() + "/root";
    std::filesystem::create_directory(root_);
  }

  // Builds a policy with worker "w" (grants added by `grants`), creates the
  // supervisor, attaches "w" and runs the loop on its thread.
  void start(const std::function<void(policy::WorkerBuilder&)>& grants) {
    policy::PolicyBuilder b(Supervisor::api_catalog());
    grants(b.worker("w").program("/bin/true"));
    auto p = b.try_build();
    ASSERT_TRUE(p) << policy::format_diagnostics(p.error());
    SupervisorOptions o;
    o.audit_log_path = dir_.path() + "/audit.jsonl";
    o.log_output = [this](std::string_view worker, LogLevel level, std::string_view text) {
      std::lock_guard lock(log_mutex_);
      logged_.push_back({std::string(worker), level, std::string(text)});
    };
    auto s = Supervisor::create(std::move(*p), std::move(o));
    ASSERT_TRUE(s) << s.error().to_string();
    sup_ = std::move(*s);
    auto port = sup_->attach("w");
    ASSERT_TRUE(port) << port.error().to_string();
    auto ctx = worker::Context::from_port(std::move(*port));
    ASSERT_TRUE(ctx) << ctx.error().to_string();
    ctx_.emplace(std::move(*ctx));
    loop_.emplace(*sup_);
  }

  // Ends everything (worker side, loop, supervisor), for fd counts.
  void stop() {
    ctx_.reset();
    loop_.reset();
    sup_.reset();
  }

  // A directory grant "docs" on root_ with every right.
  void start_with_docs() {
    start([&](policy::WorkerBuilder& w) {
      w.grant("docs", "fs.Directory").all_rights().constraint("root", root_);
    });
  }

  void write_file(const std::string& rel, std::string_view content) {
    std::ofstream(root_ + "/" + rel, std::ios::binary) << content;
  }

  std::vector<GrantView> grants(bool include_ended = false) {
    return loop_->on_loop([&] { return sup_->grants(include_ended); });
  }
  std::optional<GrantView> grant_named(std::string_view name) {
    for (auto& g : grants()) {
      if (g.name == name) return g;
    }
    return std::nullopt;
  }

  std::vector<LoggedLine> logged() {
    std::lock_guard lock(log_mutex_);
    return logged_;
  }

  worker::Context& ctx() { return *ctx_; }

  supervisor::testing::TempDir dir_;
  std::string root_;
  std::unique_ptr<Supervisor> sup_;
  std::optional<supervisor::testing::LoopThread> loop_;
  std::optional<worker::Context> ctx_;
  std::mutex log_mutex_;
  std::vector<LoggedLine> logged_;
};

// Asserts `r` failed with `code` and a message containing `fragment`.
template <typename T>
::testing::AssertionResult fails_with(const Result<T>& r, Errc code, std::string_view fragment) {
  if (r.has_value()) return ::testing::AssertionFailure() << "succeeded";
  if (r.error().code != code || r.error().message.find(fragment) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "got " << r.error().to_string() << ", want " << errc_name(code) << " with \""
           << fragment << "\"";
  }
  return ::testing::AssertionSuccess();
}

inline std::string text_of(const std::vector<std::byte>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace capsa::supervisor::services::testing
