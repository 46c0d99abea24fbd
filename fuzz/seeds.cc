// capsa-fuzz-seeds OUTDIR: writes the generated seed corpora, one folder
// per target (OUTDIR/validator, OUTDIR/launcher_config, OUTDIR/audit).
// Generated rather than checked in: a seed built with the real Encoder and
// encode_config() follows the wire format as it changes. The policy
// target's seeds are examples/*.json, copied by scripts/fuzz.sh.
//
// Validator seeds (layout: fuzz/fd_kinds.h): for every interface and
// method, a call and a reply with an empty payload table of the method's
// type; for capsa.test.Echo also an Echo call with text, a Put call whose
// port, file and blobs arrive with the fd kinds they declare, and an error.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "capabilities/interface_registry.h"
#include "capabilities/interfaces/builtin.h"
#include "capabilities/message.h"
#include "echo_bfbs.h"
#include "echo_generated.h"
#include "fuzz/fd_kinds.h"
#include "sandbox/launcher_protocol.h"
#include "sandbox/seccomp_policy.h"

namespace {

using namespace capsa;
using capsa::fuzz::FdKind;
namespace fs = std::filesystem;

void write(const fs::path& dir, const std::string& name, std::span<const std::uint8_t> bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "capsa-fuzz-seeds: cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
}

std::vector<std::uint8_t> empty_table() {
  flatbuffers::FlatBufferBuilder fbb;
  auto start = fbb.StartTable();
  fbb.Finish(flatbuffers::Offset<flatbuffers::Table>(fbb.EndTable(start)));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

// One validator input: the header bytes, the fd kinds, the envelope.
std::vector<std::uint8_t> input(std::size_t iface, bool client, const Header& h,
                                std::span<const std::uint8_t> payload,
                                std::vector<HandleKind> declared, std::vector<FdKind> fds) {
  Encoder enc;
  auto env = enc.encode(h, payload, declared);
  std::vector<std::uint8_t> out{static_cast<std::uint8_t>(iface), client ? std::uint8_t{1} : std::uint8_t{0},
                                static_cast<std::uint8_t>(fds.size())};
  for (FdKind k : fds) out.push_back(static_cast<std::uint8_t>(k));
  auto* b = reinterpret_cast<const std::uint8_t*>(env.data());
  out.insert(out.end(), b, b + env.size());
  return out;
}

void validator_seeds(const fs::path& dir) {
  InterfaceRegistry registry;
  if (!registry.load(schemas::echo_bfbs()) || !interfaces::register_builtin(registry)) std::exit(1);
  auto all = registry.all();  // the fuzzer indexes the same list
  auto empty = empty_table();
  int n = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (const Method& m : all[i]->methods()) {
      Header call{MessageKind::kCall, 1, m.ordinal, m.request.type_hash, Errc::kFailed, {}};
      Header reply{MessageKind::kReply, 1, m.ordinal, m.reply.type_hash, Errc::kFailed, {}};
      write(dir, "empty-" + std::to_string(n++), input(i, false, call, empty, {}, {}));
      write(dir, "empty-" + std::to_string(n++), input(i, true, reply, empty, {}, {}));
    }
  }
  // capsa.test.Echo is loaded first: index 0.
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(test::CreateEchoRequest(fbb, fbb.CreateString("hello"), 7));
  std::span<const std::uint8_t> echo(fbb.GetBufferPointer(), fbb.GetSize());
  Header echo_call{MessageKind::kCall, 9, 0, payload_type_hash("capsa.test.EchoRequest"), Errc::kFailed, {}};
  write(dir, "echo", input(0, false, echo_call, echo, {}, {}));

  flatbuffers::FlatBufferBuilder put;
  auto blobs = put.CreateVector(std::vector<std::uint32_t>{2, 3});
  test::PutRequestBuilder pb(put);
  pb.add_port(0);
  pb.add_file(1);
  pb.add_blobs(blobs);
  put.Finish(pb.Finish());
  std::span<const std::uint8_t> put_bytes(put.GetBufferPointer(), put.GetSize());
  Header put_call{MessageKind::kCall, 3, 1, payload_type_hash("capsa.test.PutRequest"), Errc::kFailed, {}};
  write(dir, "put",
        input(0, false, put_call, put_bytes,
              {HandleKind::kPort, HandleKind::kFile, HandleKind::kBlob, HandleKind::kBlob},
              {FdKind::kSeqpacketEnd, FdKind::kReadOnlyFile, FdKind::kSealedMemfd, FdKind::kSealedMemfd}));

  Header error{MessageKind::kError, 4, 0, 0, Errc::kDenied, "not allowed"};
  write(dir, "error", input(0, true, error, {}, {}, {}));
}

void launcher_seeds(const fs::path& dir) {
  auto spec = sandbox::SpecBuilder().name("w").program("/bin/echo").args({"echo", "hi"}).env("K", "V")
                  .allow_syscall("socket")
                  .limits({.address_space_bytes = 1ull << 30, .cpu_seconds = 30, .wall_seconds = 60,
                           .max_processes = 64, .max_open_files = 256, .max_file_size_bytes = 16ull << 20})
                  .build();
  auto filter = sandbox::detail::compile_filter({"socket"});
  if (!spec || !filter) {
    std::fprintf(stderr, "capsa-fuzz-seeds: cannot build the launcher seed\n");
    std::exit(1);
  }
  write(dir, "spec", sandbox::detail::encode_config(*spec, *filter));
}

void audit_seeds(const fs::path& dir) {
  // First byte: the event; then strings as FuzzedDataProvider reads them
  // (a backslash ends a string early, "\\\\" is one backslash).
  for (std::string s : {std::string("\x01w1\\ fs.Directory\\ Open\\ not in rights\\ "),
                        std::string("\x03\"quote\"\\ \n\r\t\\ \xff\xfe\\ \xed\xa0\x80\\ "),
                        std::string("\x05key\\ \xe2\x82\xac\\ \\\\\\ \x7f")}) {
    write(dir, "audit-" + std::to_string(s[0]), std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: capsa-fuzz-seeds OUTDIR\n");
    return 2;
  }
  fs::path out = argv[1];
  validator_seeds(out / "validator");
  launcher_seeds(out / "launcher_config");
  audit_seeds(out / "audit");
  return 0;
}
