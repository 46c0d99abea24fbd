// capsa — the built-in interfaces (capabilities/interfaces/*.fbs).
//
// The schemas are the documentation of each API: every method's semantics
// and errors are in its .fbs. This header names them and loads them all.
#pragma once

#include <cstdint>
#include <string_view>

#include "capabilities/error.h"
#include "capabilities/interface_registry.h"

namespace capsa::interfaces {

// Fully qualified interface names, as in policies and Bootstrap replies.
inline constexpr std::string_view kBootstrap = "capsa.Bootstrap";
// What every associated object answers (envelope `control`: Release, Detach).
inline constexpr std::string_view kObject = "capsa.Object";
inline constexpr std::string_view kDirectory = "fs.Directory";
inline constexpr std::string_view kFile = "fs.File";
inline constexpr std::string_view kLogSink = "log.Sink";
inline constexpr std::string_view kWordCount = "demo.WordCount";

// Limits stated in the schemas' comments, enforced by the services.
inline constexpr std::uint32_t kMaxReadBytes = 60 * 1024;  // fs.File.Read
inline constexpr std::size_t kMaxLogTextBytes = 4096;      // log.Sink.Write
inline constexpr std::size_t kMaxPathBytes = 4096;         // fs.Directory paths
inline constexpr std::size_t kMaxListEntries = 512;        // fs.Directory.List

// Loads every built-in interface into `registry`. kInvalidArgument if one is
// already loaded (the registry refuses duplicates) or a schema breaks a load
// rule (a build-time bug: the test loads them all).
Result<void> register_builtin(InterfaceRegistry& registry);

}  // namespace capsa::interfaces
