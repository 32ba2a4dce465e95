#include "keymgr/kms_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/log.h"
#include "keymgr/kms_wire.h"

namespace cfs::keymgr {
namespace {

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument(fmt::format("socket path '{}' is empty or longer than {} bytes", path,
                                       sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// A socket file left by a dead kmsd is removed; a live one (connect works)
// or a file that is not a socket is refused.
Status ClearStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Status::Ok();
  if (!S_ISSOCK(st.st_mode)) {
    return FailedPrecondition(fmt::format("{} exists and is not a socket; remove it or choose another --socket", path));
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool live = fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  if (fd >= 0) ::close(fd);
  if (live) return Unavailable(fmt::format("a kmsd is already serving {}; stop it first", path));
  ::unlink(path.c_str());
  return Status::Ok();
}

// Reads one request line (up to kMaxWireMessage) within the socket timeout.
Result<std::string> ReadLine(int fd) {
  std::string line;
  char buf[8192];
  while (line.size() <= kMaxWireMessage) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read request");
    if (n == 0) break;
    line.append(buf, static_cast<size_t>(n));
    size_t nl = line.find('\n');
    if (nl != std::string::npos) return line.substr(0, nl);
  }
  return InvalidArgument("request too long or not terminated by a newline");
}

void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

void ServeConnection(LocalKeyManager* kms, int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return;
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  Result<std::string> line = ReadLine(fd);
  nlohmann::json response;
  if (!line.ok()) {
    response = StatusToWire(line.status());
  } else {
    nlohmann::json request = nlohmann::json::parse(*line, nullptr, /*allow_exceptions=*/false);
    kms->SetCaller(CallerForUid(cred.uid));
    response = request.is_object() ? HandleKmsRequest(*kms, request)
                                   : StatusToWire(InvalidArgument("request is not a JSON object"));
    log::Info("kmsd: uid {} {} -> {}", cred.uid, request.is_object() ? request.value("Operation", "?") : "?",
              response.contains("Result") ? "ok" : response.value("__type", "error"));
  }
  WriteAll(fd, response.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace

Status ServeKms(LocalKeyManager* kms, const std::string& socket_path, const std::atomic<bool>* stop,
                const std::function<void()>& on_ready) {
  CFS_ASSIGN_OR_RETURN(sockaddr_un addr, Address(socket_path));
  CFS_RETURN_IF_ERROR(ClearStaleSocket(socket_path, addr));
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return Status::FromErrno(errno, "socket");
  if (::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::chmod(socket_path.c_str(), 0666) != 0 || ::listen(listener, 64) != 0) {
    Status s = Status::FromErrno(errno, "listen on " + socket_path);
    ::close(listener);
    return s;
  }
  if (on_ready) on_ready();
  time_t last_maintenance = ::time(nullptr);
  while (!stop->load()) {
    if (::time(nullptr) - last_maintenance >= 60) {  // purges and rotations come due while we run
      last_maintenance = ::time(nullptr);
      Status m = kms->RunMaintenance();
      if (!m.ok()) log::Warn("kmsd: maintenance: {}", m.ToString());
    }
    pollfd p{listener, POLLIN, 0};
    int ready = ::poll(&p, 1, 200);
    if (ready <= 0) continue;
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ServeConnection(kms, fd);
    ::close(fd);
  }
  ::close(listener);
  ::unlink(socket_path.c_str());
  return Status::Ok();
}

}  // namespace cfs::keymgr
