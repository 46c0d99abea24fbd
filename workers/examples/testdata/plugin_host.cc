#include "workers/examples/testdata/plugin_host.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "capabilities/handle.h"
#include "capabilities/interfaces/builtin.h"
#include "capabilities/interfaces/log_sink.h"
#include "capabilities/sys.h"
#include "capsa_bootstrap_generated.h"
#include "fs_directory_generated.h"
#include "workers/sdk/testdata/list_reply.h"

namespace capsa::examples::testing {

struct PluginHost::Grant {
  std::string name;
  std::string interface;
  Rights rights = kAllRights;
  std::filesystem::path root;  // fs.Directory
  Port channel_end;            // a channel end, until handed over
  bool channel = false;
};

struct PluginHost::Served {
  std::thread thread;
  int fd = -1;        // the served port's fd, open while !done (guarded by mu_)
  bool done = false;
};

namespace {

std::string_view sv(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : std::string_view(s->c_str(), s->size());
}

bool is_root(std::string_view path) { return path.empty() || path == "."; }

// Test-host path rule: one plain name inside the root.
Result<void> plain_name(std::string_view p) {
  if (is_root(p) || p == ".." || p.find('/') != std::string_view::npos ||
      p.find('\0') != std::string_view::npos) {
    return make_error(Errc::kDenied, "path " + std::string(p) + " is not a plain name in the root");
  }
  return {};
}

}  // namespace

PluginHost::PluginHost() { (void)interfaces::register_builtin(registry_); }

PluginHost::~PluginHost() {
  for (;;) {
    std::unique_ptr<Served> s;
    {
      // Revoke everything still served (again each time: a Get being
      // answered may have added a port), so every service thread's run()
      // returns even if the plugin still holds ports.
      std::lock_guard lock(mu_);
      for (auto& other : served_) {
        if (!other->done) ::shutdown(other->fd, SHUT_RDWR);
      }
      if (served_.empty()) break;
      s = std::move(served_.back());
      served_.pop_back();
    }
    s->thread.join();
  }
}

void PluginHost::add_log(std::string name, Rights rights) {
  auto g = std::make_unique<Grant>();
  g->name = std::move(name);
  g->interface = interfaces::kLogSink;
  g->rights = rights;
  std::lock_guard lock(mu_);
  grants_.push_back(std::move(g));
}

void PluginHost::add_directory(std::string name, std::filesystem::path root, Rights rights) {
  auto g = std::make_unique<Grant>();
  g->name = std::move(name);
  g->interface = interfaces::kDirectory;
  g->rights = rights;
  g->root = std::move(root);
  std::lock_guard lock(mu_);
  grants_.push_back(std::move(g));
}

void PluginHost::add_channel_end(std::string name, std::string interface, Port end) {
  auto g = std::make_unique<Grant>();
  g->name = std::move(name);
  g->interface = std::move(interface);
  g->channel_end = std::move(end);
  g->channel = true;
  std::lock_guard lock(mu_);
  grants_.push_back(std::move(g));
}

Port PluginHost::start() {
  auto ch = make_channel();
  if (!ch) return Port();
  serve(std::move(ch->second), "bootstrap", std::string(interfaces::kBootstrap), kAllRights, {});
  return std::move(ch->first);
}

std::vector<std::string> PluginHost::log_lines() {
  std::lock_guard lock(mu_);
  return log_;
}

std::vector<std::string> PluginHost::refusals() {
  std::lock_guard lock(mu_);
  return refusals_;
}

void PluginHost::note_refusal(std::string what) {
  std::lock_guard lock(mu_);
  refusals_.push_back(std::move(what));
}

void PluginHost::serve(Port port, std::string grant, const std::string& interface, Rights rights,
                       std::filesystem::path root) {
  const Interface* iface = registry_.find(interface);
  auto served = std::make_unique<Served>();
  Served* raw = served.get();
  raw->fd = port.fd().get();
  ServerOptions options;
  options.rights = rights;
  options.on_bad_message = BadMessageAction::kClosePort;
  options.report = [this, grant](const Error& e, const EnvelopeInfo&) {
    note_refusal(std::string(errc_name(e.code)) + ": " + grant);
  };
  auto server = std::make_unique<Server>(std::move(port), *iface, std::move(options));
  if (interface == interfaces::kBootstrap) add_bootstrap_handlers(*server);
  if (interface == interfaces::kDirectory) add_directory_handlers(*server, std::move(root));
  if (interface == interfaces::kLogSink) add_log_handlers(*server);
  std::lock_guard lock(mu_);
  served_.push_back(std::move(served));
  raw->thread = std::thread([this, raw, s = std::move(server)]() mutable {
    (void)s->run();
    std::lock_guard l(mu_);
    raw->done = true;  // and the fd closed under the same lock the destructor takes
    s.reset();
  });
}

void PluginHost::add_bootstrap_handlers(Server& s) {
  (void)s.on("Get", [this](Message& m, Reply& reply) -> Result<void> {
    const std::string name(sv(m.payload_as<capsa::GetRequest>()->name()));
    Grant* grant = nullptr;
    {
      std::lock_guard lock(mu_);
      for (auto& g : grants_) {
        if (g->name == name) grant = g.get();
      }
    }
    if (grant == nullptr) {
      note_refusal("not found: " + name);
      return make_error(Errc::kNotFound, "no grant named " + name);
    }
    Fd worker_end;
    if (grant->channel) {
      std::lock_guard lock(mu_);
      if (!grant->channel_end.valid()) {  // the supervisor's answer too
        note_refusal("denied: " + name);
        return make_error(Errc::kDenied, "channel " + name + " was already handed out");
      }
      worker_end = grant->channel_end.release_fd();
    } else {
      auto ch = make_channel();
      if (!ch) return std::unexpected(ch.error());
      serve(std::move(ch->second), name, grant->interface, grant->rights, grant->root);
      worker_end = ch->first.release_fd();
    }
    auto index = reply.add_handle(Handle{HandleKind::kPort, std::move(worker_end)});
    auto& fbb = reply.builder();
    fbb.Finish(capsa::CreateGetReply(fbb, index, fbb.CreateString(grant->interface),
                                     grant->rights));
    return {};
  });
  (void)s.on("List", [this](Message&, Reply& reply) -> Result<void> {
    auto& fbb = reply.builder();
    std::vector<flatbuffers::Offset<capsa::GrantInfo>> v;
    std::lock_guard lock(mu_);
    for (const auto& g : grants_) {
      v.push_back(capsa::CreateGrantInfo(fbb, fbb.CreateString(g->name),
                                         fbb.CreateString(g->interface), g->rights));
    }
    fbb.Finish(capsa::CreateListReply(fbb, fbb.CreateVector(v)));
    return {};
  });
}

void PluginHost::add_directory_handlers(Server& s, std::filesystem::path root) {
  (void)s.on("List", [root](Message& m, Reply& reply) -> Result<void> {
    auto path = sv(m.payload_as<fs::ListRequest>()->path());
    if (!is_root(path)) return make_error(Errc::kNotFound, "only the root is listed here");
    worker::testing::finish_list_reply(reply.builder(), root);
    return {};
  });
  (void)s.on("OpenFile", [root](Message& m, Reply& reply) -> Result<void> {
    auto path = sv(m.payload_as<fs::OpenFileRequest>()->path());
    if (auto r = plain_name(path); !r) return r;
    auto fd = open_file_handle((root / path).string());
    if (!fd) return make_error(Errc::kNotFound, "no regular file " + std::string(path));
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return make_error(Errc::kFailed, "fstat", errno);
    auto index = reply.add_handle(Handle{HandleKind::kFile, std::move(*fd)});
    auto& fbb = reply.builder();
    fbb.Finish(fs::CreateOpenFileReply(fbb, index, static_cast<std::uint64_t>(st.st_size)));
    return {};
  });
  (void)s.on("Stat", [root](Message& m, Reply& reply) -> Result<void> {
    auto path = sv(m.payload_as<fs::StatRequest>()->path());
    std::error_code ec;
    auto st = std::filesystem::symlink_status(is_root(path) ? root : root / path, ec);
    if (ec || (!is_root(path) && !plain_name(path))) {
      return make_error(Errc::kNotFound, "no " + std::string(path));
    }
    auto type = std::filesystem::is_regular_file(st) ? fs::EntryType::Regular
                : std::filesystem::is_directory(st)  ? fs::EntryType::Directory
                                                     : fs::EntryType::Other;
    auto& fbb = reply.builder();
    fbb.Finish(fs::CreateStatReply(fbb, type, 0, 0));
    return {};
  });
}

void PluginHost::add_log_handlers(Server& s) {
  (void)s.on("Write", [this](Message& m, Reply& reply) -> Result<void> {
    auto req = interfaces::log_sink::read_write_request(m.payload().data());
    if (!req.has_text) return make_error(Errc::kBadMessage, "no text");
    {
      std::lock_guard lock(mu_);
      log_.emplace_back(req.text);
    }
    interfaces::log_sink::build_write_reply(reply.builder());
    return {};
  });
}

Result<PluginProcess> start_plugin(const std::string& program, const std::vector<std::string>& args,
                                   Port bootstrap) {
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return make_error(Errc::kFailed, "pipe2", errno);
  Fd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return make_error(Errc::kFailed, "pipe2", errno);
  Fd err_r(err[0]), err_w(err[1]);
  auto null = sys_fd("open", "/dev/null", [] { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); });
  if (!null) return std::unexpected(null.error());

  // Everything the child needs is made before fork(): after it, only
  // async-signal-safe calls (other threads of this process may hold locks).
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int boot = bootstrap.fd().get();

  pid_t pid = ::fork();
  if (pid < 0) return make_error(Errc::kFailed, "fork", errno);
  if (pid == 0) {
    // Every fd of the test process is close-on-exec, so the plugin gets
    // exactly 0, 1, 2 and 3. Our fds are all >= 3 (0-2 are open), so 0-2
    // are set first; then 3, which may be the bootstrap port itself (dup2
    // onto itself would leave close-on-exec set).
    if (::dup2(null->get(), 0) != 0 || ::dup2(out_w.get(), 1) != 1 || ::dup2(err_w.get(), 2) != 2) {
      _exit(120);
    }
    if (boot == 3) {
      if (::fcntl(3, F_SETFD, 0) != 0) _exit(120);
    } else if (::dup2(boot, 3) != 3) {
      _exit(120);
    }
    ::execv(argv[0], argv.data());
    _exit(121);
  }
  return PluginProcess{pid, std::move(out_r), std::move(err_r)};
}

PluginResult finish_plugin(PluginProcess p) {
  PluginResult result;
  std::array<pollfd, 2> fds{pollfd{p.out.get(), POLLIN, 0}, pollfd{p.err.get(), POLLIN, 0}};
  std::array<std::string*, 2> into{&result.out, &result.err};
  int open = 2;
  while (open > 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      std::array<char, 4096> buf;
      ssize_t n = ::read(fds[i].fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;  // end of file (or an error): stop polling it
        --open;
        continue;
      }
      into[i]->append(buf.data(), static_cast<std::size_t>(n));
    }
  }
  while (::waitpid(p.pid, &result.status, 0) < 0 && errno == EINTR) {
  }
  return result;
}

}  // namespace capsa::examples::testing
