#include "cli/mount_daemon.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

#include "cli/exit_codes.h"
#include "common/atomic_file.h"
#include "common/log.h"

namespace cfs::cli {
namespace {

void WriteAllFd(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Records who serves what: the writer lock gets "pid\nmountpoint\n", the run
// record "mountpoint\nregion\ncluster\n" under a lock held until exit.
Result<FileLock> Announce(const DaemonPlan& plan, const std::string& record_path) {
  const std::string& mp = plan.options.mountpoint;
  if (plan.writer_lock_fd >= 0) {
    if (::ftruncate(plan.writer_lock_fd, 0) != 0) return Status::FromErrno(errno, "truncate mount.lock");
    std::string text = fmt::format("{}\n{}\n", ::getpid(), mp);
    if (::pwrite(plan.writer_lock_fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
      return Status::FromErrno(errno, "write mount.lock");
    }
  }
  CFS_ASSIGN_OR_RETURN(FileLock record, FileLock::Acquire(record_path, FileLock::Mode::kExclusive));
  std::string text = fmt::format("{}\n{}\n{}\n", mp, plan.ctx->config.region, plan.cluster_id);
  if (::pwrite(record.fd(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    return Status::FromErrno(errno, "write " + record_path);
  }
  return record;
}

Status Serve(DaemonPlan& plan, SecretBytes data_key) {
  std::string record_path = fmt::format("{}/{}.mount", RunDir(*plan.ctx), ::getpid());
  CFS_ASSIGN_OR_RETURN(FileLock record, Announce(plan, record_path));
  Status s = plan.ctx->serve_volume(plan.ctx->backing, std::move(data_key), plan.options);
  // The volume is closed: free the writer lock before the record, so that
  // once `umount` sees the record released the cluster can be mounted again.
  if (plan.writer_lock_fd >= 0) ::flock(plan.writer_lock_fd, LOCK_UN);
  ::unlink(record_path.c_str());
  return s;
}

// In the child: detach, log to a file, serve, report over `report_fd`.
[[noreturn]] void DaemonChild(DaemonPlan& plan, SecretBytes data_key, int report_fd) {
  ::setsid();
  if (::chdir("/") != 0) ::_exit(kExitIo);
  std::string log_path = fmt::format("{}/{}.{}.log", RunDir(*plan.ctx), plan.ctx->config.region, plan.cluster_id);
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null_fd >= 0) {
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
  }
  if (log_fd >= 0) ::dup2(log_fd, 2);
  auto reported = std::make_shared<bool>(false);
  plan.options.on_mounted = [report_fd, reported] {
    WriteAllFd(report_fd, "O");
    ::close(report_fd);
    *reported = true;
  };
  log::Info("cli: serving cluster {} on {} (pid {})", plan.cluster_id, plan.options.mountpoint, ::getpid());
  Status s = Serve(plan, std::move(data_key));
  if (!*reported) WriteAllFd(report_fd, fmt::format("E{}\n{}", static_cast<int>(s.code()), s.message()));
  if (!s.ok()) log::Error("cli: cluster {}: {}", plan.cluster_id, s.ToString());
  ::_exit(ExitCodeFor(s));
}

Status ParseReport(const std::string& report, pid_t child, const std::string& log_hint) {
  if (report.empty()) {
    return Internal(fmt::format("the mount daemon (pid {}) exited before mounting; see {}", child, log_hint));
  }
  if (report[0] == 'O') return Status::Ok();
  size_t nl = report.find('\n');
  int code = std::atoi(report.substr(1, nl).c_str());
  std::string message = nl == std::string::npos ? "mount failed" : report.substr(nl + 1);
  if (code <= 0 || code > static_cast<int>(Code::kInternal)) code = static_cast<int>(Code::kInternal);
  return Status(static_cast<Code>(code), message);
}

}  // namespace

Status RunMountDaemon(DaemonPlan plan, SecretBytes data_key) {
  const std::string mp = plan.options.mountpoint;
  if (plan.foreground) {
    plan.options.on_mounted = [&plan] {
      std::cerr << fmt::format("cipherfs: serving cluster {} on {}; unmount with: cipherfs umount {}\n",
                               plan.cluster_id, plan.options.mountpoint, plan.options.mountpoint);
    };
    return Serve(plan, std::move(data_key));
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  std::cout.flush();
  pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    ::close(fds[0]);
    DaemonChild(plan, std::move(data_key), fds[1]);
  }
  ::close(fds[1]);
  data_key.Wipe();
  std::string report;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    report.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  std::string log_hint = fmt::format("{}/{}.{}.log", RunDir(*plan.ctx), plan.ctx->config.region, plan.cluster_id);
  CFS_RETURN_IF_ERROR(ParseReport(report, pid, log_hint));
  *plan.ctx->out << fmt::format("mounted cluster {} on {} (pid {})\n", plan.cluster_id, mp, pid);
  return Status::Ok();
}

}  // namespace cfs::cli
