#include "supervisor/services/builtin_services.h"

#include "supervisor/services/directory_service.h"
#include "supervisor/services/log_service.h"

namespace capsa::supervisor::services {

std::vector<ServiceFactory> builtin_service_factories() {
  std::vector<ServiceFactory> out;
  out.push_back(directory_service_factory());
  out.push_back(log_service_factory());
  return out;
}

}  // namespace capsa::supervisor::services
