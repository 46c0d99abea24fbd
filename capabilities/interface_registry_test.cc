#include "capabilities/interface_registry.h"

#include <gtest/gtest.h>

#include "bad_duplicate_ordinal_bfbs.h"
#include "bad_handle_not_optional_bfbs.h"
#include "bad_handle_type_bfbs.h"
#include "bad_nested_handle_bfbs.h"
#include "bad_no_ordinal_bfbs.h"
#include "echo_bfbs.h"

namespace capsa {
namespace {

TEST(InterfaceRegistry, LoadsEchoWithOrdinalsTablesAndHandleFields) {
  InterfaceRegistry reg;
  ASSERT_TRUE(reg.load(schemas::echo_bfbs()));
  const Interface* echo = reg.find("capsa.test.Echo");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->name(), "capsa.test.Echo");
  ASSERT_EQ(echo->methods().size(), 4u);
  // Sorted by ordinal, whatever order flatc stored them in (it sorts by name).
  EXPECT_EQ(echo->methods()[0].name, "Echo");
  EXPECT_EQ(echo->methods()[1].name, "Put");
  EXPECT_EQ(echo->methods()[2].name, "Tree");
  EXPECT_EQ(echo->methods()[3].name, "Note");
  EXPECT_EQ(echo->method(5u)->name, "Note");
  EXPECT_EQ(echo->method(3u), nullptr);
  EXPECT_EQ(echo->method(64u), nullptr);
  EXPECT_EQ(echo->method(4000000000u), nullptr);
  EXPECT_EQ(echo->defined_rights(), right_of(0) | right_of(1) | right_of(2) | right_of(5));

  const Method* put = echo->method("Put");
  ASSERT_NE(put, nullptr);
  EXPECT_EQ(put->request.name, "capsa.test.PutRequest");
  EXPECT_EQ(put->request.type_hash, payload_type_hash("capsa.test.PutRequest"));
  EXPECT_EQ(put->reply.name, "capsa.test.PutReply");
  ASSERT_EQ(put->request.handle_fields.size(), 3u);  // fields are stored sorted by name
  EXPECT_EQ(put->request.handle_fields[0].name, "blobs");
  EXPECT_EQ(put->request.handle_fields[0].kind, HandleKind::kBlob);
  EXPECT_TRUE(put->request.handle_fields[0].is_vector);
  EXPECT_EQ(put->request.handle_fields[1].name, "file");
  EXPECT_EQ(put->request.handle_fields[1].kind, HandleKind::kFile);
  EXPECT_EQ(put->request.handle_fields[2].name, "port");
  EXPECT_EQ(put->request.handle_fields[2].kind, HandleKind::kPort);
  EXPECT_FALSE(put->request.handle_fields[2].is_vector);
  ASSERT_EQ(put->reply.handle_fields.size(), 1u);
  EXPECT_TRUE(echo->method("Echo")->request.handle_fields.empty());
  EXPECT_EQ(echo->method("Nope"), nullptr);
}

TEST(InterfaceRegistry, PayloadTypeHashIsFnv1a32) {
  // Reference values of 32-bit FNV-1a (docs/PROTOCOL.md gives the same).
  EXPECT_EQ(payload_type_hash(""), 0x811c9dc5u);
  EXPECT_EQ(payload_type_hash("a"), 0xe40c292cu);
  EXPECT_EQ(payload_type_hash("foobar"), 0xbf9cf968u);
}

TEST(InterfaceRegistry, LoadingTwiceIsRefused) {
  InterfaceRegistry reg;
  ASSERT_TRUE(reg.load(schemas::echo_bfbs()));
  auto again = reg.load(schemas::echo_bfbs());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kInvalidArgument);
  EXPECT_NE(again.error().message.find("already loaded"), std::string::npos);
  EXPECT_EQ(reg.size(), 1u);
}

struct BadSchema {
  const char* name;
  std::span<const std::uint8_t> (*bfbs)();
  const char* expected;
};

class InterfaceRegistryBad : public ::testing::TestWithParam<BadSchema> {};

TEST_P(InterfaceRegistryBad, IsALoadErrorNamingTheFault) {
  InterfaceRegistry reg;
  auto r = reg.load(GetParam().bfbs());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find(GetParam().expected), std::string::npos) << r.error().message;
  EXPECT_EQ(reg.size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Schemas, InterfaceRegistryBad,
    ::testing::Values(
        BadSchema{"HandleOnString", schemas::bad_handle_type_bfbs,
                  "capsa.bad1.Req.file: capsa_handle is only allowed on uint32"},
        BadSchema{"HandleNotOptional", schemas::bad_handle_not_optional_bfbs,
                  "capsa.bad2.Req.port: a handle field must be declared `uint32 = null`"},
        BadSchema{"NoOrdinal", schemas::bad_no_ordinal_bfbs,
                  "capsa.bad3.BadNoOrdinal.Put: missing (capsa_method"},
        BadSchema{"DuplicateOrdinal", schemas::bad_duplicate_ordinal_bfbs, "share ordinal 3"},
        BadSchema{"NestedHandle", schemas::bad_nested_handle_bfbs,
                  "capsa.bad5.Req.inner nests capsa.bad5.Inner"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(InterfaceRegistry, GarbageIsNotASchema) {
  InterfaceRegistry reg;
  std::vector<std::uint8_t> junk(200, 0x41);
  auto r = reg.load(junk);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "schema: not a valid binary schema (.bfbs)");
  auto truncated = schemas::echo_bfbs().first(schemas::echo_bfbs().size() / 2);
  ASSERT_FALSE(reg.load(truncated));
  ASSERT_FALSE(reg.load({}));
}

}  // namespace
}  // namespace capsa
