// libFuzzer target: capabilities/validator.h validate(), the one gate every
// packet from a worker passes. Input layout: fuzz/fd_kinds.h. Asserts, per
// input:
//   - no crash, no sanitizer report (ASan, UBSan);
//   - a refusal is kBadMessage or kDenied, and kDenied only for a call or
//     event whose method the rights exclude;
//   - an accepted message is of a kind the receiver accepts, its call/event
//     method is in the rights, it holds exactly the fds sent, and each is
//     the kernel object its declared kind promises;
//   - every fd sent is closed once the packet and the message are gone,
//     accepted or not (fcntl(F_GETFD) fails with EBADF): a leak aborts.
// Limits: the packet is handed to validate() directly, not through a
// socket (Port::receive's own checks are the port tests' business), and one
// fd of each kind is created per handle (no fd sent twice).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <span>

#include "capabilities/handle.h"
#include "capabilities/interface_registry.h"
#include "capabilities/interfaces/builtin.h"
#include "capabilities/validator.h"
#include "echo_bfbs.h"
#include "fuzz/fd_kinds.h"
#include "fuzz/check.h"

namespace {

using namespace capsa;
using capsa::fuzz::FdKind;

[[noreturn]] void fail(const char* what) { capsa::fuzz::fail("validator_fuzz", what); }

struct World {
  InterfaceRegistry registry;
  std::vector<const Interface*> interfaces;
  std::string file;

  World() {
    if (!registry.load(schemas::echo_bfbs()) || !interfaces::register_builtin(registry)) {
      fail("cannot load the interfaces");
    }
    interfaces = registry.all();
    char path[] = "/tmp/capsa-fuzz-file-XXXXXX";
    Fd f(::mkstemp(path));
    if (!f.valid()) fail("mkstemp");
    file = path;
  }
  ~World() { ::unlink(file.c_str()); }
};

World& world() {
  static World w;
  return w;
}

// Every other defined method: odd ordinals stay allowed.
Rights half_rights() {
  Rights r = 0;
  for (std::uint32_t i = 1; i < kMaxMethodsPerInterface; i += 2) r |= right_of(i);
  return r;
}

void check_accepted(Message& m, const ValidateOptions& opt, const std::vector<FdKind>& sent) {
  unsigned bit = 1u << static_cast<unsigned>(m.kind());
  if ((opt.accept & bit) == 0) fail("accepted a kind the receiver does not accept");
  bool checked_rights = m.kind() == MessageKind::kCall || m.kind() == MessageKind::kEvent;
  if (checked_rights && (m.method() == nullptr || (opt.rights & right_of(m.method()->ordinal)) == 0)) {
    fail("accepted a call or event outside the rights");
  }
  if (m.handle_count() != sent.size()) fail("accepted with a different number of fds");
  for (std::size_t i = 0; i < m.handle_count(); ++i) {
    HandleKind kind = m.handle_kind(i);
    Fd fd = m.take_handle(i);
    if (!fd.valid()) fail("an accepted handle cannot be taken");
    if (!check_handle_kind(fd, kind)) fail("accepted an fd that is not its declared kind");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace capsa::fuzz;
  World& w = world();
  if (size < kInputHeaderBytes) return 0;
  const Interface& iface = *w.interfaces[data[0] % w.interfaces.size()];
  ValidateOptions opt;
  opt.accept = (data[1] & 1) != 0 ? kClientAccepts : kServerAccepts;
  if ((data[1] & 2) != 0) opt.rights = half_rights();
  std::size_t nfds = data[2] % (kMaxInputFds + 1);
  if (size < kInputHeaderBytes + nfds) return 0;

  std::vector<Fd> peers;
  std::vector<int> sent_numbers;
  std::vector<FdKind> sent_kinds;
  Packet packet;
  for (std::size_t i = 0; i < nfds; ++i) {
    FdKind kind = fd_kind_of(data[kInputHeaderBytes + i]);
    packet.fds.push_back(make_fd(kind, w.file.c_str(), peers));
    sent_numbers.push_back(packet.fds.back().get());
    sent_kinds.push_back(kind);
  }
  auto body = std::as_bytes(std::span(data + kInputHeaderBytes + nfds, size - kInputHeaderBytes - nfds));
  packet.bytes.assign(body.begin(), body.end());

  {
    EnvelopeInfo info;
    auto r = validate(std::move(packet), iface, opt, &info);
    if (r) {
      check_accepted(*r, opt, sent_kinds);
    } else if (r.error().code == Errc::kDenied) {
      bool rights_checked = info.kind == MessageKind::kCall || info.kind == MessageKind::kEvent;
      if (!info.envelope_ok || !rights_checked || (opt.rights & right_of(info.method)) != 0) {
        fail("kDenied for a message the rights allow");
      }
    } else if (r.error().code != Errc::kBadMessage) {
      fail("a refusal that is neither kBadMessage nor kDenied");
    }
  }
  // The packet was moved into validate() and the result is gone: each fd
  // sent must be closed. Peers are still open, so no number was reused.
  for (int fd : sent_numbers) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) fail("an fd sent with the packet leaked");
  }
  return 0;
}
