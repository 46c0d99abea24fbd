// The grant table on its own: minting, the live cap, release and
// re-parenting, revocation of a tree, the bounded history.
#include "supervisor/grant_table.h"

#include <sys/socket.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "supervisor/core_test_util.h"

namespace capsa::supervisor {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using testing::CoreTest;

// True when the worker's end reads end-of-stream: the supervisor closed
// its end.
bool peer_closed(const Handle& h) {
  char byte = 0;
  return ::recv(h.fd.get(), &byte, 1, MSG_DONTWAIT) == 0;
}

using GrantTableTest = CoreTest;

TEST_F(GrantTableTest, MintAuditsTheGrantAndCountsItsHolder) {
  auto m = mint();
  ASSERT_NE(m.id, 0u);
  const GrantRecord* g = table_->find(m.id);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->holder, &worker_);
  EXPECT_EQ(g->origin, GrantOrigin::kReturned);
  EXPECT_EQ(table_->find_by_inode(socket_inode(m.handle.fd)), m.id);
  EXPECT_EQ(table_->live(), 1u);
  EXPECT_EQ(worker_.live, 1u);
  EXPECT_EQ(worker_.grants, 1u);
  EXPECT_EQ(audit_count("\"event\":\"grant_created\",\"grant\":" + std::to_string(m.id)), 1u)
      << "the grant is in the log before its port is returned";
  EXPECT_FALSE(peer_closed(m.handle));
}

TEST_F(GrantTableTest, RightsAreCutToTheInterfacesMethods) {
  auto m = mint(0, kAllRights);
  EXPECT_EQ(table_->find(m.id)->rights, echo_->defined_rights());
  EXPECT_THAT(rights_names(*echo_, right_of(0) | right_of(2)), ElementsAre("Echo", "Tree"));
}

TEST_F(GrantTableTest, AStoppedHolderOrAGoneParentGetsNothing) {
  auto gone = table_->mint(worker_, spec(99, kAllRights, GrantOrigin::kReturned, ""), std::make_unique<testing::HoldingService>(held_));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::kRevoked);
  worker_.running = false;
  auto stopped = table_->mint(worker_, spec(0, kAllRights, GrantOrigin::kReturned, ""), std::make_unique<testing::HoldingService>(held_));
  ASSERT_FALSE(stopped);
  EXPECT_EQ(stopped.error().code, Errc::kRevoked);
  EXPECT_EQ(table_->live(), 0u);
}

TEST_F(GrantTableTest, TheLiveCapRefusesOneMoreAndAuditsIt) {
  profile_.limits.open_files = 2;  // cap: 2 + 16
  const std::uint64_t cap = worker_.max_live();
  ASSERT_EQ(cap, 2u + WorkerRecord::kLiveGrantSlack);
  std::vector<GrantTable::Minted> held;
  for (std::uint64_t i = 0; i < cap; ++i) held.push_back(mint());
  auto over = table_->mint(worker_, spec(0, kAllRights, GrantOrigin::kReturned, ""), std::make_unique<testing::HoldingService>(held_));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, Errc::kOverloaded);
  EXPECT_THAT(over.error().message, HasSubstr("holds its maximum of 18 live ports"));
  EXPECT_EQ(audit_count("\"event\":\"grant_refused\""), 1u);
  EXPECT_EQ(worker_.denials, 1u);
  // At the cap again after one is released: one more fits.
  table_->release(held.back().id, "test");
  EXPECT_TRUE(mint().id != 0);
}

TEST_F(GrantTableTest, ReleaseMovesChildrenUpAndClosesOnlyItsOwnPort) {
  auto a = mint();
  auto b = mint(a.id);
  auto c = mint(b.id);
  EXPECT_THAT(table_->find(a.id)->children, ElementsAre(b.id));
  table_->release(b.id, "holder closed the port");
  EXPECT_EQ(table_->find(b.id), nullptr);
  EXPECT_TRUE(peer_closed(b.handle));
  EXPECT_FALSE(peer_closed(c.handle));
  EXPECT_EQ(table_->find(c.id)->parent, a.id);
  EXPECT_THAT(table_->find(a.id)->children, ElementsAre(c.id));
  EXPECT_EQ(audit_count("\"event\":\"released\""), 1u);
  // The grandparent still reaches the moved child.
  EXPECT_THAT(table_->revoke_tree(a.id, "test"), ElementsAre(a.id, c.id));
  EXPECT_TRUE(peer_closed(c.handle));
}

TEST_F(GrantTableTest, RevokeTreeEndsEveryDescendantParentFirst) {
  auto a = mint();
  auto b1 = mint(a.id);
  auto b2 = mint(a.id);
  auto c = mint(b1.id);
  auto other = mint();
  EXPECT_THAT(table_->revoke_tree(a.id, "by the operator"), ElementsAre(a.id, b1.id, c.id, b2.id));
  for (const auto* m : {&a, &b1, &b2, &c}) EXPECT_TRUE(peer_closed(m->handle));
  EXPECT_FALSE(peer_closed(other.handle));
  EXPECT_EQ(table_->live(), 1u);
  EXPECT_EQ(worker_.live, 1u);
  EXPECT_EQ(audit_count("\"event\":\"revoked\""), 4u);
  EXPECT_EQ(audit_count("parent grant " + std::to_string(a.id) + " revoked"), 2u);
  EXPECT_EQ(audit_count("\"event\":\"released\""), 0u) << "a revoked grant is not also released";
  EXPECT_TRUE(table_->revoke_tree(a.id, "again").empty());
}

TEST_F(GrantTableTest, ARevokedPolicyGrantStaysRevokedByName) {
  auto m = table_->mint(worker_, spec(0, kAllRights, GrantOrigin::kPolicy, "texts"), std::make_unique<testing::HoldingService>(held_));
  ASSERT_TRUE(m);
  table_->revoke_tree(m->id, "test");
  EXPECT_TRUE(worker_.revoked_names.contains("texts"));
}

TEST_F(GrantTableTest, ViewsKeepABoundedHistoryOfEndedGrants) {
  std::vector<GrantId> ids;
  for (std::size_t i = 0; i < kEndedKept + 3; ++i) ids.push_back(mint().id);
  auto live = mint();
  for (GrantId id : ids) table_->release(id, "test");
  const auto views = table_->views(true);
  ASSERT_EQ(views.size(), kEndedKept + 1);
  EXPECT_EQ(views.back().id, live.id);
  EXPECT_EQ(views.back().state, GrantState::kLive);
  EXPECT_EQ(views.front().id, ids[3]) << "the oldest ended grants are dropped first";
  EXPECT_EQ(views.front().state, GrantState::kReleased);
  EXPECT_EQ(table_->views(false).size(), 1u);
}

TEST_F(GrantTableTest, HeldByListsTheHoldersGrantsInOrder) {
  auto a = mint();
  auto b = mint();
  EXPECT_THAT(table_->held_by(worker_), ElementsAre(a.id, b.id));
  WorkerRecord other;
  EXPECT_TRUE(table_->held_by(other).empty());
}

}  // namespace
}  // namespace capsa::supervisor
