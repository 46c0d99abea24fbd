// objects_bench [CALLS] [CYCLES] [OBJECTS] — associated objects
// (docs/PROTOCOL.md section 8) against port-backed capabilities, through
// a real supervisor with an fs.Directory grant and an attached worker
// using the C++ SDK (workers/sdk/builtins.h).
//
//  1. A call on an object vs the same call on a port: fs.File.Read of 4
//     bytes at offset 0 (every call identical) on a File opened with
//     Directory::open (a port of its own) and one opened with
//     Directory::open_associated (an object on the directory's port).
//     CALLS calls per round, five rounds interleaved, median ratio.
//     Target: object <= 1.05x port.
//  2. Open + release: CYCLES cycles of open and drop, port-backed vs
//     associated (Release is an event: each batch ends with one call on
//     the directory's port, which its FIFO serves after every Release).
//     Five rounds interleaved, median ratio. No target: reported.
//  3. Supervisor memory per object: OBJECTS objects opened and kept; the
//     live heap (mallinfo2, read on the loop thread between calls) before
//     and after, divided by OBJECTS, after a warm-up. The opens are plain
//     fs.Directory.Open calls on the SDK's capability that keep only the
//     ids, so no worker-side File is in the figure (mallinfo2 counts every
//     arena of this process, the worker's too). Target: <= 256 bytes.
//     Then the same with SDK File objects kept, for the whole process
//     (supervisor + SDK), and the kernel side: the fds the supervisor
//     gained (each fs.File object holds one open file).
//
// The worker is an attach()ed thread of this process, not a sandbox: the
// path measured is the supervisor's. Run pinned to one CPU
// (bench/objects/run.sh): on either path a Read goes worker -> supervisor
// loop -> pool thread (FileService's pread runs off the loop) -> loop ->
// worker.
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/must.h"
#include "bench/common/on_loop.h"
#include "fs_directory_generated.h"
#include "policy/builder.h"
#include "supervisor/supervisor.h"
#include "workers/sdk/builtins.h"
#include "workers/sdk/context.h"

using namespace capsa;
using namespace capsa::supervisor;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kRounds = 5;
constexpr std::uint32_t kReadBytes = 4;
constexpr const char* kFileName = "f.txt";

using capsa::bench::die;
using capsa::bench::must;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// The kernel's struct file size (filp slab), 0 when /proc/slabinfo is not
// readable (it is root-only on most systems).
unsigned filp_bytes() {
  std::ifstream in("/proc/slabinfo");
  std::string name;
  unsigned active = 0, total = 0, size = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("filp ", 0) != 0) continue;
    if (std::sscanf(line.c_str(), "filp %u %u %u", &active, &total, &size) == 3) return size;
  }
  return 0;
}

// One supervisor: worker "w" with grant "docs" (fs.Directory, every right)
// on a temporary root holding kFileName; the worker's side is an SDK
// Context on its bootstrap port; the loop runs on a thread of its own.
struct Bench {
  std::string root;
  std::unique_ptr<Supervisor> sup;
  std::optional<worker::Context> ctx;
  std::thread loop;

  explicit Bench(std::uint64_t objects) {
    char tmpl[] = "/tmp/objects_bench_XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) die("mkdtemp");
    root = tmpl;
    std::filesystem::create_directory(root + "/root");
    std::ofstream(root + "/root/" + kFileName, std::ios::binary)
        << "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    SupervisorOptions o;
    o.audit_log_path = root + "/audit.jsonl";
    o.log_output = [](std::string_view, LogLevel, std::string_view) {};
    o.ended_grants_kept = 0;
    policy::PolicyBuilder b(Supervisor::api_catalog(o));
    auto& w = b.worker("w").program("/bin/true");
    w.grant("docs", "fs.Directory").all_rights().constraint("root", root + "/root");
    w.limit(policy::LimitKind::kObjects, objects);
    w.limit(policy::LimitKind::kMessagesPerSecond, 1'000'000);
    w.limit(policy::LimitKind::kOpenFiles, 1024);
    auto p = b.try_build();
    if (!p) die(policy::format_diagnostics(p.error()));
    sup = must(Supervisor::create(std::move(*p), std::move(o)), "create");
    ctx.emplace(must(worker::Context::from_port(must(sup->attach("w"), "attach")), "context"));
    loop = std::thread([this] { (void)sup->reactor().run(); });
  }
  ~Bench() {
    ctx.reset();
    sup->reactor().stop();
    loop.join();
    sup.reset();
    std::filesystem::remove_all(root);
  }
  worker::Directory docs() { return must(worker::Directory::get(*ctx, "docs"), "Get docs"); }

  // Runs `f` on the loop thread and returns its result.
  template <typename F>
  auto on_loop(F f) -> decltype(f()) {
    return capsa::bench::on_loop(sup->reactor(), std::move(f));
  }
  // The live heap (every arena of the process), read on the loop thread
  // while the worker waits.
  std::size_t heap() { return capsa::bench::loop_heap(sup->reactor()); }
  std::size_t live_objects() {
    return on_loop([this] {
      std::size_t n = 0;
      for (const auto& g : sup->grants(false)) n += g.kind == GrantKind::kObject ? 1 : 0;
      return n;
    });
  }
};

double ns_per_read(worker::File& f, long calls) {
  auto t0 = Clock::now();
  for (long i = 0; i < calls; ++i) {
    auto r = must(f.read(kReadBytes, 0), "Read");
    if (r.size() != kReadBytes) die("short read");
  }
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() /
         static_cast<double>(calls);
}

void calls(long n) {
  Bench b(64);
  worker::Directory d = b.docs();
  worker::File port = must(d.open(*b.ctx, kFileName), "Open");
  worker::File object = must(d.open_associated(kFileName), "Open associated");
  (void)ns_per_read(port, n / 10);  // warm
  (void)ns_per_read(object, n / 10);
  std::vector<double> ratios;
  for (int r = 0; r < kRounds; ++r) {
    const double p = ns_per_read(port, n);
    const double o = ns_per_read(object, n);
    std::printf("round %d: Read on a port %.0f ns  on an object %.0f ns (%.3fx)\n", r + 1, p, o,
                o / p);
    ratios.push_back(o / p);
  }
  std::printf("call, median of %d: object %.3fx port (target <= 1.05x)\n", kRounds, median(ratios));
}

// Open + drop, `cycles` times; then one call on the directory's port.
template <typename Open>
double ns_per_cycle(worker::Directory& d, long cycles, Open open) {
  auto t0 = Clock::now();
  for (long i = 0; i < cycles; ++i) {
    worker::File f = open();
    (void)f;
  }
  must(d.list("."), "List");
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() /
         static_cast<double>(cycles);
}

void open_release(long cycles) {
  Bench b(64);
  worker::Directory d = b.docs();
  auto by_port = [&] { return must(d.open(*b.ctx, kFileName), "Open"); };
  auto by_object = [&] { return must(d.open_associated(kFileName), "Open associated"); };
  (void)ns_per_cycle(d, cycles / 10 + 1, by_port);  // warm
  (void)ns_per_cycle(d, cycles / 10 + 1, by_object);
  std::vector<double> ratios;
  for (int r = 0; r < kRounds; ++r) {
    const double p = ns_per_cycle(d, cycles, by_port);
    const double o = ns_per_cycle(d, cycles, by_object);
    std::printf("round %d: open + release, port %.0f ns  object %.0f ns (%.3fx)\n", r + 1, p, o,
                o / p);
    ratios.push_back(o / p);
  }
  std::printf("open + release, median of %d: object %.3fx port (no target)\n", kRounds,
              median(ratios));
  if (b.live_objects() != 0) die("objects left after open + release");
}

void memory(long objects) {
  // Each object holds an open file in the supervisor (this process), twice
  // `objects` of them at the end.
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  const rlim_t needed = static_cast<rlim_t>(2 * objects + 2 * 64 + 200);
  if (rl.rlim_cur < needed) {
    die("RLIMIT_NOFILE hard limit " + std::to_string(rl.rlim_max) + " is below the " +
        std::to_string(needed) + " fds " + std::to_string(objects) + " objects need");
  }
  constexpr long kWarm = 64;
  Bench b(static_cast<std::uint64_t>(2 * (objects + kWarm)));
  worker::Directory d = b.docs();

  // Supervisor only: the worker keeps the ids, nothing else.
  std::vector<std::uint64_t> ids;
  ids.reserve(static_cast<std::size_t>(objects + kWarm));
  auto open_id = [&] {
    auto& cap = d.capability();
    auto& fbb = cap.payload_builder();
    fbb.Finish(fs::CreateOpenRequest(fbb, fbb.CreateString(kFileName), /*associated=*/true));
    Message reply = must(cap.call("Open", cap.payload_bytes()), "Open associated");
    const std::uint64_t id = reply.payload_as<fs::OpenReply>()->object();
    if (id == 0) die("no object in the reply");
    ids.push_back(id);
  };
  for (long i = 0; i < kWarm; ++i) open_id();  // warm: first-use allocations
  const std::size_t fds0 = open_fds();
  const std::size_t heap0 = b.heap();
  for (long i = 0; i < objects; ++i) open_id();
  const std::size_t heap1 = b.heap();
  const std::size_t fds1 = open_fds();
  if (b.live_objects() != static_cast<std::size_t>(objects + kWarm)) die("objects not all live");
  // A sanitizer's allocator is not glibc's: mallinfo2 then reads 0, and
  // the figure would look like a target met.
  if (heap1 == heap0) std::printf("memory: mallinfo2 saw no change (not glibc's malloc?)\n");
  const double per = static_cast<double>(heap1 - heap0) / static_cast<double>(objects);
  std::printf("memory: %ld objects, supervisor heap +%zu bytes = %.0f bytes per object "
              "(target <= 256)\n",
              objects, heap1 - heap0, per);
  const unsigned filp = filp_bytes();
  std::printf("kernel: +%zu fds in the supervisor = %.2f per object (its open file: a struct "
              "file, %s, and an fd table slot)\n",
              fds1 - fds0, static_cast<double>(fds1 - fds0) / static_cast<double>(objects),
              filp != 0 ? ("filp slab " + std::to_string(filp) + " bytes here").c_str()
                        : "filp slab size unreadable here");

  // With the SDK's File objects kept as a worker would (one process here:
  // supervisor + worker SDK together).
  std::vector<worker::File> files;
  files.reserve(static_cast<std::size_t>(objects + kWarm));
  for (long i = 0; i < kWarm; ++i) files.push_back(must(d.open_associated(kFileName), "Open"));
  const std::size_t heap2 = b.heap();
  for (long i = 0; i < objects; ++i) files.push_back(must(d.open_associated(kFileName), "Open"));
  const std::size_t heap3 = b.heap();
  std::printf("memory with SDK File objects held: process heap +%zu bytes = %.0f bytes per object "
              "(supervisor + worker SDK)\n",
              heap3 - heap2, static_cast<double>(heap3 - heap2) / static_cast<double>(objects));
  files.clear();  // Release each
  must(d.list("."), "List");
  if (b.live_objects() != static_cast<std::size_t>(objects + kWarm)) die("Release not served");
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 100000;
  const long cycles = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 20000;
  const long objects = argc > 3 ? std::strtol(argv[3], nullptr, 10) : 5000;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (n < 10 || cycles < 1 || objects < 1 || objects > 30000) {
    die("usage: objects_bench [CALLS>=10] [CYCLES>=1] [OBJECTS 1..30000]");
  }
  calls(n);
  open_release(cycles);
  memory(objects);
  return 0;
}
