#include "sandbox/mount_plan.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capabilities/sys.h"
#include "sandbox/launcher_protocol.h"

namespace capsa::sandbox::detail {
namespace {

// The options that do not depend on the host files: namespaces, identity,
// the read-only system tree, /proc, /dev and /tmp.
std::vector<std::string> base_args(const Spec& spec) {
  std::vector<std::string> a = {
      "--die-with-parent", "--new-session", "--as-pid-1",
      "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
      "--unshare-cgroup", "--uid", "65534", "--gid", "65534", "--hostname", "capsa",
      "--cap-drop", "ALL", "--clearenv",
      "--ro-bind", "/usr", "/usr"};
  // Merged-/usr systems have /bin -> usr/bin etc.; older ones real dirs.
  for (const char* p : {"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}) {
    char target[256];
    ssize_t n = ::readlink(p, target, sizeof target - 1);
    if (n > 0) {
      a.insert(a.end(), {"--symlink", std::string(target, static_cast<std::size_t>(n)), p});
    } else {
      a.insert(a.end(), {"--ro-bind-try", p, p});
    }
  }
  a.insert(a.end(), {"--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--proc", "/proc"});
  // The sandbox's procfs has the same kernel entries as ours: what exists
  // here exists there (bubblewrap fails on a missing mount point). A file
  // only its owner, root, may open (0400: kmsg, slabinfo, kpage*...) is
  // closed to the worker already: it is never kernel uid 0 and holds no
  // capability over root's files. Each bind costs bubblewrap about 0.2 ms,
  // so only the others are covered.
  for (const char* name : kMaskedProcFiles) {
    const std::string path = std::string("/proc/") + name;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
      a.insert(a.end(), {"--dev-bind", "/dev/null", path});
    }
  }
  for (const char* name : kMaskedProcDirs) {
    const std::string path = std::string("/proc/") + name;
    if (::access(path.c_str(), F_OK) == 0) {
      a.insert(a.end(), {"--size", "4096", "--tmpfs", path, "--remount-ro", path});
    }
  }
  a.insert(a.end(), {"--dev", "/dev",
                     "--size", std::to_string(spec.tmpfs_bytes), "--tmpfs", "/tmp"});
  return a;
}

// A detached copy of the mount at `fd` (the file or directory itself as its
// root; a directory with its submounts, as --ro-bind would). No path is
// looked up: the kernel copies from the fd.
Result<Fd> clone_tree(const Fd& fd, bool dir, const std::string& what) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (dir ? AT_RECURSIVE : 0u);
  return sys_fd("open_tree", what, [&] { return ::open_tree(fd.get(), "", flags); });
}

}  // namespace

Result<MountPlan> plan_mounts(const Spec& spec, const HostFiles& files, const Fd& program,
                              bool stage) {
  MountPlan plan;
  plan.args = base_args(spec);
  // The launcher: exec'ed through our fd, never mounted, so no host path of
  // it appears in the sandbox's mount table.
  plan.args.insert(plan.args.end(), {"--symlink", "/proc/self/fd/" + std::to_string(kLauncherFd),
                                     kLauncherInSandbox});
  struct Source {
    const Fd* fd;
    std::string dest;
    std::string what;
  };
  if (!files.launcher.valid() || !program.valid() ||
      files.binds.size() != spec.ro_binds.size()) {
    return make_error(Errc::kInvalidArgument, "spawn: the host files do not match the spec (launcher, program, one per ro_bind)");
  }
  std::vector<Source> sources{{&program, kProgramInSandbox, spec.program}};
  for (std::size_t i = 0; i < spec.ro_binds.size(); ++i) {
    sources.push_back({&files.binds[i], spec.ro_binds[i].dest, spec.ro_binds[i].source});
  }
  for (std::size_t i = 0; stage && i < sources.size(); ++i) {
    struct stat st {};
    CAPSA_TRY(sys("fstat", sources[i].what, [&] { return ::fstat(sources[i].fd->get(), &st); }));
    auto tree = clone_tree(*sources[i].fd, S_ISDIR(st.st_mode), sources[i].what);
    if (!tree && tree.error().sys_errno == EPERM && i == 0) {
      stage = false;  // no CAP_SYS_ADMIN here: bubblewrap's --ro-bind-fd it is
      break;
    }
    if (!tree) return std::unexpected(std::move(tree).error());
    plan.staged.push_back({std::move(*tree), std::string(kStageDir) + "/" + std::to_string(i),
                           S_ISDIR(st.st_mode), sources[i].what});
    plan.args.insert(plan.args.end(), {"--ro-bind", plan.staged.back().at, sources[i].dest});
  }
  if (!stage) {
    for (std::size_t i = 0; i < sources.size(); ++i) {
      plan.passed.push_back(sources[i].fd->get());
      plan.args.insert(plan.args.end(), {"--ro-bind-fd",
                                         std::to_string(kFirstBindFd + static_cast<int>(i)),
                                         sources[i].dest});
    }
  }
  // The root tmpfs bubblewrap builds would otherwise be writable.
  // The command itself must follow on the real argv: bubblewrap takes only
  // options from --args. It is a constant, so nothing from the spec is on argv.
  plan.args.insert(plan.args.end(), {"--remount-ro", "/", "--chdir", "/"});
  return plan;
}

}  // namespace capsa::sandbox::detail
