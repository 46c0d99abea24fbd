// A worker for sandbox_test: does what argv[1] says, reports on fd 3 (the
// bootstrap port) with plain send(). Runs inside the real sandbox.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "capabilities/scm_rights.h"

namespace {

void say(const std::string& s) { (void)::send(3, s.data(), s.size(), MSG_NOSIGNAL); }

std::string open_fds() {
  std::string out;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return "opendir failed";
  int self = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.' || std::atoi(e->d_name) == self) continue;
    out += e->d_name;
    out += ",";
  }
  ::closedir(d);
  return out;
}

std::string result(long rc) {
  return rc < 0 ? std::string("errno=") + std::strerror(errno) : "ok";
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "hello";
  if (mode == "hello") {
    say("ready fds=" + open_fds() + " uid=" + std::to_string(::getuid()));
    return 0;
  }
  if (mode == "exit") return std::atoi(argv[2]);
  if (mode == "env") {
    std::string all;
    for (char** e = environ; *e != nullptr; ++e) all += std::string(*e) + ";";
    say(all);
    return 0;
  }
  if (mode == "ptrace") {
    long rc = ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
    say("ptrace " + result(rc));
    return 0;
  }
  if (mode == "ports") {
    // What a capsa worker uses: a channel, fd passing, blobs, epoll plumbing, threads.
    int sv[2];
    bool ok = ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0;
    int mfd = ::memfd_create("blob", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ok = ok && mfd >= 0 && ::write(mfd, "x", 1) == 1 &&
         ::fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) == 0;
    char byte = 'm';
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    capsa::OneFdControl control;
    control.attach(msg, mfd);
    ok = ok && ::sendmsg(sv[0], &msg, 0) == 1 && ::recvmsg(sv[1], &msg, MSG_CMSG_CLOEXEC) == 1;
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    int ev = ::eventfd(0, EFD_CLOEXEC);
    int tf = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    epoll_event e{EPOLLIN, {}};
    ok = ok && ep >= 0 && ev >= 0 && tf >= 0 && ::epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) == 0;
    std::vector<std::thread> threads;
    int sum = 0;
    for (int i = 0; i < 4; ++i) threads.emplace_back([&sum] { __atomic_add_fetch(&sum, 1, __ATOMIC_SEQ_CST); });
    for (auto& t : threads) t.join();
    void* p = ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ok = ok && sum == 4 && p != MAP_FAILED;
    pid_t child = ::fork();
    if (child == 0) ::_exit(7);
    int st = 0;
    ok = ok && child > 0 && ::waitpid(child, &st, 0) == child && WEXITSTATUS(st) == 7;
    say(ok ? "ports ok" : "ports failed: " + std::string(std::strerror(errno)));
    return 0;
  }
  if (mode == "denied") {
    // Each must fail with EPERM (kErrno) without killing us.
    std::string out;
    int sv[2];
    out += "inet:" + result(::socketpair(AF_INET, SOCK_STREAM, 0, sv)) + ";";
    out += "socket:" + result(::socket(AF_UNIX, SOCK_STREAM, 0)) + ";";
    out += "newuser:" + result(::unshare(CLONE_NEWUSER)) + ";";
    out += "clonens:" + result(::syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0)) + ";";
    char ch = 'x';
    out += "tiocsti:" + result(::ioctl(0, TIOCSTI, &ch)) + ";";
    // The kernel reads the ioctl request as 32 bits: high bits must not dodge the rule.
    out += "tiocsti_hi:" + result(::syscall(SYS_ioctl, 0, (1ul << 32) | TIOCSTI, &ch)) + ";";
    say(out);
    return 0;
  }
  if (mode == "x32") {
    // getpid through the x32 ABI: killed by the filter (SIGSYS), never notified.
    ::syscall(0x40000000 | 39);
    say("x32 survived");
    return 0;
  }
  if (mode == "int80") {
    long ret;
    asm volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");  // i386 getpid
    say("int80 survived");
    return 0;
  }
  if (mode == "spin") {
    say("spinning");
    unsigned long i = 0;
    for (;;) asm volatile("" : "+r"(i));
  }
  if (mode == "sleep") {
    say("sleeping");
    for (;;) ::pause();
  }
  if (mode == "alloc") {
    // Touch memory until the address-space limit stops us, then abort the
    // way an uncaught std::bad_alloc would.
    for (;;) {
      void* p = std::malloc(1 << 20);
      if (p == nullptr) std::abort();
      std::memset(p, 1, 1 << 20);
    }
  }
  if (mode == "forkbomb") {
    // Fork until refused; the children wait to be killed with the sandbox.
    int n = 0;
    for (; n < 100000; ++n) {
      pid_t p = ::fork();
      if (p < 0) break;
      if (p == 0) {
        for (;;) ::pause();
      }
    }
    say("forks=" + std::to_string(n) + " " + std::strerror(errno));
    return 0;
  }
  if (mode == "escape") {
    // Leaves a detached descendant: new session, double fork. It must die
    // with the sandbox anyway (pid 1 of the namespace exits).
    pid_t p = ::fork();
    if (p == 0) {
      ::setsid();
      if (::fork() == 0) {
        for (;;) ::pause();
      }
      ::_exit(0);
    }
    ::waitpid(p, nullptr, 0);
    say("escaped");
    if (argc > 2 && std::string(argv[2]) == "stay") {
      for (;;) ::pause();
    }
    return 0;
  }
  if (mode == "echo") {
    // Leaves a detached descendant too, then answers every message.
    if (::fork() == 0) {
      ::setsid();
      for (;;) ::pause();
    }
    char buf[256];
    for (;;) {
      ssize_t n = ::recv(3, buf, sizeof buf, 0);
      if (n <= 0) return 0;
      (void)::send(3, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
    }
  }
  if (mode == "stdio") {
    // What fds 1 and 2 are ("dev:ino:rdev"), then, with "write", a line on each.
    std::string out;
    for (int fd : {1, 2}) {
      struct stat st {};
      if (::fstat(fd, &st) != 0) {
        out += "fd" + std::to_string(fd) + "=closed ";
        continue;
      }
      out += "fd" + std::to_string(fd) + "=" + std::to_string(st.st_dev) + ":" +
             std::to_string(st.st_ino) + ":" + std::to_string(st.st_rdev) + " ";
    }
    say(out);
    if (argc > 2 && std::string(argv[2]) == "write") {
      static constexpr char kOut[] = "to stdout\n", kErr[] = "to stderr\n";
      bool ok = ::write(1, kOut, sizeof kOut - 1) == sizeof kOut - 1 &&
                ::write(2, kErr, sizeof kErr - 1) == sizeof kErr - 1;
      say(ok ? "written" : "write failed: " + std::string(std::strerror(errno)));
    }
    return 0;
  }
  if (mode == "closeout") {
    // Closes fds 1 and 2, says so, and stays until told to go.
    ::close(1);
    ::close(2);
    say("closed");
    char buf[16];
    (void)::recv(3, buf, sizeof buf, 0);
    return 0;
  }
  if (mode == "reexec") {
    // execve of our own program, from a string of our own: the filter pins
    // execve to the launcher's pointer, not to the path, so this is refused.
    std::string self = argc > 2 ? argv[2] : "/proc/self/exe";
    char* const args[] = {self.data(), nullptr};
    char* const env[] = {nullptr};
    long rc = ::execve(self.c_str(), args, env);
    say("reexec " + result(rc));
    return 0;
  }
  say("unknown mode " + mode);
  return 2;
}
