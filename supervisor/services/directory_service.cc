#include "supervisor/services/directory_service.h"

#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "capabilities/interfaces/builtin.h"
#include "fs_directory_generated.h"
#include "supervisor/services/file_service.h"

namespace capsa::supervisor::services {
namespace {

fs::EntryType wire_type(EntryType type) {
  switch (type) {
    case EntryType::kFile: return fs::EntryType::Regular;
    case EntryType::kDirectory: return fs::EntryType::Directory;
    case EntryType::kSymlink: return fs::EntryType::Symlink;
    case EntryType::kOther: return fs::EntryType::Other;
  }
  return fs::EntryType::Unknown;
}

// An upper bound of the bytes one Entry adds to a ListReply: its name
// (4-byte length, the bytes, a NUL, up to 3 bytes of padding), its table
// (4-byte vtable offset, name offset, 8-byte size, 1-byte type, up to 7
// bytes of alignment padding), its 4-byte slot in the vector, and a
// vtable of 10 bytes rounded to 12 (shared by all entries in practice:
// counted for each one to stay an upper bound without relying on it).
constexpr std::size_t entry_bytes_bound(std::size_t name_bytes) {
  return (4 + name_bytes + 1 + 3) + (4 + 4 + 8 + 1 + 7) + 4 + 12;
}
// The reply table, its vtable, the vector's length, the root offset and
// the final alignment.
constexpr std::size_t kListReplyFixedBytes = 64;

// Answers with `result`'s error, or runs `ok` with its value.
template <typename T, typename F>
void answer(Call& call, Result<T>& result, F&& ok) {
  if (!result) return call.fail(result.error());
  ok(*result);
}

}  // namespace

Result<std::string> request_path(const flatbuffers::String* path) {
  if (path == nullptr || path->size() == 0) return std::string(".");
  if (path->size() > interfaces::kMaxPathBytes) {
    return make_error(Errc::kBadMessage, "path is " + std::to_string(path->size()) +
                                             " bytes; the limit is " +
                                             std::to_string(interfaces::kMaxPathBytes));
  }
  // Kept byte for byte (NUL included): the resolver refuses what it must,
  // and a truncated copy could name another file.
  return std::string(path->data(), path->size());
}

void build_list_reply(flatbuffers::FlatBufferBuilder& fbb, const Listing& listing) {
  std::size_t bytes = kListReplyFixedBytes;
  std::size_t count = 0;
  for (const auto& e : listing.entries) {
    if (count == interfaces::kMaxListEntries) break;
    const std::size_t cost = entry_bytes_bound(e.name.size());
    if (bytes + cost > kListReplyBudget) break;
    bytes += cost;
    ++count;
  }
  std::vector<flatbuffers::Offset<fs::Entry>> entries;
  entries.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const DirEntry& e = listing.entries[i];
    auto name = fbb.CreateString(e.name.data(), e.name.size());
    entries.push_back(fs::CreateEntry(fbb, name, wire_type(e.info.type), e.info.size));
  }
  auto vec = fbb.CreateVector(entries);
  fbb.Finish(fs::CreateListReply(fbb, vec, listing.truncated || count < listing.entries.size()));
}

const MethodTable<DirectoryService, 4>& DirectoryService::methods() {
  static constexpr MethodTable<DirectoryService, 4> kTable{
      interfaces::kDirectory,
      {{{0, "Open", &DirectoryService::open},
        {1, "OpenFile", &DirectoryService::open_file},
        {2, "List", &DirectoryService::list},
        {3, "Stat", &DirectoryService::stat}}}};
  return kTable;
}

void DirectoryService::open(Call call) {
  const auto* req = call.request().payload_as<fs::OpenRequest>();
  auto path = request_path(req->path());
  if (!path) return call.fail(path.error());
  const bool associated = req->associated();
  call.off_loop<Result<Fd>>(
      [scope = scope_, path = std::move(*path)] { return scope->open_file(path); },
      [associated](Call done, Result<Fd> file) {
        answer(done, file, [&](Fd& fd) {
          ServiceHost& host = done.host();
          const Interface* iface = host.find_interface(interfaces::kFile);
          if (iface == nullptr) return done.fail(Errc::kFailed, "fs.File is not served here");
          if (associated) {
            // An object on the caller's port: no socket, no fd for the
            // worker (the supervisor keeps the file's). A child of this
            // grant like the port below.
            auto object = host.mint_object(done.grant(), *iface, iface->defined_rights(),
                                           std::make_unique<FileService>(std::move(fd)));
            if (!object) return done.fail(object.error());
            const std::uint64_t id = *object;
            done.reply([id](flatbuffers::FlatBufferBuilder& fbb) {
              fs::OpenReplyBuilder b(fbb);
              b.add_object(id);
              fbb.Finish(b.Finish());
            });
            return;
          }
          // A child of this grant: revoking the directory revokes the file.
          auto port = host.mint(done.grant(), *iface, iface->defined_rights(),
                                std::make_unique<FileService>(std::move(fd)));
          if (!port) return done.fail(port.error());
          std::vector<Handle> handles;
          handles.push_back(std::move(*port));
          done.reply([](flatbuffers::FlatBufferBuilder& fbb) { fbb.Finish(fs::CreateOpenReply(fbb, 0)); },
                     std::move(handles));
        });
      });
}

void DirectoryService::open_file(Call call) {
  auto path = request_path(call.request().payload_as<fs::OpenFileRequest>()->path());
  if (!path) return call.fail(path.error());
  struct Opened {
    Fd fd;
    std::uint64_t size = 0;
  };
  call.off_loop<Result<Opened>>(
      [scope = scope_, path = std::move(*path)]() -> Result<Opened> {
        CAPSA_ASSIGN_OR_RETURN(Fd fd, scope->open_file(path));
        CAPSA_ASSIGN_OR_RETURN(const EntryInfo info, stat_fd(fd));
        return Opened{std::move(fd), info.size};
      },
      [](Call done, Result<Opened> opened) {
        answer(done, opened, [&](Opened& o) {
          // Reads through a handed-over fd cannot be metered: the whole
          // file counts against the byte budget now (the size at open
          // time; a file that grows later is not charged again).
          if (auto charged = done.charge(o.size); !charged) return done.fail(charged.error());
          std::vector<Handle> handles;
          handles.push_back(Handle{HandleKind::kFile, std::move(o.fd)});
          const std::uint64_t size = o.size;
          done.reply(
              [size](flatbuffers::FlatBufferBuilder& fbb) {
                fbb.Finish(fs::CreateOpenFileReply(fbb, 0, size));
              },
              std::move(handles));
        });
      });
}

void DirectoryService::list(Call call) {
  auto path = request_path(call.request().payload_as<fs::ListRequest>()->path());
  if (!path) return call.fail(path.error());
  call.off_loop<Result<Listing>>(
      [scope = scope_, path = std::move(*path)] {
        return scope->list(path, interfaces::kMaxListEntries);
      },
      [](Call done, Result<Listing> listing) {
        answer(done, listing, [&](const Listing& l) {
          done.reply([&l](flatbuffers::FlatBufferBuilder& fbb) { build_list_reply(fbb, l); });
        });
      });
}

void DirectoryService::stat(Call call) {
  auto path = request_path(call.request().payload_as<fs::StatRequest>()->path());
  if (!path) return call.fail(path.error());
  call.off_loop<Result<EntryInfo>>(
      [scope = scope_, path = std::move(*path)] { return scope->stat(path); },
      [](Call done, Result<EntryInfo> info) {
        answer(done, info, [&](const EntryInfo& i) {
          done.reply([&i](flatbuffers::FlatBufferBuilder& fbb) {
            fbb.Finish(fs::CreateStatReply(fbb, wire_type(i.type), i.size, i.modified_ns()));
          });
        });
      });
}

ServiceFactory directory_service_factory() {
  ServiceFactory f;
  f.api = std::string(interfaces::kDirectory);
  f.constraints = {{"root", policy::ConstraintType::kHostDir, true, ""},
                   {"read_only", policy::ConstraintType::kBool, false, "true"}};
  f.prepare = [](const policy::Grant& grant) -> Result<std::shared_ptr<const void>> {
    const policy::ConstraintValue* root = grant.constraint("root");
    // The policy checker guarantees a root string; a Policy built against
    // another catalog could lack it.
    if (root == nullptr || !std::holds_alternative<std::string>(*root)) {
      return make_error(Errc::kInvalidArgument, "fs.Directory grant has no root directory");
    }
    const std::string& host_path = std::get<std::string>(*root);
    // The supervisor names the grant; the host path is for the operator
    // (a worker never sees this text).
    CAPSA_ASSIGN_OR_RETURN_CONTEXT(DirectoryScope scope, DirectoryScope::open(host_path),
                                   "cannot open the fs.Directory root " + host_path);
    return std::static_pointer_cast<const void>(
        std::make_shared<const DirectoryScope>(std::move(scope)));
  };
  f.make = [](const policy::Grant&, const std::shared_ptr<const void>& prepared,
              ServiceHost&) -> std::unique_ptr<ServiceObject> {
    // `prepared` is what prepare() returned for this grant: never null.
    return std::make_unique<DirectoryService>(std::static_pointer_cast<const DirectoryScope>(prepared));
  };
  return f;
}

}  // namespace capsa::supervisor::services
