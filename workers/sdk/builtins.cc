#include "workers/sdk/builtins.h"

#include <cstring>

#include "capabilities/interfaces/builtin.h"
#include "fs_directory_generated.h"
#include "fs_file_generated.h"

namespace capsa::worker {
namespace {

Result<void> expect_interface(const Capability& cap, std::string_view iface) {
  if (cap.interface_name() == iface) return {};
  return make_error(Errc::kNotFound, "capability " + std::string(cap.name()) + " is " +
                                         std::string(cap.interface_name()) + ", not " +
                                         std::string(iface));
}

flatbuffers::Offset<flatbuffers::String> path_string(flatbuffers::FlatBufferBuilder& fbb,
                                                     std::string_view path) {
  return fbb.CreateString(path.data(), path.size());
}

}  // namespace

Result<Directory> Directory::wrap(Capability cap) {
  CAPSA_TRY(expect_interface(cap, interfaces::kDirectory));
  return Directory(std::move(cap));
}

Result<Directory> Directory::get(Context& ctx, std::string_view grant) {
  CAPSA_ASSIGN_OR_RETURN(Capability cap, ctx.get(grant, interfaces::kDirectory));
  return Directory(std::move(cap));
}

Result<Fd> Directory::open_file(std::string_view path) {
  auto& fbb = cap_.payload_builder();
  fbb.Finish(fs::CreateOpenFileRequest(fbb, path_string(fbb, path)));
  CAPSA_ASSIGN_OR_RETURN(Message reply, cap_.call("OpenFile", cap_.payload_bytes()));
  auto index = reply.payload_as<fs::OpenFileReply>()->file();
  if (!index.has_value()) {
    return make_error(Errc::kBadMessage, "fs.Directory.OpenFile reply carries no file");
  }
  // The validator already checked the kernel object: a regular O_RDONLY file.
  return reply.take_handle(*index);
}

Result<File> Directory::open(Context& ctx, std::string_view path) {
  auto& fbb = cap_.payload_builder();
  fbb.Finish(fs::CreateOpenRequest(fbb, path_string(fbb, path)));
  CAPSA_ASSIGN_OR_RETURN(Message reply, cap_.call("Open", cap_.payload_bytes()));
  auto index = reply.payload_as<fs::OpenReply>()->file();
  if (!index.has_value()) {
    return make_error(Errc::kBadMessage, "fs.Directory.Open reply carries no port");
  }
  CAPSA_ASSIGN_OR_RETURN(Capability cap, ctx.adopt(Port(reply.take_handle(*index)), interfaces::kFile,
                                                    std::string(path)));
  return File::wrap(std::move(cap));
}

Result<File> Directory::open_associated(std::string_view path) {
  auto& fbb = cap_.payload_builder();
  fbb.Finish(fs::CreateOpenRequest(fbb, path_string(fbb, path), /*associated=*/true));
  CAPSA_ASSIGN_OR_RETURN(Message reply, cap_.call("Open", cap_.payload_bytes()));
  const std::uint64_t object = reply.payload_as<fs::OpenReply>()->object();
  if (object == 0 || reply.handle_count() != 0) {
    return make_error(Errc::kBadMessage, "fs.Directory.Open (associated) reply carries no object");
  }
  // The supervisor serves fs.File objects with all of fs.File's methods.
  CAPSA_ASSIGN_OR_RETURN(Capability cap,
                         cap_.associated(object, interfaces::kFile, kAllRights, std::string(path)));
  return File::wrap(std::move(cap));
}

Result<Listing> Directory::list(std::string_view path) {
  auto& fbb = cap_.payload_builder();
  fbb.Finish(fs::CreateListRequest(fbb, path_string(fbb, path)));
  CAPSA_ASSIGN_OR_RETURN(Message reply, cap_.call("List", cap_.payload_bytes()));
  const auto* r = reply.payload_as<fs::ListReply>();
  Listing out;
  out.truncated = r->truncated();
  if (r->entries() != nullptr) {
    out.entries.reserve(r->entries()->size());
    // Entries may all point at one table with a long name: the verifier
    // allows it, and copying each would turn one 64 KiB packet into tens of
    // MB. Names are stored in the reply, so honest names fit in it.
    std::size_t copied = 0;
    const std::size_t budget = reply.payload().size();
    for (const auto* e : *r->entries()) {
      if (e->name() == nullptr) {
        return make_error(Errc::kBadMessage, "fs.Directory.List reply has an entry without a name");
      }
      copied += e->name()->size();
      if (copied > budget) {
        return make_error(Errc::kBadMessage, "fs.Directory.List reply names more bytes than it holds");
      }
      out.entries.push_back({e->name()->str(), static_cast<EntryType>(e->type()), e->size()});
    }
  }
  return out;
}

Result<File> File::wrap(Capability cap) {
  CAPSA_TRY(expect_interface(cap, interfaces::kFile));
  return File(std::move(cap));
}

Result<std::vector<std::byte>> File::read(std::uint32_t max_bytes, std::int64_t offset) {
  if (max_bytes == 0 || max_bytes > interfaces::kMaxReadBytes || offset < -1) {
    return make_error(Errc::kInvalidArgument, "fs.File.Read: max_bytes must be 1.." +
                                                  std::to_string(interfaces::kMaxReadBytes) +
                                                  " and offset >= -1");
  }
  auto& fbb = cap_.payload_builder();
  fbb.Finish(fs::CreateReadRequest(fbb, offset, max_bytes));
  CAPSA_ASSIGN_OR_RETURN(Message reply, cap_.call("Read", cap_.payload_bytes()));
  const auto* data = reply.payload_as<fs::ReadReply>()->data();
  std::vector<std::byte> out;
  if (data != nullptr) {
    // A service that returns more than asked broke the contract.
    if (data->size() > max_bytes) {
      return make_error(Errc::kBadMessage, "fs.File.Read returned more bytes than asked");
    }
    out.resize(data->size());
    std::memcpy(out.data(), data->data(), data->size());
  }
  return out;
}

Result<std::uint64_t> File::size() {
  auto& fbb = cap_.payload_builder();
  fbb.Finish(fs::CreateFileStatRequest(fbb));
  CAPSA_ASSIGN_OR_RETURN(Message reply, cap_.call("Stat", cap_.payload_bytes()));
  return reply.payload_as<fs::FileStatReply>()->size();
}

Result<LogSink> LogSink::wrap(Capability cap) {
  CAPSA_TRY(expect_interface(cap, interfaces::kLogSink));
  return LogSink(std::move(cap));
}

Result<LogSink> LogSink::get(Context& ctx, std::string_view grant) {
  CAPSA_ASSIGN_OR_RETURN(Capability cap, ctx.get(grant, interfaces::kLogSink));
  return LogSink(std::move(cap));
}

Result<void> LogSink::write(Level level, std::string_view text) {
  if (text.size() > interfaces::kMaxLogTextBytes) {
    return make_error(Errc::kInvalidArgument, "log.Sink.Write: text is " +
                                                  std::to_string(text.size()) + " bytes, limit " +
                                                  std::to_string(interfaces::kMaxLogTextBytes));
  }
  interfaces::log_sink::build_write_request(cap_.payload_builder(), level, text);
  CAPSA_TRY(cap_.call("Write", cap_.payload_bytes()));
  return {};
}

}  // namespace capsa::worker
