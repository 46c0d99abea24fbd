// The demo's sandboxed worker. It holds one capability, its bootstrap port
// (fd 3), served by the host with the demo.Echo interface and the right to
// call Echo only. It uses it, then tries what an untrusted plugin might:
// a method outside its rights, the network, a host file, a malformed
// message. Each attempt prints what the worker saw; the host prints what it
// saw and reported.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "capabilities/client.h"
#include "capabilities/interface_registry.h"
#include "echo_bfbs.h"
#include "echo_generated.h"

namespace {

void say(const std::string& line) { std::printf("  [worker] %s\n", line.c_str()); std::fflush(stdout); }

capsa::Result<std::string> call(capsa::Client& client, const char* method, const char* text) {
  auto& fbb = client.payload_builder();
  fbb.Finish(demo::CreateEchoRequest(fbb, fbb.CreateString(text)));
  const capsa::Method* m = client.interface().method(method);
  auto reply = client.call(m->ordinal, client.payload_bytes());
  if (!reply) return std::unexpected(reply.error());
  const auto* r = reply->payload_as<demo::EchoReply>();
  return r->text() ? r->text()->str() : std::string();
}

}  // namespace

int main() {
  capsa::InterfaceRegistry registry;
  if (auto ok = registry.load(capsa::schemas::echo_bfbs()); !ok) return 10;
  const capsa::Interface* echo = registry.find("demo.Echo");
  if (echo == nullptr) return 11;
  capsa::Client client(capsa::Port(capsa::Fd(3)), *echo);

  auto hello = call(client, "Echo", "hello from inside the sandbox");
  say("Echo   -> " + (hello ? "reply \"" + *hello + "\"" : hello.error().to_string()));

  auto shout = call(client, "Shout", "let me in");
  say("Shout  -> " + (shout ? "reply \"" + *shout + "\"" : shout.error().to_string()));

  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  say(std::string("socket(AF_INET) -> ") + (s >= 0 ? "an fd (!)" : std::strerror(errno)));

  int f = ::open("/etc/shadow", O_RDONLY);
  say(std::string("open(/etc/shadow) -> ") + (f >= 0 ? "an fd (!)" : std::strerror(errno)));

  // Raw bytes that are no envelope at all.
  const char junk[] = "not a flatbuffer";
  ::send(client.port().fd().get(), junk, sizeof(junk), MSG_NOSIGNAL);
  say("sent 17 bytes of junk on the port");

  auto after = call(client, "Echo", "still there?");
  say("Echo   -> " + (after ? "reply \"" + *after + "\"" : after.error().to_string()));
  return 0;
}
