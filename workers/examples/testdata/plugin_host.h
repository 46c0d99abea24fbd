// Test host for the example plugins: a real capsa.Bootstrap and real
// log.Sink / fs.Directory services, each a capsa::Server on its own thread
// over real sockets, for ONE plugin process started with its bootstrap port
// on fd 3. It lets the plugins be run and checked before (and apart from)
// the supervisor. It is a peer that speaks the protocol, not a mock: every
// message crosses a socket and is validated on both sides, and the rights
// given here are enforced by capsa::Server exactly as a served grant's are.
//
// What it does not do (the supervisor's job, tested with `capsa run`):
// sandboxing, seccomp, limits, audit log, killing a worker. A bad message
// closes the port it came on (on_bad_message "close_port") and is recorded
// in refusals(); so are `denied` answers and Gets of ungranted names.
//
// The fs.Directory service here is for test folders only: it lists the
// root ("" or ".") and opens plain names in it (no '/', O_NOFOLLOW). The
// real service resolves paths with openat2 RESOLVE_BENEATH.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "capabilities/interface_registry.h"
#include "capabilities/port.h"
#include "capabilities/server.h"

namespace capsa::examples::testing {

class PluginHost {
 public:
  PluginHost();
  // Shuts every served port down and joins the service threads.
  ~PluginHost();
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // Grants, by name, before the plugin starts. `rights` is the mask the
  // Bootstrap reply reports and the service enforces.
  void add_log(std::string name, Rights rights = kAllRights);
  void add_directory(std::string name, std::filesystem::path root, Rights rights = kAllRights);
  // One end of a channel, handed over to the first Get of `name`; a second
  // Get is `denied`, as the supervisor answers.
  void add_channel_end(std::string name, std::string interface, Port end);

  // Starts serving the bootstrap port and returns the plugin's end.
  Port start();

  // Texts written to any log.Sink grant, in order.
  std::vector<std::string> log_lines();
  // "denied: <grant>", "bad message: <grant>", "not found: <name>", in order.
  std::vector<std::string> refusals();

 private:
  struct Grant;
  struct Served;
  void serve(Port port, std::string grant, const std::string& interface, Rights rights,
             std::filesystem::path root);
  void add_bootstrap_handlers(Server& s);
  void add_directory_handlers(Server& s, std::filesystem::path root);
  void add_log_handlers(Server& s);
  void note_refusal(std::string what);

  InterfaceRegistry registry_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Grant>> grants_;
  std::vector<std::unique_ptr<Served>> served_;
  std::vector<std::string> log_;
  std::vector<std::string> refusals_;
};

// A plugin process: its pid and the read ends of its stdout and stderr.
struct PluginProcess {
  pid_t pid = -1;
  Fd out;
  Fd err;
};

struct PluginResult {
  int status = 0;  // as from waitpid
  std::string out;
  std::string err;
};

// Starts `program` with `args`, `bootstrap` as fd 3, stdin /dev/null,
// stdout and stderr to pipes. The bootstrap end is consumed.
Result<PluginProcess> start_plugin(const std::string& program,
                                   const std::vector<std::string>& args, Port bootstrap);
// Reads the plugin's stdout and stderr to their end, then reaps it.
PluginResult finish_plugin(PluginProcess p);

}  // namespace capsa::examples::testing
