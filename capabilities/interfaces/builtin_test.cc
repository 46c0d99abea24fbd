// The built-in schemas load under the registry's rules (ordinals, handle
// fields), and their methods match the policy layer's catalogue
// (policy/builtin_apis.cc), so a policy's rights name real methods.
#include "capabilities/interfaces/builtin.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace capsa::interfaces {
namespace {

struct Expected {
  std::string_view name;
  std::vector<std::string> methods;  // by ordinal 0, 1, 2, ...
};

TEST(BuiltinInterfaces, AllLoadWithTheCatalogueMethodsInOrdinalOrder) {
  InterfaceRegistry reg;
  auto r = register_builtin(reg);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(reg.size(), 6u);
  const std::vector<Expected> expected = {
      {kBootstrap, {"Get", "List", "Attenuate", "NewChannel"}},
      {kObject, {"Release", "Detach"}},
      {kDirectory, {"Open", "OpenFile", "List", "Stat"}},
      {kFile, {"Read", "Seek", "Stat"}},
      {kLogSink, {"Write"}},
      {kWordCount, {"Count"}},
  };
  for (const auto& e : expected) {
    const Interface* iface = reg.find(e.name);
    ASSERT_NE(iface, nullptr) << e.name;
    ASSERT_EQ(iface->methods().size(), e.methods.size()) << e.name;
    for (std::uint32_t i = 0; i < e.methods.size(); ++i) {
      const Method* m = iface->method(i);
      ASSERT_NE(m, nullptr) << e.name << " ordinal " << i;
      EXPECT_EQ(m->name, e.methods[i]) << e.name;
    }
  }
}

const HandleField* only_handle(const TableInfo& t) {
  return t.handle_fields.size() == 1 ? &t.handle_fields[0] : nullptr;
}

TEST(BuiltinInterfaces, HandleFieldsHaveTheirDeclaredKinds) {
  InterfaceRegistry reg;
  ASSERT_TRUE(register_builtin(reg));
  const auto* boot = reg.find(kBootstrap);
  ASSERT_NE(boot, nullptr);
  for (const char* m : {"Get", "Attenuate"}) {
    const auto* h = only_handle(boot->method(m)->reply);
    ASSERT_NE(h, nullptr) << m;
    EXPECT_EQ(h->kind, HandleKind::kPort) << m;
  }
  const auto* att = only_handle(boot->method("Attenuate")->request);
  ASSERT_NE(att, nullptr);
  EXPECT_EQ(att->kind, HandleKind::kPort);
  EXPECT_TRUE(boot->method("List")->reply.handle_fields.empty());
  EXPECT_EQ(boot->method("Get")->request.type_hash, payload_type_hash("capsa.GetRequest"));

  const auto* dir = reg.find(kDirectory);
  ASSERT_NE(dir, nullptr);
  ASSERT_NE(only_handle(dir->method("Open")->reply), nullptr);
  EXPECT_EQ(only_handle(dir->method("Open")->reply)->kind, HandleKind::kPort)
      << "Open returns an fs.File capability";
  ASSERT_NE(only_handle(dir->method("OpenFile")->reply), nullptr);
  EXPECT_EQ(only_handle(dir->method("OpenFile")->reply)->kind, HandleKind::kFile)
      << "OpenFile returns a read-only file handle";
  EXPECT_TRUE(dir->method("List")->reply.handle_fields.empty());

  const auto* wc = reg.find(kWordCount);
  ASSERT_NE(wc, nullptr);
  ASSERT_NE(only_handle(wc->method("Count")->request), nullptr);
  EXPECT_EQ(only_handle(wc->method("Count")->request)->kind, HandleKind::kBlob);
}

TEST(BuiltinInterfaces, RegisteringTwiceIsRefusedAndLeavesTheRegistryUsable) {
  InterfaceRegistry reg;
  ASSERT_TRUE(register_builtin(reg));
  auto again = register_builtin(reg);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(reg.size(), 6u);
  EXPECT_NE(reg.find(kLogSink), nullptr);
}

}  // namespace
}  // namespace capsa::interfaces
