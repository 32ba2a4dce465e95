#include "cli/control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "cli/backup_commands.h"
#include "cli/cluster_commands.h"
#include "cli/snapshot_commands.h"
#include "common/log.h"

namespace cfs::cli {
namespace {

constexpr size_t kMaxLine = 64 * 1024;

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path)) {
    return InvalidArgument(fmt::format("control socket path is longer than {} bytes: {}; use a shorter "
                                       "CIPHERFS_HOME", sizeof(a.sun_path) - 1, path));
  }
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// Reads one '\n'-terminated line (without it).
Result<std::string> ReadLine(int fd) {
  std::string line;
  char c;
  while (true) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read control socket");
    if (n == 0) return Unavailable("control socket closed before a full line");
    if (c == '\n') return line;
    if (line.size() >= kMaxLine) return InvalidArgument("control line too long");
    line.push_back(c);
  }
}

Status WriteAll(int fd, const std::string& s) {
  for (size_t done = 0; done < s.size();) {
    ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "write control socket");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

bool PeerAllowed(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  return cred.uid == 0 || cred.uid == ::geteuid();
}

nlohmann::json ErrorJson(const Status& s) {
  return {{"ok", false}, {"code", std::string(CodeName(s.code()))}, {"errno", s.sys_errno()},
          {"message", s.message()}};
}

Code CodeFromName(const std::string& name) {
  for (int c = 0; c < 32; ++c) {
    if (CodeName(static_cast<Code>(c)) == name) return static_cast<Code>(c);
  }
  return Code::kInternal;
}

}  // namespace

struct ControlServer::Impl {
  std::string path;
  int fd = -1;
  Handler handler;
  std::atomic<bool> stop{false};
  std::thread thread;

  void Serve() {
    while (!stop.load()) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      HandleOne(c);
      ::close(c);
    }
  }
  void HandleOne(int c) {
    if (!PeerAllowed(c)) {
      (void)WriteAll(c, ErrorJson(PermissionDenied("control socket: caller is not the daemon's user or root"))
                            .dump() + "\n");
      return;
    }
    Result<std::string> line = ReadLine(c);
    if (!line.ok()) return;
    nlohmann::json answer;
    nlohmann::json req = nlohmann::json::parse(*line, nullptr, false);
    if (req.is_discarded() || !req.is_object()) {
      answer = ErrorJson(InvalidArgument("control request is not a JSON object"));
    } else {
      try {
        answer = handler(req);
      } catch (const std::exception& e) {
        answer = ErrorJson(InvalidArgument(std::string("bad control request: ") + e.what()));
      }
    }
    (void)WriteAll(c, answer.dump() + "\n");
  }
};

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& path, Handler handler) {
  CFS_ASSIGN_OR_RETURN(sockaddr_un addr, Address(path));
  std::unique_ptr<ControlServer> s(new ControlServer());
  s->impl_ = std::make_unique<Impl>();
  Impl& im = *s->impl_;
  im.path = path;
  im.handler = std::move(handler);
  im.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (im.fd < 0) return Status::FromErrno(errno, "socket");
  ::unlink(path.c_str());  // a stale socket of a dead daemon (we hold the writer lock)
  mode_t old = ::umask(0177);
  int rc = ::bind(im.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0 || ::listen(im.fd, 16) != 0) {
    Status st = Status::FromErrno(errno, "bind " + path);
    ::close(im.fd);
    im.fd = -1;
    return st;
  }
  ::chmod(path.c_str(), 0600);
  im.thread = std::thread([&im] { im.Serve(); });
  return s;
}

ControlServer::~ControlServer() {
  if (!impl_) return;
  impl_->stop.store(true);
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->fd >= 0) {
    ::close(impl_->fd);
    ::unlink(impl_->path.c_str());
  }
}

Result<nlohmann::json> ControlCall(const std::string& path, const nlohmann::json& request) {
  CFS_ASSIGN_OR_RETURN(sockaddr_un addr, Address(path));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    return Status(Code::kUnavailable, fmt::format("no mount daemon answers on {}", path), e);
  }
  Status w = WriteAll(fd, request.dump() + "\n");
  Result<std::string> line = w.ok() ? ReadLine(fd) : Result<std::string>(w);
  ::close(fd);
  CFS_RETURN_IF_ERROR(line.status());
  nlohmann::json answer = nlohmann::json::parse(*line, nullptr, false);
  if (answer.is_discarded() || !answer.is_object()) return DataLoss("mount daemon sent a malformed answer");
  if (!answer.value("ok", false)) {
    return Status(CodeFromName(answer.value("code", "Internal")), answer.value("message", "mount daemon failed"),
                  answer.value("errno", 0));
  }
  return answer;
}

std::function<void(fs::LiveMount*)> LiveControlHook(Context* ctx, const std::string& cluster_id) {
  auto server = std::make_shared<std::unique_ptr<ControlServer>>();
  auto ticker = std::make_shared<std::unique_ptr<BackupTicker>>();
  auto mu = std::make_shared<std::mutex>();
  return [ctx, cluster_id, server, ticker, mu](fs::LiveMount* live) {
    if (live == nullptr) {
      ticker->reset();  // first: it may be asking the server for a snapshot
      server->reset();
      return;
    }
    std::string path = ClusterDir(*ctx, cluster_id) + "/" + kControlSocketName;
    auto started = ControlServer::Start(path, [ctx, cluster_id, live, mu](const nlohmann::json& req) {
      std::lock_guard<std::mutex> l(*mu);
      std::string op = req.value("op", "");
      if (op == "stats") {
        const store::DataCounters& c = live->data().counters();
        return nlohmann::json{{"ok", true},
                              {"counters",
                               {{"bytes_read", c.bytes_read.load()},
                                {"bytes_written", c.bytes_written.load()},
                                {"blocks_encrypted", c.blocks_encrypted.load()},
                                {"blocks_decrypted", c.blocks_decrypted.load()},
                                {"auth_failures", c.auth_failures.load()},
                                {"cow_breaks", c.cow_breaks.load()},
                                {"torn_blocks_repaired", c.torn_blocks_repaired.load()},
                                {"dirty_log_commits", c.dirty_log_commits.load()},
                                {"syncs_ahead", c.syncs_ahead.load()},
                                {"syncs_joined", c.syncs_joined.load()},
                                {"chunk_syncs_in_place", c.chunk_syncs_in_place.load()},
                                {"chunk_syncs_full", c.chunk_syncs_full.load()}}}};
      }
      if (op == "snapshot") {
        Result<nlohmann::json> r = LiveSnapshot(*ctx, cluster_id, live, req);
        return r.ok() ? *r : ErrorJson(r.status());
      }
      return ErrorJson(InvalidArgument("unknown control op '" + op + "'"));
    });
    if (!started.ok()) {
      log::Error("control channel not started: {}", started.status().ToString());
      return;
    }
    *server = std::move(started).value();
    // Automated backups: the ticker asks this server for its snapshots.
    if (int period = BackupCheckPeriodSeconds(); period > 0) {
      *ticker = std::make_unique<BackupTicker>(ctx, cluster_id, period);
    }
  };
}

}  // namespace cfs::cli
