#include "tests/sandbox/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "tests/support/test_programs.h"

namespace capsa::sandbox::testing {

std::string helper_path(std::string_view name) { return capsa::testing::test_program(name); }

Limits small_limits() {
  Limits l;
  l.address_space_bytes = 256ull << 20;
  l.cpu_seconds = 2;
  l.wall_seconds = 20;
  l.max_processes = 32;
  l.max_open_files = 64;
  l.max_file_size_bytes = 8ull << 20;
  return l;
}

SpecBuilder hostile_spec(std::string_view attack, std::vector<std::string> args) {
  std::string program = helper_path("hostile_worker");
  std::vector<std::string> argv{program, std::string(attack)};
  argv.insert(argv.end(), args.begin(), args.end());
  SpecBuilder b;
  b.name("hostile-" + std::string(attack)).program(program).args(std::move(argv)).limits(small_limits());
  return b;
}

namespace {

Result<Running> start_with(const Spec& spec, const HostFiles* files, StdioFds stdio) {
  auto channel = make_channel();
  if (!channel) {
    ADD_FAILURE() << "make_channel: " << channel.error().to_string();
    return std::unexpected(channel.error());
  }
  auto [ours, theirs] = std::move(*channel);
  auto worker = files != nullptr ? spawn(spec, *files, theirs.release_fd(), std::move(stdio))
                                 : spawn(spec, theirs.release_fd(), std::move(stdio));
  if (!worker) {
    ADD_FAILURE() << "spawn " << spec.name << ": " << worker.error().to_string();
    return std::unexpected(worker.error());
  }
  if (auto nb = ours.set_nonblocking(true); !nb) {
    ADD_FAILURE() << "set_nonblocking: " << nb.error().to_string();
    return std::unexpected(nb.error());
  }
  return Running{std::move(*worker), std::move(ours)};
}

}  // namespace

Result<Running> start(const Spec& spec, StdioFds stdio) {
  return start_with(spec, nullptr, std::move(stdio));
}

Result<Running> start(const Spec& spec, const HostFiles& files) {
  return start_with(spec, &files, StdioFds{});
}

void answer_ping(const std::string& report, Port& port) {
  if (report != "hello ready") return;
  static constexpr char kPing[] = "ping";
  auto sent = port.send(std::as_bytes(std::span(kPing, 4)));
  EXPECT_TRUE(sent) << sent.error().to_string();
}

namespace {

// Reads every queued packet. Returns false once the peer is gone and the
// queue is empty.
bool drain_port(Running& run, Outcome& out, const OnReport& on_report) {
  for (;;) {
    auto packet = run.port.receive();
    if (!packet) {
      if (packet.error().code == Errc::kWouldBlock) return true;
      if (packet.error().code != Errc::kClosed) {
        ADD_FAILURE() << "receive: " << packet.error().to_string();
      }
      return false;
    }
    EXPECT_TRUE(packet->fds.empty()) << "a hostile worker sent fds";
    std::string text(reinterpret_cast<const char*>(packet->bytes.data()), packet->bytes.size());
    out.reports.push_back(text);
    if (on_report) on_report(text, run.port);
  }
}

void drain_violations(Running& run, Outcome& out) {
  for (;;) {
    auto v = run.worker.handle_violation();
    if (!v) {
      ADD_FAILURE() << "handle_violation: " << v.error().to_string();
      return;
    }
    if (!v->has_value()) return;
    out.violations.push_back(std::move(**v));
  }
}

// CAPSA_HOSTILE_VERBOSE=1 prints every outcome: what each attack met, for
// people reading a run (the assertions do not depend on it).
void maybe_print(const Running& run, const Outcome& out) {
  const char* verbose = std::getenv("CAPSA_HOSTILE_VERBOSE");
  if (verbose == nullptr || *verbose == '\0' || *verbose == '0') return;
  std::string text = "[hostile] " + run.worker.name() + ": " + out.status.to_string();
  for (const auto& r : out.reports) text += "\n  report: " + r;
  for (const auto& v : out.violations) text += "\n  violation: " + v.syscall;
  std::fprintf(stderr, "%s\n", text.c_str());
}

}  // namespace

Outcome finish(Running& run, const OnReport& on_report) {
  Outcome out;
  bool port_open = true;
  bool expired = false;
  for (;;) {
    pollfd fds[3] = {{run.worker.pidfd().get(), POLLIN, 0},
                     {run.worker.notify_fd().get(), POLLIN, 0},
                     {port_open ? run.port.fd().get() : -1, POLLIN, 0}};
    int timeout = -1;
    if (auto deadline = run.worker.deadline(); deadline && !expired) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline -
                                                                std::chrono::steady_clock::now());
      timeout = static_cast<int>(std::max<std::chrono::milliseconds::rep>(left.count(), 0));
    }
    int n = ::poll(fds, 3, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ADD_FAILURE() << "poll: " << std::strerror(errno);
      break;
    }
    if (n == 0) {
      if (auto r = run.worker.expire(); !r) ADD_FAILURE() << "expire: " << r.error().to_string();
      expired = true;
      continue;
    }
    if (fds[1].revents != 0) drain_violations(run, out);
    if (fds[2].revents != 0) port_open = drain_port(run, out, on_report);
    if (fds[0].revents != 0) {
      auto status = run.worker.try_reap();
      if (!status) {
        ADD_FAILURE() << "try_reap: " << status.error().to_string();
        break;
      }
      if (status->has_value()) {
        // Packets sent just before the exit are still queued.
        if (port_open) drain_port(run, out, on_report);
        out.status = **status;
        break;
      }
    }
  }
  maybe_print(run, out);
  return out;
}

Outcome run_spec(const Spec& spec, const OnReport& on_report) {
  auto running = start(spec);
  if (!running) return Outcome{};
  return finish(*running, on_report);
}

Outcome run_attack(std::string_view attack, std::vector<std::string> args,
                   ViolationAction action) {
  auto spec = hostile_spec(attack, std::move(args)).on_violation(action).build();
  if (!spec) {
    ADD_FAILURE() << "spec: " << spec.error().to_string();
    return Outcome{};
  }
  return run_spec(*spec);
}

void expect_still_serves() {
  auto spec = hostile_spec("hello").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  Outcome out = run_spec(*spec, answer_ping);
  EXPECT_EQ(out.reports, (std::vector<std::string>{"hello ready", "pong"}));
  EXPECT_EQ(out.status.kind, ExitKind::kExited) << out.status.to_string();
  EXPECT_EQ(out.status.code, 0) << out.status.to_string();
  EXPECT_TRUE(out.violations.empty());
}

std::map<std::string, std::string> parse_report(std::string_view report) {
  std::map<std::string, std::string> fields;
  std::size_t at = 0;
  while (at < report.size()) {
    std::size_t end = report.find(' ', at);
    if (end == std::string_view::npos) end = report.size();
    std::string_view word = report.substr(at, end - at);
    if (!word.empty()) {
      std::size_t eq = word.find('=');
      if (eq == std::string_view::npos) {
        fields[std::string(word)] = "";
      } else {
        fields[std::string(word.substr(0, eq))] = std::string(word.substr(eq + 1));
      }
    }
    at = end + 1;
  }
  return fields;
}

std::vector<std::string> syscall_names(const std::vector<Violation>& violations) {
  std::vector<std::string> names;
  for (const auto& v : violations) names.push_back(v.syscall);
  return names;
}

void expect_verdict(const Outcome& out, const std::string& report, const std::vector<std::string>& syscalls) {
  EXPECT_EQ(out.reports, std::vector<std::string>{report});
  EXPECT_EQ(syscall_names(out.violations), syscalls);
  EXPECT_EQ(out.status.kind, ExitKind::kExited) << out.status.to_string();
}

namespace {

// Reads a small /proc file whole ("" when it cannot).
std::string read_small(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  Fd owner(fd);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(owner.get(), buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

template <typename F>
void for_each_pid(F&& f) {
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    f(std::atoi(e->d_name));
  }
  ::closedir(dir);
}

}  // namespace

std::vector<int> child_pids() {
  std::vector<int> kids;
  const int self = ::getpid();
  for_each_pid([&](int pid) {
    std::string stat = read_small("/proc/" + std::to_string(pid) + "/stat");
    // "pid (comm) state ppid ...": comm may hold spaces and parens, so parse
    // after the last ')'.
    auto close = stat.rfind(')');
    if (close == std::string::npos) return;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == self) {
      kids.push_back(pid);
    }
  });
  return kids;
}

std::vector<int> pids_with_marker(std::string_view marker) {
  std::vector<int> found;
  for_each_pid([&](int pid) {
    std::string cmdline = read_small("/proc/" + std::to_string(pid) + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(marker) != std::string::npos) found.push_back(pid);
  });
  return found;
}

}  // namespace capsa::sandbox::testing
