// Test support for the supervisor: a loop thread, a raw bootstrap client,
// the audit log read back, and a controllable capsa.test.Echo service.
//
// The supervisor is single-threaded: tests run its reactor on a thread of
// their own and reach it only through LoopThread::on_loop (post + wait), so
// they exercise exactly the threading the real supervisor has.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "capabilities/client.h"
#include "capsa_bootstrap_generated.h"
#include "echo_bfbs.h"
#include "echo_generated.h"
#include "policy/builder.h"
#include "supervisor/supervisor.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_programs.h"

namespace capsa::supervisor::testing {

using capsa::testing::test_bin_dir;  // where the helper programs are

// A supervisor for the policy `fill` builds against `options`' APIs.
// Fails the test and returns nullptr if the policy or the supervisor
// cannot be made.
inline std::unique_ptr<Supervisor> make_supervisor(
    SupervisorOptions options, const std::function<void(policy::PolicyBuilder&)>& fill) {
  policy::PolicyBuilder b(Supervisor::api_catalog(options));
  fill(b);
  auto p = b.try_build();
  if (!p) {
    ADD_FAILURE() << policy::format_diagnostics(p.error());
    return nullptr;
  }
  auto s = Supervisor::create(std::move(*p), std::move(options));
  if (!s) {
    ADD_FAILURE() << s.error().to_string();
    return nullptr;
  }
  return std::move(*s);
}

// Runs the supervisor's reactor on a thread until destroyed.
class LoopThread {
 public:
  explicit LoopThread(Supervisor& s) : sup_(s), thread_([this] { (void)sup_.reactor().run(); }) {}
  ~LoopThread() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    sup_.reactor().stop();
    thread_.join();
  }
  // Runs `f` on the loop thread and returns its result.
  template <typename F>
  auto on_loop(F f) -> decltype(f()) {
    using R = decltype(f());
    std::promise<R> p;
    auto fut = p.get_future();
    sup_.reactor().post([&] {
      if constexpr (std::is_void_v<R>) {
        f();
        p.set_value();
      } else {
        p.set_value(f());
      }
    });
    return fut.get();
  }

 private:
  Supervisor& sup_;
  std::thread thread_;
};

// The audit log, read back as lines.
inline std::vector<std::string> audit_lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

inline std::size_t count_lines_with(const std::vector<std::string>& lines,
                                    std::initializer_list<std::string_view> parts) {
  std::size_t n = 0;
  for (const auto& l : lines) {
    bool all = true;
    for (auto p : parts) all = all && l.find(p) != std::string::npos;
    n += all ? 1 : 0;
  }
  return n;
}

// Workers' log.Sink lines, as the supervisor hands them to log_output (on
// the loop thread). `on_line` runs for each, on the loop thread too, so it
// may call the supervisor (revoke a grant when a worker says "ready").
class LogCapture {
 public:
  void install(SupervisorOptions& o) {
    o.log_output = [this](std::string_view w, LogLevel, std::string_view text) {
      lines_.emplace_back(std::string(w), std::string(text));
      if (on_line) on_line(std::string(w), std::string(text));
    };
  }
  // The lines worker `w` logged, in order.
  std::vector<std::string> said(const std::string& w) const {
    std::vector<std::string> out;
    for (const auto& [who, text] : lines_) {
      if (who == w) out.push_back(text);
    }
    return out;
  }
  bool said_line(const std::string& w, const std::string& text) const {
    auto l = said(w);
    return std::find(l.begin(), l.end(), text) != l.end();
  }
  std::function<void(const std::string& worker, const std::string& text)> on_line;

 private:
  std::vector<std::pair<std::string, std::string>> lines_;
};

// Starts every worker and runs the loop until they have all ended.
inline void start_and_run(Supervisor& s) {
  auto started = s.start_all();
  ASSERT_TRUE(started) << started.error().to_string();
  auto ran = s.run();
  ASSERT_TRUE(ran) << ran.error().to_string();
}

// A worker's row of the worker table.
inline WorkerView worker_view(const Supervisor& s, const std::string& name) {
  for (const auto& v : s.workers()) {
    if (v.name == name) return v;
  }
  ADD_FAILURE() << "no worker " << name;
  return {};
}

using capsa::testing::TempDir;  // a scratch directory, removed with its tree

// capsa.Bootstrap through a raw Client (the SDK refuses interfaces it does
// not know, such as the test Echo).
struct Got {
  Port port;
  std::string interface;
  Rights rights = 0;
};

class RawBootstrap {
 public:
  RawBootstrap(Port port, const InterfaceRegistry& registry)
      : client_(std::move(port), *registry.find("capsa.Bootstrap")) {}

  Result<Got> get(std::string_view name) {
    auto& fbb = client_.payload_builder();
    fbb.Finish(capsa::CreateGetRequest(fbb, fbb.CreateString(name.data(), name.size())));
    return got<capsa::GetReply>(client_.call(0, client_.payload_bytes()));
  }

  Result<Got> attenuate(Port port, std::vector<std::string> methods) {
    auto& fbb = client_.payload_builder();
    std::vector<flatbuffers::Offset<flatbuffers::String>> names;
    for (const auto& m : methods) names.push_back(fbb.CreateString(m));
    fbb.Finish(capsa::CreateAttenuateRequest(fbb, 0, fbb.CreateVector(names)));
    std::vector<Handle> h;
    h.push_back(Handle{HandleKind::kPort, port.release_fd()});
    return got<capsa::AttenuateReply>(client_.call(2, client_.payload_bytes(), std::move(h)));
  }

  // NewChannel: the client and server ends of a new mediated channel.
  Result<std::pair<Port, Port>> new_channel(std::string_view interface) {
    auto& fbb = client_.payload_builder();
    fbb.Finish(capsa::CreateNewChannelRequest(
        fbb, fbb.CreateString(interface.data(), interface.size())));
    auto reply = client_.call(3, client_.payload_bytes());
    if (!reply) return std::unexpected(reply.error());
    const auto* r = reply->payload_as<capsa::NewChannelReply>();
    if (!r->client().has_value() || !r->server().has_value()) {
      return make_error(Errc::kBadMessage, "no ports");
    }
    return std::pair{Port(reply->take_handle(*r->client())), Port(reply->take_handle(*r->server()))};
  }

  Client& client() { return client_; }

 private:
  // A Get or Attenuate reply: the port it carries, its interface and rights.
  template <typename ReplyTable>
  static Result<Got> got(Result<Message> reply) {
    if (!reply) return std::unexpected(reply.error());
    const auto* r = reply->payload_as<ReplyTable>();
    if (!r->port().has_value()) return make_error(Errc::kBadMessage, "no port");
    Got g;
    g.port = Port(reply->take_handle(*r->port()));
    g.interface = r->interface() != nullptr ? r->interface()->str() : "";
    g.rights = r->rights();
    return g;
  }

  Client client_;
};

// Echo calls through a raw client.
inline Result<std::string> echo(Client& c, std::string_view text, std::uint64_t value = 0) {
  auto& fbb = c.payload_builder();
  fbb.Finish(capsa::test::CreateEchoRequest(fbb, fbb.CreateString(text.data(), text.size()), value));
  auto reply = c.call(0, c.payload_bytes());
  if (!reply) return std::unexpected(reply.error());
  const auto* r = reply->payload_as<capsa::test::EchoReply>();
  return r->text() != nullptr ? r->text()->str() : std::string();
}

// capsa.test.Echo served by the supervisor: Echo answers at once, except
// text "hold", which is kept until release_held() (on the loop thread).
struct EchoControl {
  std::deque<Call> held;
  std::atomic<int> served{0};
  std::atomic<int> destroyed{0};
};

class EchoService final : public ServiceObject {
 public:
  explicit EchoService(std::shared_ptr<EchoControl> ctl) : ctl_(std::move(ctl)) {}
  ~EchoService() override { ++ctl_->destroyed; }
  void handle(Call call) override {
    ++ctl_->served;
    const auto* req = call.request().payload_as<capsa::test::EchoRequest>();
    std::string text = req->text() != nullptr ? req->text()->str() : "";
    if (text == "hold") {
      ctl_->held.push_back(std::move(call));
      return;
    }
    answer(call, text, req->value());
  }
  static void answer(Call& call, const std::string& text, std::uint64_t value) {
    call.reply([&](flatbuffers::FlatBufferBuilder& fbb) {
      fbb.Finish(capsa::test::CreateEchoReply(fbb, fbb.CreateString(text), value));
    });
  }
  std::unique_ptr<ServiceObject> clone() const override {
    return std::make_unique<EchoService>(ctl_);
  }

 private:
  std::shared_ptr<EchoControl> ctl_;
};

inline SupervisorOptions options_with_echo(const std::string& audit_path,
                                           std::shared_ptr<EchoControl> ctl) {
  SupervisorOptions o;
  o.audit_log_path = audit_path;
  o.extra_schemas.push_back(schemas::echo_bfbs());
  ServiceFactory f;
  f.api = "capsa.test.Echo";
  f.make = [ctl](const policy::Grant&, const std::shared_ptr<const void>&, ServiceHost&) {
    return std::make_unique<EchoService>(ctl);
  };
  o.extra_services.push_back(std::move(f));
  return o;
}

// A supervisor serving capsa.test.Echo (EchoControl), built per test from
// a policy, with attach()ed workers.
class SupervisorFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    audit_path_ = dir_.path() + "/audit.jsonl";
    ctl_ = std::make_shared<EchoControl>();
    options_ = options_with_echo(audit_path_, ctl_);
  }

  // Builds the policy with `fill` and creates the supervisor.
  void make(const std::function<void(policy::PolicyBuilder&)>& fill) {
    sup_ = make_supervisor(options_, fill);
    ASSERT_NE(sup_, nullptr);
  }

  RawBootstrap attach(std::string_view worker) {
    auto port = sup_->attach(worker);
    EXPECT_TRUE(port) << port.error().to_string();
    return RawBootstrap(std::move(*port), sup_->registry());
  }

  std::vector<std::string> audit() { return audit_lines(audit_path_); }

  TempDir dir_;
  std::string audit_path_;
  std::shared_ptr<EchoControl> ctl_;
  SupervisorOptions options_;
  std::unique_ptr<Supervisor> sup_;
};

// A worker with the Echo grants "echo" (all rights) and "narrow" (Tree).
inline policy::WorkerBuilder& echo_worker(policy::PolicyBuilder& b, const char* name = "w") {
  auto& w = b.worker(name).program("/bin/true");
  w.grant("echo", "capsa.test.Echo").all_rights();
  w.grant("narrow", "capsa.test.Echo").right("Tree");
  return w;
}

}  // namespace capsa::supervisor::testing
