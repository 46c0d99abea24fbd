// Test peer for the worker SDK: a real bootstrap service and real fs /
// log services, each a capsa::Server on its own thread over real sockets.
// Stands in for the supervisor (which does not exist yet); it is a peer
// speaking the protocol, not a mock: every message crosses a socket and
// the validator on both sides.
//
// Grants: "docs" fs.Directory (all rights) on `root`; "ro_docs"
// fs.Directory with only List; "logs" log.Sink; "alien" an interface the
// SDK does not know ("x.Unknown"); "portless" (not listed) answers a Get
// without its port, as a broken supervisor would. Anything else: not found.
// The log service revokes itself (shuts its port) when asked to write
// "revoke-me", so a test sees a revocation in the middle of a call.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capabilities/interface_registry.h"
#include "capabilities/port.h"
#include "capabilities/server.h"

namespace capsa::worker::testing {

class TestSupervisor {
 public:
  explicit TestSupervisor(std::filesystem::path root);
  ~TestSupervisor();  // joins every service thread (their peers must be closed)

  // The worker's end of the bootstrap channel (call once).
  Port take_worker_end();
  // Shuts down every served port: the holders see revocation.
  void revoke_all();
  std::vector<std::string> log_lines();

 private:
  struct Served;
  void serve(Port port, std::string interface, Rights rights);
  void add_handlers(Server& s, const std::string& interface, int own_fd);

  std::filesystem::path root_;
  InterfaceRegistry registry_;
  Port worker_end_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Served>> served_;
  std::vector<std::string> log_;
  std::vector<std::string> files_;  // paths opened with Directory.Open
  // socket inode of each worker end handed out -> interface (for Attenuate)
  std::vector<std::pair<std::uint64_t, std::string>> handed_out_;
};

}  // namespace capsa::worker::testing
