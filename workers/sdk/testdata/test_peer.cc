#include "workers/sdk/testdata/test_peer.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "capabilities/interfaces/builtin.h"
#include "capabilities/interfaces/log_sink.h"
#include "capabilities/server.h"
#include "capabilities/sys.h"
#include "capsa_bootstrap_generated.h"
#include "fs_directory_generated.h"
#include "fs_file_generated.h"
#include "workers/sdk/testdata/list_reply.h"

namespace capsa::worker::testing {

struct TestSupervisor::Served {
  std::thread thread;
  int fd = -1;        // valid while !done (guarded by mu_)
  bool done = false;
};

namespace {
struct Grant {
  const char* name;
  const char* interface;
  Rights rights;
};
const Grant kGrants[] = {
    {"docs", "fs.Directory", kAllRights},
    {"ro_docs", "fs.Directory", right_of(2)},  // List only
    {"logs", "log.Sink", kAllRights},
    {"alien", "x.Unknown", kAllRights},
};

std::string_view sv(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : std::string_view(s->c_str(), s->size());
}

// Test-peer path rule: one plain name inside the root (the real resolver is
// the supervisor's, with openat2 RESOLVE_BENEATH).
Result<void> plain_name(std::string_view p) {
  if (p.empty() || p == "." || p == ".." || p.find('/') != std::string_view::npos) {
    return make_error(Errc::kDenied, "path " + std::string(p) + " is outside the root");
  }
  return {};
}
}  // namespace

TestSupervisor::TestSupervisor(std::filesystem::path root) : root_(std::move(root)) {
  (void)interfaces::register_builtin(registry_);
  auto ch = make_channel();
  worker_end_ = std::move(ch->first);
  serve(std::move(ch->second), std::string(interfaces::kBootstrap), kAllRights);
}

TestSupervisor::~TestSupervisor() {
  worker_end_ = Port();
  for (;;) {
    std::unique_ptr<Served> s;
    {
      std::lock_guard lock(mu_);
      if (served_.empty()) break;
      s = std::move(served_.back());
      served_.pop_back();
    }
    s->thread.join();
  }
}

Port TestSupervisor::take_worker_end() { return std::move(worker_end_); }

void TestSupervisor::revoke_all() {
  std::lock_guard lock(mu_);
  for (auto& s : served_) {
    if (!s->done) ::shutdown(s->fd, SHUT_RDWR);
  }
}

std::vector<std::string> TestSupervisor::log_lines() {
  std::lock_guard lock(mu_);
  return log_;
}

void TestSupervisor::serve(Port port, std::string interface, Rights rights) {
  auto served = std::make_unique<Served>();
  Served* raw = served.get();
  raw->fd = port.fd().get();
  std::lock_guard lock(mu_);
  served_.push_back(std::move(served));
  raw->thread = std::thread([this, raw, interface, rights, p = std::move(port)]() mutable {
    const Interface* iface = registry_.find(interface);
    ServerOptions so;
    so.rights = rights;
    Server server(std::move(p), *iface, so);
    add_handlers(server, interface, raw->fd);
    (void)server.run();
    std::lock_guard l(mu_);
    raw->done = true;  // before ~Server closes the fd revoke_all() may touch
  });
}

void TestSupervisor::add_handlers(Server& s, const std::string& interface, int own_fd) {
  // Hands out a new channel: one end served here, one end in the reply.
  auto hand_out = [this](Reply& reply, const std::string& iface, Rights rights) -> Result<std::uint32_t> {
    auto ch = make_channel();
    if (!ch) return std::unexpected(ch.error());
    {
      std::lock_guard lock(mu_);
      handed_out_.emplace_back(ch->first.inode(), iface);
    }
    if (iface != "x.Unknown") serve(std::move(ch->second), iface, rights);
    return reply.add_handle(Handle{HandleKind::kPort, ch->first.release_fd()});
  };
  if (interface == interfaces::kBootstrap) {
    (void)s.on("Get", [hand_out](Message& m, Reply& reply) -> Result<void> {
      auto name = sv(m.payload_as<capsa::GetRequest>()->name());
      if (name == "portless") {  // a broken supervisor: a grant without its port
        auto& fbb = reply.builder();
        fbb.Finish(capsa::CreateGetReply(fbb, flatbuffers::nullopt,
                                         fbb.CreateString("fs.Directory"), kAllRights));
        return {};
      }
      for (const auto& g : kGrants) {
        if (name != g.name) continue;
        auto idx = hand_out(reply, g.interface, g.rights);
        if (!idx) return std::unexpected(idx.error());
        auto& fbb = reply.builder();
        fbb.Finish(capsa::CreateGetReply(fbb, *idx, fbb.CreateString(g.interface), g.rights));
        return {};
      }
      return make_error(Errc::kNotFound, "no grant named " + std::string(name));
    });
    (void)s.on("List", [](Message&, Reply& reply) -> Result<void> {
      auto& fbb = reply.builder();
      std::vector<flatbuffers::Offset<capsa::GrantInfo>> v;
      for (const auto& g : kGrants) {
        v.push_back(capsa::CreateGrantInfo(fbb, fbb.CreateString(g.name),
                                           fbb.CreateString(g.interface), g.rights));
      }
      fbb.Finish(capsa::CreateListReply(fbb, fbb.CreateVector(v)));
      return {};
    });
    (void)s.on("Attenuate", [this, hand_out](Message& m, Reply& reply) -> Result<void> {
      const auto* req = m.payload_as<capsa::AttenuateRequest>();
      if (!req->port().has_value()) return make_error(Errc::kBadMessage, "no port");
      Fd old = m.take_handle(*req->port());
      std::string iface;
      {
        std::lock_guard lock(mu_);
        for (auto& [ino, name] : handed_out_) {
          if (ino == socket_inode(old)) iface = name;
        }
      }
      if (iface.empty()) return make_error(Errc::kNotFound, "not a port served to this worker");
      const Interface* i = registry_.find(iface);
      Rights rights = 0;
      if (req->methods() != nullptr) {
        for (const auto* n : *req->methods()) {
          const Method* method = i->method(sv(n));
          if (method == nullptr) return make_error(Errc::kNotFound, "no method " + n->str());
          rights |= right_of(method->ordinal);
        }
      }
      if (rights == 0) return make_error(Errc::kDenied, "no rights left");
      auto idx = hand_out(reply, iface, rights);
      if (!idx) return std::unexpected(idx.error());
      auto& fbb = reply.builder();
      fbb.Finish(capsa::CreateAttenuateReply(fbb, *idx, fbb.CreateString(iface), rights));
      return {};
    });
  } else if (interface == interfaces::kDirectory) {
    (void)s.on("OpenFile", [this](Message& m, Reply& reply) -> Result<void> {
      auto path = sv(m.payload_as<fs::OpenFileRequest>()->path());
      if (auto r = plain_name(path); !r) return r;
      auto fd = open_file_handle((root_ / path).string());
      if (!fd) return make_error(Errc::kNotFound, "no file " + std::string(path));
      struct stat st {};
      ::fstat(fd->get(), &st);
      auto idx = reply.add_handle(Handle{HandleKind::kFile, std::move(*fd)});
      auto& fbb = reply.builder();
      fbb.Finish(fs::CreateOpenFileReply(fbb, idx, static_cast<std::uint64_t>(st.st_size)));
      return {};
    });
    (void)s.on("Open", [this, hand_out](Message& m, Reply& reply) -> Result<void> {
      auto path = sv(m.payload_as<fs::OpenRequest>()->path());
      if (auto r = plain_name(path); !r) return r;
      if (!std::filesystem::is_regular_file(root_ / path)) {
        return make_error(Errc::kNotFound, "no file " + std::string(path));
      }
      {
        std::lock_guard lock(mu_);
        files_.push_back((root_ / path).string());
      }
      auto idx = hand_out(reply, "fs.File", kAllRights);
      if (!idx) return std::unexpected(idx.error());
      auto& fbb = reply.builder();
      fbb.Finish(fs::CreateOpenReply(fbb, *idx));
      return {};
    });
    (void)s.on("List", [this](Message& m, Reply& reply) -> Result<void> {
      auto path = sv(m.payload_as<fs::ListRequest>()->path());
      if (!path.empty()) return make_error(Errc::kNotFound, "only the root is listed here");
      finish_list_reply(reply.builder(), root_);
      return {};
    });
  } else if (interface == interfaces::kFile) {
    // Serves the file most recently opened (Open registers it first).
    std::string path;
    {
      std::lock_guard lock(mu_);
      path = files_.empty() ? std::string() : files_.back();
    }
    auto fd = std::make_shared<Fd>(open_file_handle(path).value_or(Fd()));
    (void)s.on("Read", [fd](Message& m, Reply& reply) -> Result<void> {
      const auto* req = m.payload_as<fs::ReadRequest>();
      if (req->max_bytes() == 0 || req->max_bytes() > interfaces::kMaxReadBytes) {
        return make_error(Errc::kBadMessage, "max_bytes out of range");
      }
      std::vector<std::uint8_t> buf(req->max_bytes());
      auto n = sys("read", "test file", [&] {
        return req->offset() < 0 ? ::read(fd->get(), buf.data(), buf.size())
                                 : ::pread(fd->get(), buf.data(), buf.size(), req->offset());
      });
      if (!n) return make_error(Errc::kFailed, n.error().message);
      buf.resize(static_cast<std::size_t>(*n));
      auto& fbb = reply.builder();
      fbb.Finish(fs::CreateReadReply(fbb, fbb.CreateVector(buf), buf.size() < req->max_bytes()));
      return {};
    });
    (void)s.on("Stat", [fd](Message&, Reply& reply) -> Result<void> {
      struct stat st {};
      ::fstat(fd->get(), &st);
      auto& fbb = reply.builder();
      fbb.Finish(fs::CreateFileStatReply(fbb, static_cast<std::uint64_t>(st.st_size), 0));
      return {};
    });
  } else if (interface == interfaces::kLogSink) {
    (void)s.on("Write", [this, own_fd](Message& m, Reply& reply) -> Result<void> {
      auto req = interfaces::log_sink::read_write_request(m.payload().data());
      if (!req.has_text) return make_error(Errc::kBadMessage, "no text");
      {
        std::lock_guard lock(mu_);
        log_.emplace_back(req.text);
      }
      // Revoked mid-call: the call was received, the port dies before the
      // reply. shutdown() on our own end, which this thread owns.
      if (req.text == "revoke-me") ::shutdown(own_fd, SHUT_RDWR);
      interfaces::log_sink::build_write_reply(reply.builder());
      return {};
    });
  }
}

}  // namespace capsa::worker::testing
