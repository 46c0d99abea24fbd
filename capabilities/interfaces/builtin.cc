#include "capabilities/interfaces/builtin.h"

#include "capsa_bootstrap_bfbs.h"
#include "capsa_object_bfbs.h"
#include "demo_word_count_bfbs.h"
#include "fs_directory_bfbs.h"
#include "fs_file_bfbs.h"
#include "log_sink_bfbs.h"

namespace capsa::interfaces {

Result<void> register_builtin(InterfaceRegistry& registry) {
  for (auto bfbs : {schemas::capsa_bootstrap_bfbs(), schemas::capsa_object_bfbs(),schemas::fs_directory_bfbs(),
                    schemas::fs_file_bfbs(), schemas::log_sink_bfbs(),
                    schemas::demo_word_count_bfbs()}) {
    if (auto r = registry.load(bfbs); !r) return r;
  }
  return {};
}

}  // namespace capsa::interfaces
