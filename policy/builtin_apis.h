// capsa policy — the catalog of the built-in APIs the project plans.
//
// A plain table, to be replaced by the supervisor's adapter over the real
// interface registry (capabilities/) once it exists. Keep it in step with the
// .fbs interfaces until then; docs/POLICY.md lists the same APIs.
#pragma once

#include "policy/api_catalog.h"

namespace capsa::policy {

// capsa.Bootstrap (Get, List)       implicit, never granted
// fs.Directory (Open, OpenFile, List, Stat)
//     root: host directory (required); read_only: bool (default true)
// fs.File (Read, Seek, Stat)
// log.Sink (Write)
// demo.WordCount (Count)           spoken over the example channel
ApiCatalog builtin_api_catalog();

}  // namespace capsa::policy
