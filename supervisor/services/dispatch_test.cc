// MethodTable (dispatch.h): a call runs the handler of its ordinal, an
// ordinal the table lacks is answered `failed`, and check() names every way
// a table and its schema can disagree, so a reordered .fbs fails here.
#include "supervisor/services/dispatch.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "capabilities/interfaces/builtin.h"
#include "echo_bfbs.h"
#include "supervisor/services/directory_service.h"
#include "supervisor/services/file_service.h"
#include "supervisor/services/log_service.h"

namespace capsa::supervisor {
namespace {

// Records what the service answered; off_loop runs inline.
class RecordingSink final : public CallSink, public ServiceHost {
 public:
  struct Failure {
    Errc code;
    std::string text;
  };
  std::vector<Failure> failures;

  Result<void> reply(CallState& call, const ReplyBuilder&, std::vector<Handle>) override {
    call.answered = true;
    return {};
  }
  Result<void> reply_bytes(CallState& call, std::span<const std::uint8_t>,
                           std::vector<Handle>) override {
    call.answered = true;
    return {};
  }
  void next(CallState&) override {}
  void fail(CallState& call, Errc code, std::string_view text) override {
    call.answered = true;
    failures.push_back({code, std::string(text)});
  }
  Result<void> charge(CallState&, std::uint64_t) override { return {}; }
  void off_loop(Call call, std::move_only_function<Continuation()> work) override {
    work()(std::move(call));
  }
  ServiceHost& host() override { return *this; }

  Result<Handle> mint(GrantId, const Interface&, Rights, std::unique_ptr<ServiceObject>) override {
    return make_error(Errc::kDenied, "this sink mints nothing");
  }
  Result<std::uint64_t> mint_object(GrantId, const Interface&, Rights,
                                    std::unique_ptr<ServiceObject>) override {
    return make_error(Errc::kDenied, "this sink mints nothing");
  }
  void worker_log(std::string_view, LogLevel, std::string_view) override {}
  const Interface* find_interface(std::string_view) const override { return nullptr; }
};

// Serves capsa.test.Echo (testdata/echo.fbs): Echo 0, Put 1, Tree 2, Note 5.
class EchoLike {
 public:
  std::vector<std::string> ran;
  void echo(Call call) { answer(std::move(call), "echo"); }
  void put(Call call) { answer(std::move(call), "put"); }
  void tree(Call call) { answer(std::move(call), "tree"); }
  void note(Call call) { answer(std::move(call), "note"); }

 private:
  void answer(Call call, std::string what) {
    ran.push_back(std::move(what));
    ASSERT_TRUE(call.reply([](flatbuffers::FlatBufferBuilder&) {}));
  }
};

constexpr std::string_view kEcho = "capsa.test.Echo";

// The message of check()'s refusal, which must be kInvalidArgument.
template <typename Table>
std::string refusal(const Table& table, const Interface& iface) {
  auto checked = table.check(iface);
  if (checked) return "(accepted)";
  EXPECT_EQ(checked.error().code, Errc::kInvalidArgument);
  return checked.error().message;
}

// The whole interface, with its gap at 3 and 4.
constexpr MethodTable<EchoLike, 6> kFull{kEcho,
                                         {{{0, "Echo", &EchoLike::echo},
                                           {1, "Put", &EchoLike::put},
                                           {2, "Tree", &EchoLike::tree},
                                           {3, {}, nullptr},
                                           {4, {}, nullptr},
                                           {5, "Note", &EchoLike::note}}}};

class DispatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = registry_.load(schemas::echo_bfbs());
    ASSERT_TRUE(loaded) << loaded.error().to_string();
    echo_ = registry_.find(kEcho);
    ASSERT_NE(echo_, nullptr);
  }

  Call call_of(std::string_view method) {
    auto state = std::make_unique<CallState>();
    state->sink = &sink_;
    state->method = echo_->method(method);
    state->worker = &worker_;
    return Call(std::move(state));
  }

  InterfaceRegistry registry_;
  const Interface* echo_ = nullptr;
  RecordingSink sink_;
  std::string worker_ = "w";
};

TEST_F(DispatchTest, EachOrdinalRunsItsOwnHandler) {
  ASSERT_TRUE(kFull.check(*echo_)) << kFull.check(*echo_).error().to_string();
  EchoLike service;
  for (const char* m : {"Note", "Echo", "Tree", "Put"}) kFull.dispatch(service, call_of(m));
  EXPECT_EQ(service.ran, (std::vector<std::string>{"note", "echo", "tree", "put"}));
  EXPECT_TRUE(sink_.failures.empty());
}

TEST_F(DispatchTest, AMethodPastTheTableIsFailedNotDispatched) {
  constexpr MethodTable<EchoLike, 3> kShort{kEcho,
                                            {{{0, "Echo", &EchoLike::echo},
                                              {1, "Put", &EchoLike::put},
                                              {2, "Tree", &EchoLike::tree}}}};
  EchoLike service;
  kShort.dispatch(service, call_of("Note"));
  EXPECT_TRUE(service.ran.empty());
  ASSERT_EQ(sink_.failures.size(), 1u);
  EXPECT_EQ(sink_.failures[0].code, Errc::kFailed);
  EXPECT_EQ(sink_.failures[0].text, "capsa.test.Echo.Note is not implemented");
  // ... and check() would have said so before any call.
  EXPECT_EQ(refusal(kShort, *echo_),
            "method table of capsa.test.Echo: Note (ordinal 5) has no handler");
  // The table still serves what it has.
  kShort.dispatch(service, call_of("Put"));
  EXPECT_EQ(service.ran, (std::vector<std::string>{"put"}));
}

TEST_F(DispatchTest, CheckRefusesATableWhoseOrdinalsNoLongerMatchTheSchema) {
  // What a reordered .fbs looks like from the table's side: Echo and Put
  // trade ordinals, so the table's 0 and 1 serve the wrong methods.
  constexpr MethodTable<EchoLike, 6> kSwapped{kEcho, [] {
                                                auto e = kFull.entries();
                                                std::swap(e[0].ordinal, e[1].ordinal);
                                                std::swap(e[0], e[1]);
                                                return e;
                                              }()};
  EXPECT_EQ(refusal(kSwapped, *echo_),
            "method table of capsa.test.Echo: ordinal 0 is Echo in the schema, Put in the table");
}

TEST_F(DispatchTest, CheckRefusesAnEntryOnAGapAndAGapOnAMethod) {
  constexpr MethodTable<EchoLike, 4> kExtra{kEcho,
                                            {{{0, "Echo", &EchoLike::echo},
                                              {1, "Put", &EchoLike::put},
                                              {2, "Tree", &EchoLike::tree},
                                              {3, "Note", &EchoLike::note}}}};
  EXPECT_EQ(refusal(kExtra, *echo_),
            "method table of capsa.test.Echo: ordinal 3 (Note) is not in the schema");

  constexpr MethodTable<EchoLike, 2> kHole{kEcho,
                                           {{{0, "Echo", &EchoLike::echo}, {1, {}, nullptr}}}};
  EXPECT_EQ(refusal(kHole, *echo_),
            "method table of capsa.test.Echo: Put (ordinal 1) has no handler");

  // Half an entry, either half, is refused even where the schema has a gap.
  constexpr MethodTable<EchoLike, 4> kNameOnly{kEcho,
                                               {{{0, "Echo", &EchoLike::echo},
                                                 {1, "Put", &EchoLike::put},
                                                 {2, "Tree", &EchoLike::tree},
                                                 {3, "Retired", nullptr}}}};
  EXPECT_EQ(refusal(kNameOnly, *echo_),
            "method table of capsa.test.Echo: ordinal 3 needs both a name and a handler, or "
            "neither (a gap)");
  constexpr MethodTable<EchoLike, 1> kHandlerOnly{kEcho, {{{0, {}, &EchoLike::echo}}}};
  EXPECT_EQ(refusal(kHandlerOnly, *echo_),
            "method table of capsa.test.Echo: ordinal 0 needs both a name and a handler, or "
            "neither (a gap)");
}

TEST_F(DispatchTest, CheckRefusesAnotherInterface) {
  InterfaceRegistry builtin;
  ASSERT_TRUE(interfaces::register_builtin(builtin));
  EXPECT_EQ(refusal(kFull, *builtin.find(interfaces::kFile)),
            "method table of capsa.test.Echo: the table serves capsa.test.Echo, not fs.File");
}

// The built-in services' tables agree with the schemas they serve.
TEST(BuiltinServiceTables, MatchTheirLoadedSchemas) {
  InterfaceRegistry reg;
  ASSERT_TRUE(interfaces::register_builtin(reg));
  auto check = [&](const auto& table) {
    const Interface* iface = reg.find(table.interface());
    ASSERT_NE(iface, nullptr) << table.interface();
    auto checked = table.check(*iface);
    EXPECT_TRUE(checked) << checked.error().to_string();
  };
  check(services::DirectoryService::methods());
  check(services::FileService::methods());
  check(services::LogService::methods());
}

}  // namespace
}  // namespace capsa::supervisor
