// capsa — the services the supervisor serves by itself, one factory per API
// a policy may grant:
//
//   fs.Directory   directory_service.h  constraints: root (host directory,
//                                       required), read_only (bool, "true")
//   log.Sink       log_service.h        no constraints
//
// fs.File has no factory on purpose: a File is only ever made by
// fs.Directory.Open (it is minted as a child of the directory grant), and a
// policy has no file to give. The supervisor's catalog marks an API without
// a factory as not grantable, so a policy granting fs.File is refused by the
// checker with a clear message instead of failing at run time.
#pragma once

#include <vector>

#include "supervisor/services/service.h"

namespace capsa::supervisor::services {

std::vector<ServiceFactory> builtin_service_factories();

}  // namespace capsa::supervisor::services
