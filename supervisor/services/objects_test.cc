// Associated objects (docs/PROTOCOL.md section 8) through the real
// supervisor: fs.File objects opened on an fs.Directory port with the SDK,
// their order on the port, their grants and audit lines, Release and
// Detach, revocation with the parent, ids that mean nothing on another port
// or after release, the `objects` limit, and memory flat over many.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "capabilities/interfaces/builtin.h"
#include "capsa_object_generated.h"
#include "fs_directory_generated.h"
#include "fs_file_generated.h"
#include "supervisor/services/services_test_util.h"
#include "tests/support/fd_count.h"

namespace capsa::supervisor::services {
namespace {

using namespace capsa::supervisor::services::testing;

class ObjectsTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    write_file("a.txt", "aaaaaaaaaaaa");
    write_file("b.txt", "bbbbbbbbbbbb");
  }

  void start_with_objects(std::uint64_t objects, std::uint64_t messages_per_second = 1000) {
    start([&](policy::WorkerBuilder& w) {
      w.grant("docs", "fs.Directory").all_rights().constraint("root", root_);
      w.limit(policy::LimitKind::kObjects, objects);
      w.limit(policy::LimitKind::kMessagesPerSecond, messages_per_second);
    });
  }

  Result<worker::Directory> docs() { return worker::Directory::get(ctx(), "docs"); }

  std::vector<GrantView> objects() {
    std::vector<GrantView> out;
    for (auto& g : grants()) {
      if (g.kind == GrantKind::kObject) out.push_back(g);
    }
    return out;
  }

  std::string audit_text() {
    std::ifstream in(dir_.path() + "/audit.jsonl");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::size_t audit_count(std::string_view part) {
    const std::string all = audit_text();
    std::size_t n = 0;
    for (auto at = all.find(part); at != std::string::npos; at = all.find(part, at + 1)) ++n;
    return n;
  }
};

// fs.File.Read of one byte naming `object` on `port`'s socket, sent by a
// raw Client on a duplicate of it: the envelope a hostile worker builds by
// hand, for ids the SDK would never send (and never releases after).
Result<Message> read_object(worker::Capability& port, std::uint64_t object, const Interface& file) {
  Client raw(Port(Fd(::dup(port.fd().get()))), port.interface());
  auto& fbb = raw.payload_builder();
  fbb.Finish(fs::CreateReadRequest(fbb, -1, 1));
  return raw.call(CallTarget{object, false, &file}, 0, raw.payload_bytes());
}

TEST_F(ObjectsTest, AnObjectReadsLikeAPortAndIsAGrantOnItsPortWithNoNewFd) {
  capsa::testing::FdLeakCheck leaks;
  start_with_objects(16);
  {
    auto d = docs();
    ASSERT_TRUE(d) << d.error().to_string();
    const std::size_t fds_before = capsa::testing::open_fd_count();
    auto a = d->open_associated("a.txt");
    ASSERT_TRUE(a) << a.error().to_string();
    // No socket, no fd on the worker's side: at most one new fd in this
    // process (worker and supervisor share it here), the supervisor's open
    // file; a port-backed Open adds a socketpair besides.
    EXPECT_LE(capsa::testing::open_fd_count(), fds_before + 1);
    auto first = a->read(4);
    ASSERT_TRUE(first) << first.error().to_string();
    EXPECT_EQ(text_of(*first), "aaaa");
    auto size = a->size();
    ASSERT_TRUE(size);
    EXPECT_EQ(*size, 12u);
    EXPECT_NE(a->capability().object_id(), 0u);

    auto dir = grant_named("docs");
    ASSERT_TRUE(dir);
    auto objs = objects();
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].interface, "fs.File");
    EXPECT_EQ(objs[0].parent, dir->id);
    EXPECT_EQ(objs[0].port_grant, dir->id);
    EXPECT_EQ(objs[0].object, a->capability().object_id());
    EXPECT_EQ(objs[0].origin, GrantOrigin::kReturned);
    EXPECT_EQ(objs[0].rights, (std::vector<std::string>{"Read", "Seek", "Stat"}));
    EXPECT_EQ(objs[0].calls, 2u);
    EXPECT_EQ(audit_count("\"kind\":\"object\",\"port_grant\":" + std::to_string(dir->id) +
                          ",\"object\":" + std::to_string(objs[0].object)),
              1u);
  }
  // The SDK released the object, then closed the port: nothing is left.
  EXPECT_TRUE(objects().empty());
  EXPECT_EQ(audit_count("\"released by its holder\""), 1u);
  stop();
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(ObjectsTest, CallsOnSeveralObjectsOfOnePortAreServedInTheOrderSent) {
  start_with_objects(16);
  auto d = docs();
  ASSERT_TRUE(d);
  auto a = d->open_associated("a.txt");
  auto b = d->open_associated("b.txt");
  ASSERT_TRUE(a && b);
  // 12 reads (within calls_in_flight, 16), interleaved a, b, b, a, ...,
  // all sent before any answer is read; one port serves one call at a time
  // in order, so the answers come back in the order sent, each from its
  // own object.
  std::vector<int> order;
  std::vector<std::string> data;
  const char pattern[] = "abbaab" "babbaa";
  for (int i = 0; i < 12; ++i) {
    worker::File& f = pattern[i] == 'a' ? *a : *b;
    auto& fbb = f.capability().payload_builder();
    fbb.Finish(fs::CreateReadRequest(fbb, i % 12, 1));
    auto id = f.capability().submit("Read", f.capability().payload_bytes(), {},
                                    [&order, &data, i](Result<Message> r) {
                                      order.push_back(i);
                                      if (!r) return data.push_back("error");
                                      auto* bytes = r->payload_as<fs::ReadReply>()->data();
                                      data.emplace_back(reinterpret_cast<const char*>(bytes->data()),
                                                        bytes->size());
                                    });
    ASSERT_TRUE(id) << id.error().to_string();
  }
  while (order.size() < 12) {
    auto r = d->capability().on_readable();
    ASSERT_TRUE(r) << r.error().to_string();
  }
  std::vector<int> sent(12);
  for (int i = 0; i < 12; ++i) sent[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(order, sent);
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(data[static_cast<std::size_t>(i)], std::string(1, pattern[i])) << i;
  }
}

TEST_F(ObjectsTest, AReleasedOrForeignIdIsNotFoundAuditedAndThePortKeepsServing) {
  start_with_objects(16);
  auto d1 = docs();
  auto d2 = docs();  // a second port to the same grant
  ASSERT_TRUE(d1 && d2);
  auto a = d1->open_associated("a.txt");
  ASSERT_TRUE(a);
  const std::uint64_t id = a->capability().object_id();
  const Interface* file = ctx().registry()->find(interfaces::kFile);
  ASSERT_NE(file, nullptr);

  // The id means nothing on the other port, which has no objects at all.
  auto foreign = read_object(d2->capability(), id, *file);
  EXPECT_TRUE(fails_with(foreign, Errc::kNotFound, "no object " + std::to_string(id) + " on this port"));
  EXPECT_TRUE(d2->list(".")) << "the port that was asked still serves";

  // Released: gone for good, on its own port too.
  a = Result<worker::File>(std::unexpected(Error{Errc::kClosed, "dropped", 0}));
  auto released = read_object(d1->capability(), id, *file);
  EXPECT_TRUE(fails_with(released, Errc::kNotFound, "no object"));
  // A made-up id likewise.
  EXPECT_TRUE(fails_with(read_object(d1->capability(), 999, *file), Errc::kNotFound, "no object 999"));
  EXPECT_TRUE(d1->list("."));
  EXPECT_EQ(audit_count("\"event\":\"call_denied\""), 3u);
  EXPECT_EQ(audit_count("no object"), 3u);
  // A new object gets a new id: ids are never reused on a port.
  auto again = d1->open_associated("a.txt");
  ASSERT_TRUE(again);
  EXPECT_GT(again->capability().object_id(), id);
}

// capsa.Object messages a hostile worker sends by hand: a Release of an id
// twice, a Detach as an event, Release of an unknown id as a call, and a
// call naming object 0 with the control flag.
TEST_F(ObjectsTest, HostileControlMessagesAreRefusedAuditedAndThePortServesOn) {
  start_with_objects(16);
  auto d = docs();
  ASSERT_TRUE(d);
  auto a = d->open_associated("a.txt");
  ASSERT_TRUE(a);
  const std::uint64_t id = a->capability().object_id();
  const Interface* object_iface = ctx().registry()->find(interfaces::kObject);
  ASSERT_NE(object_iface, nullptr);
  Client raw(Port(Fd(::dup(d->capability().fd().get()))), d->capability().interface());
  auto release = [&](std::uint64_t object) {
    auto& fbb = raw.payload_builder();
    fbb.Finish(CreateReleaseRequest(fbb));
    return raw.call(CallTarget{object, true, object_iface}, 0, raw.payload_bytes());
  };
  // A Release as a call is answered; the SDK's own File then finds its
  // object gone.
  ASSERT_TRUE(release(id));
  EXPECT_TRUE(fails_with(release(id), Errc::kNotFound, "no object " + std::to_string(id)));
  EXPECT_TRUE(fails_with(a->read(1), Errc::kNotFound, "no object"));
  // Detach sent as an event: refused (audited), nothing answered, no port.
  auto b = d->open_associated("b.txt");
  ASSERT_TRUE(b);
  auto& fbb = raw.payload_builder();
  fbb.Finish(CreateDetachRequest(fbb));
  ASSERT_TRUE(raw.send_event(CallTarget{b->capability().object_id(), true, object_iface}, 1,
                             raw.payload_bytes()));
  EXPECT_TRUE(b->read(1)) << "the object is still there";
  EXPECT_EQ(audit_count("Detach is a call"), 1u);
  EXPECT_TRUE(d->list("."));
  EXPECT_EQ(objects().size(), 1u);
  // None of the above was a bad message. Control without an object is: the
  // worker's on_bad_message (kill, the default) applies.
  auto& fbb2 = raw.payload_builder();
  fbb2.Finish(CreateReleaseRequest(fbb2));
  auto bad = raw.call(CallTarget{0, true, object_iface}, 0, raw.payload_bytes());
  EXPECT_FALSE(bad);
  EXPECT_EQ(audit_count("\"event\":\"bad_message\""), 1u);
  EXPECT_EQ(audit_count("a control message names no object"), 1u);
  EXPECT_EQ(audit_count("\"action\":\"kill_worker\""), 1u);
}

TEST_F(ObjectsTest, DetachMovesTheObjectToAPortOfItsOwnKeepingItsPosition) {
  start_with_objects(16);
  auto d = docs();
  ASSERT_TRUE(d);
  auto a = d->open_associated("a.txt");
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->read(5));
  const std::uint64_t id = a->capability().object_id();
  auto port = a->capability().detach();
  ASSERT_TRUE(port) << port.error().to_string();
  EXPECT_EQ(port->object_id(), 0u);
  EXPECT_TRUE(port->fd().valid());
  EXPECT_EQ(a->capability().state(), worker::CapabilityState::kReleased);
  auto f = worker::File::wrap(std::move(*port));
  ASSERT_TRUE(f);
  auto rest = f->read(100);
  ASSERT_TRUE(rest) << rest.error().to_string();
  EXPECT_EQ(text_of(*rest), "aaaaaaa");  // from position 5: the service moved with it
  EXPECT_TRUE(objects().empty());
  auto dir = grant_named("docs");
  std::optional<GrantView> file_port;
  for (auto& g : grants()) {
    if (g.interface == "fs.File" && g.kind == GrantKind::kServed) file_port = g;
  }
  ASSERT_TRUE(file_port);
  EXPECT_EQ(file_port->parent, dir->id);
  EXPECT_EQ(audit_count("detached to grant " + std::to_string(file_port->id)), 1u);
  const Interface* file = ctx().registry()->find(interfaces::kFile);
  EXPECT_TRUE(fails_with(read_object(d->capability(), id, *file), Errc::kNotFound, "no object"));
}

TEST_F(ObjectsTest, RevokingTheDirectoryRevokesEveryObjectAndRevokingAnObjectLeavesThePort) {
  capsa::testing::FdLeakCheck leaks;
  start_with_objects(16);
  {
    auto d = docs();
    ASSERT_TRUE(d);
    auto a = d->open_associated("a.txt");
    auto b = d->open_associated("b.txt");
    auto c = d->open_associated("a.txt");
    ASSERT_TRUE(a && b && c);
    auto objs = objects();
    ASSERT_EQ(objs.size(), 3u);

    // One object alone: the others and the port keep serving.
    auto one = loop_->on_loop([&] { return sup_->revoke(objs[0].id, "test"); });
    ASSERT_TRUE(one);
    EXPECT_EQ(*one, std::vector<GrantId>{objs[0].id});
    EXPECT_TRUE(fails_with(a->read(1), Errc::kNotFound, "no object"));
    EXPECT_TRUE(b->read(1));
    EXPECT_TRUE(d->list("."));

    // The directory: it and its two remaining objects, parent first.
    auto dir = grant_named("docs");
    auto all = loop_->on_loop([&] { return sup_->revoke(dir->id, "test"); });
    ASSERT_TRUE(all);
    EXPECT_EQ(all->size(), 3u);
    EXPECT_EQ(all->front(), dir->id);
    EXPECT_TRUE(objects().empty());
    EXPECT_TRUE(fails_with(b->read(1), Errc::kRevoked, ""));
    EXPECT_TRUE(fails_with(c->read(1), Errc::kRevoked, ""));
    EXPECT_EQ(b->capability().state(), worker::CapabilityState::kRevoked);
  }
  stop();
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

// An object shares its port's Client: releasing it (here by destruction)
// must not touch a payload the worker is building on that port.
TEST_F(ObjectsTest, ReleasingAnObjectLeavesThePortsPayloadBeingBuiltAlone) {
  start_with_objects(16);
  auto d = docs();
  ASSERT_TRUE(d);
  auto a = d->open_associated("a.txt");
  ASSERT_TRUE(a);
  auto& cap = d->capability();
  auto& fbb = cap.payload_builder();
  fbb.Finish(fs::CreateListRequest(fbb, fbb.CreateString("missing")));
  { worker::File gone = std::move(*a); }  // sends capsa.Object.Release
  // Still the List of "missing", not an empty request (which lists ".").
  EXPECT_TRUE(fails_with(cap.call("List", cap.payload_bytes()), Errc::kNotFound, ""));
  EXPECT_TRUE(d->list("."));
  EXPECT_TRUE(objects().empty());
}

TEST_F(ObjectsTest, ClosingThePortReleasesItsObjects) {
  start_with_objects(16);
  std::optional<worker::File> kept;
  {
    auto d = docs();
    ASSERT_TRUE(d);
    auto a = d->open_associated("a.txt");
    ASSERT_TRUE(a);
    kept.emplace(std::move(*a));
    ASSERT_EQ(objects().size(), 1u);
    // An object keeps its port open in the SDK (they share it); the port
    // itself is closed here, as a worker gives it away or exits.
    Port given_up = d->capability().release();
  }
  // The supervisor sees the hang-up on its loop.
  for (int i = 0; i < 200 && !objects().empty(); ++i) ::usleep(5000);
  EXPECT_TRUE(objects().empty());
  EXPECT_EQ(audit_count("\"its port was released\""), 1u);
  EXPECT_TRUE(fails_with(kept->read(1), Errc::kRevoked, ""));
}

TEST_F(ObjectsTest, PastTheObjectsLimitIsOverloadedAndAudited) {
  start_with_objects(3);
  auto d = docs();
  ASSERT_TRUE(d);
  std::vector<worker::File> held;
  for (int i = 0; i < 3; ++i) {
    auto f = d->open_associated("a.txt");
    ASSERT_TRUE(f) << f.error().to_string();
    held.push_back(std::move(*f));
  }
  auto over = d->open_associated("a.txt");
  EXPECT_TRUE(fails_with(over, Errc::kOverloaded, "holds its maximum of 3 objects"));
  EXPECT_EQ(audit_count("\"grant_refused\""), 1u);
  // Ports are a separate count: a port-backed open still works.
  EXPECT_TRUE(d->open(ctx(), "a.txt"));
  held.pop_back();  // released
  EXPECT_TRUE(d->open_associated("b.txt"));
}

TEST_F(ObjectsTest, ManyObjectsOpenedAndReleasedKeepTheSupervisorsMemoryFlat) {
  start_with_objects(16, 1'000'000);
  auto d = docs();
  ASSERT_TRUE(d);
  auto cycle = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto f = d->open_associated("a.txt");
      ASSERT_TRUE(f) << f.error().to_string();
    }
  };
  // The allocator's arenas settle first; then the heap must not grow with
  // the number of objects that came and went.
  cycle(500);
  const auto heap = [&] { return loop_->on_loop([] { return mallinfo2().uordblks; }); };
  ASSERT_TRUE(d->list("."));  // the last Release is served
  const std::size_t before = heap();
  // 3,000 in the suite (about 0.3 s); CAPSA_OBJECT_CYCLES=100000 for the
  // issue's figure (docs/PERFORMANCE.md, "Associated objects").
  const char* env = std::getenv("CAPSA_OBJECT_CYCLES");
  const int cycles = env != nullptr ? std::atoi(env) : 3000;
  cycle(cycles);
  ASSERT_TRUE(d->list("."));
  const std::size_t after = heap();
  EXPECT_TRUE(objects().empty());
  // Well under one object's cost per ten cycles (a leak of one GrantRecord
  // per object would be ~600 KB here).
  EXPECT_LT(after, before + 64 * 1024) << "before " << before << " after " << after;
  std::printf("objects: %d opened and released, supervisor heap %zu -> %zu bytes\n", cycles, before,
              after);
}

}  // namespace
}  // namespace capsa::supervisor::services
