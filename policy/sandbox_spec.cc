#include "policy/sandbox_spec.h"

#include <utility>
#include <vector>

#include "policy/limits.h"

namespace capsa::policy {

Result<sandbox::Spec> sandbox_spec(const WorkerProfile& p, const std::string& launcher) {
  sandbox::SpecBuilder b;
  b.name(p.name).program(p.program);
  std::vector<std::string> argv{sandbox::default_argv0(p.program)};
  argv.insert(argv.end(), p.args.begin(), p.args.end());
  b.args(std::move(argv));
  for (const auto& [k, v] : p.env) b.env(k, v);
  for (const std::string& dir : p.sandbox.ro_binds) b.ro_bind(dir);
  b.tmpfs_bytes(p.sandbox.tmpfs_bytes);
  b.require_cgroup(p.sandbox.require_cgroup);
  sandbox::Limits l;
  l.address_space_bytes = p.limits.memory;
  l.cpu_seconds = p.limits.cpu_seconds;
  l.wall_seconds = p.limits.wall_seconds;
  l.max_processes = p.limits.processes;
  l.max_open_files = p.limits.open_files;
  l.max_file_size_bytes = kFileSizeLimitBytes;
  b.limits(l);
  for (const std::string& s : p.sandbox.extra_syscalls()) b.allow_syscall(s);
  if (!launcher.empty()) b.launcher(launcher);
  const sandbox::Output out = p.output == OutputMode::kSupervisor ? sandbox::Output::kPipe
                              : p.output == OutputMode::kInherit  ? sandbox::Output::kInherit
                                                                  : sandbox::Output::kNull;
  b.stdout_to(out).stderr_to(out);
  return b.build();
}

}  // namespace capsa::policy
