// Test peers' fs.Directory List (workers/sdk/testdata/test_peer.cc,
// workers/examples/testdata/plugin_host.cc): the entries of one host folder,
// sorted by name, as the real service reports them (type from the entry
// itself, symlinks not followed; size of regular files only). Test folders
// only: no paging, no path resolution.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "fs_directory_generated.h"

namespace capsa::worker::testing {

inline fs::EntryType entry_type(const std::filesystem::directory_entry& e) {
  if (e.is_symlink()) return fs::EntryType::Symlink;
  if (e.is_regular_file()) return fs::EntryType::Regular;
  if (e.is_directory()) return fs::EntryType::Directory;
  return fs::EntryType::Other;
}

// Finishes `fbb` with the ListReply of `root`.
inline void finish_list_reply(flatbuffers::FlatBufferBuilder& fbb, const std::filesystem::path& root) {
  std::vector<std::filesystem::directory_entry> es;
  for (const auto& e : std::filesystem::directory_iterator(root)) es.push_back(e);
  std::sort(es.begin(), es.end());
  std::vector<flatbuffers::Offset<fs::Entry>> v;
  for (const auto& e : es) {
    auto type = entry_type(e);
    std::uint64_t size = type == fs::EntryType::Regular ? e.file_size() : 0;
    v.push_back(fs::CreateEntry(fbb, fbb.CreateString(e.path().filename().string()), type, size));
  }
  fbb.Finish(fs::CreateListReply(fbb, fbb.CreateVector(v), false));
}

}  // namespace capsa::worker::testing
