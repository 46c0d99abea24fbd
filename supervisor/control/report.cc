#include "supervisor/control/report.h"

#include <string>

#include "control_generated.h"
#include "supervisor/control/wire.h"

namespace capsa::supervisor {
namespace {

std::int64_t unix_ns(std::chrono::system_clock::time_point t) {
  if (t.time_since_epoch().count() == 0) return 0;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::vector<std::uint8_t> build_audit_report(const ReportInput& input) {
  // The kernel check, for live grants only.
  std::vector<HolderProcess> holders;
  for (const WorkerView& w : input.workers) {
    if (w.running && w.pid > 0) holders.push_back({w.name, w.pid});
  }
  std::vector<PortToCheck> ports;
  std::vector<std::size_t> port_of_grant(input.grants.size(), SIZE_MAX);
  for (std::size_t i = 0; i < input.grants.size(); ++i) {
    const GrantView& g = input.grants[i];
    // An object has no socket: the kernel can say nothing of it (its port's
    // own row says who holds that).
    if (g.state != GrantState::kLive || g.kind == GrantKind::kObject) continue;
    port_of_grant[i] = ports.size();
    ports.push_back({g.worker, g.holder_pid, g.port_inode});
  }
  std::vector<KernelCheck> checks = check_holders(holders, ports, input.limits);

  flatbuffers::FlatBufferBuilder fbb(4096 + input.grants.size() * 256);
  std::vector<flatbuffers::Offset<control::WorkerEntry>> workers;
  workers.reserve(input.workers.size());
  for (const WorkerView& w : input.workers) {
    auto name = fbb.CreateString(w.name);
    auto exit = fbb.CreateString(w.exit ? w.exit->to_string() : std::string());
    auto start_error = fbb.CreateString(w.start_error);
    workers.push_back(control::CreateWorkerEntry(fbb, name, w.pid, w.running, exit, start_error,
                                                 w.calls, w.denials, w.bad_messages, w.violations,
                                                 w.grants));
  }
  std::vector<flatbuffers::Offset<control::GrantEntry>> grants;
  grants.reserve(input.grants.size());
  for (std::size_t i = 0; i < input.grants.size(); ++i) {
    const GrantView& g = input.grants[i];
    auto worker = fbb.CreateString(g.worker);
    auto name = fbb.CreateString(g.name);
    auto iface = fbb.CreateString(g.interface);
    auto rights = fbb.CreateVectorOfStrings(g.rights);
    control::KernelVerdict verdict = control::KernelVerdict::Unknown;
    flatbuffers::Offset<flatbuffers::String> detail = 0;
    if (port_of_grant[i] != SIZE_MAX) {
      const KernelCheck& c = checks[port_of_grant[i]];
      verdict = to_wire(c.verdict);
      detail = fbb.CreateString(c.detail);
    }
    control::GrantEntryBuilder b(fbb);
    b.add_id(g.id);
    b.add_parent(g.parent);
    b.add_worker(worker);
    b.add_holder_pid(g.holder_pid);
    b.add_name(name);
    b.add_interface(iface);
    b.add_rights(rights);
    b.add_origin(to_wire(g.origin));
    b.add_state(to_wire(g.state));
    b.add_kind(to_wire(g.kind));
    b.add_channel(g.channel);
    b.add_via(g.via);
    b.add_transferable(g.transferable);
    b.add_created_ns(unix_ns(g.created));
    b.add_ended_ns(g.state == GrantState::kLive ? 0 : unix_ns(g.ended));
    b.add_calls(g.calls);
    b.add_bytes(g.bytes);
    b.add_denials(g.denials);
    b.add_port_inode(g.port_inode);
    b.add_port_grant(g.port_grant);
    b.add_object(g.object);
    b.add_kernel(verdict);
    if (!detail.IsNull()) b.add_kernel_detail(detail);
    grants.push_back(b.Finish());
  }
  auto wv = fbb.CreateVector(workers);
  auto gv = fbb.CreateVector(grants);
  fbb.Finish(control::CreateAuditReport(fbb, input.supervisor_pid, unix_ns(input.now), wv, gv),
             control::AuditReportIdentifier());
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

}  // namespace capsa::supervisor
