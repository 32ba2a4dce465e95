#include "crypto/tls_channel.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace cfs::crypto {
namespace {

constexpr time_t kAcceptedReadTimeoutS = 300;

std::string SslErrors() {
  std::string out;
  for (unsigned long e; (e = ERR_get_error()) != 0;) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

Result<SSL_CTX*> MakeContext(const TlsIdentity& id, bool server) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return Internal("SSL_CTX_new: " + SslErrors());
  auto fail = [ctx](Status s) -> Result<SSL_CTX*> {
    SSL_CTX_free(ctx);
    return s;
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, id.cert_file.c_str()) != 1) {
    return fail(InvalidArgument(fmt::format("TLS certificate {}: {}", id.cert_file, SslErrors())));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, id.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return fail(InvalidArgument(fmt::format("TLS key {}: {}", id.key_file, SslErrors())));
  }
  if (SSL_CTX_load_verify_locations(ctx, id.ca_file.c_str(), nullptr) != 1) {
    return fail(InvalidArgument(fmt::format("TLS CA {}: {}", id.ca_file, SslErrors())));
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

std::string SubjectCn(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return "";
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  X509_free(cert);
  return buf;
}

// Blocks SIGPIPE in this thread for its lifetime, and discards one raised
// meanwhile: a write to a peer that went away is an error, not a kill.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
  }
  ~SigpipeBlock() {
    if (!blocked_) return;
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
  bool blocked_ = false;
};

}  // namespace

struct TlsChannel::State {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  int fd = -1;
  ~State() {
    if (ssl != nullptr) {
      SSL_shutdown(ssl);
      SSL_free(ssl);
    }
    if (ctx != nullptr) SSL_CTX_free(ctx);
    if (fd >= 0) ::close(fd);
  }
};

TlsChannel::TlsChannel(std::unique_ptr<State> state) : state_(std::move(state)) {}
TlsChannel::~TlsChannel() = default;

Result<int> ListenTcp(const std::string& host, uint16_t port, uint16_t* bound_port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return InvalidArgument(fmt::format("'{}' is not an IPv4 address to listen on", host));
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0) {
    Status s = Status::FromErrno(errno, fmt::format("listen on {}:{}", host, port));
    ::close(fd);
    return s;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (bound_port != nullptr) *bound_port = ntohs(addr.sin_port);
  return fd;
}

Result<std::unique_ptr<TlsChannel>> TlsChannel::Connect(const std::string& host, uint16_t port,
                                                        const TlsIdentity& id) {
  auto st = std::make_unique<State>();
  CFS_ASSIGN_OR_RETURN(st->ctx, MakeContext(id, false));
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &res) != 0 || res == nullptr) {
    return Unavailable(fmt::format("cannot resolve {}", host));
  }
  int err = ECONNREFUSED;
  for (addrinfo* a = res; a != nullptr && st->fd < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      st->fd = fd;
    } else {
      err = errno;
      ::close(fd);
    }
  }
  ::freeaddrinfo(res);
  if (st->fd < 0) {
    return Status(Code::kUnavailable, fmt::format("connect to {}:{}: {}", host, port, std::strerror(err)), err);
  }
  int one = 1;
  ::setsockopt(st->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  st->ssl = SSL_new(st->ctx);
  if (st->ssl == nullptr) return Internal("SSL_new: " + SslErrors());
  SSL_set_fd(st->ssl, st->fd);
  // The server's certificate must name `host`: its IP address (SAN IP) when
  // dialled by address, else its DNS name (SAN DNS, also sent as SNI).
  in6_addr ip{};
  bool is_ip = ::inet_pton(AF_INET, host.c_str(), &ip) == 1 || ::inet_pton(AF_INET6, host.c_str(), &ip) == 1;
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(st->ssl), host.c_str());
  } else {
    SSL_set_tlsext_host_name(st->ssl, host.c_str());
    SSL_set1_host(st->ssl, host.c_str());
  }
  if (SSL_connect(st->ssl) != 1) {
    return PermissionDenied(fmt::format("TLS handshake with {}:{} failed: {}", host, port, SslErrors()));
  }
  std::string peer = SubjectCn(st->ssl);
  std::unique_ptr<TlsChannel> ch(new TlsChannel(std::move(st)));
  ch->peer_name_ = std::move(peer);
  return ch;
}

Result<std::unique_ptr<TlsChannel>> TlsChannel::Accept(int listen_fd, const TlsIdentity& id) {
  auto st = std::make_unique<State>();
  CFS_ASSIGN_OR_RETURN(st->ctx, MakeContext(id, true));
  st->fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (st->fd < 0) return Status::FromErrno(errno, "accept");
  // A peer that stops talking fails the read instead of holding the server.
  timeval tv{kAcceptedReadTimeoutS, 0};
  ::setsockopt(st->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  st->ssl = SSL_new(st->ctx);
  if (st->ssl == nullptr) return Internal("SSL_new: " + SslErrors());
  SSL_set_fd(st->ssl, st->fd);
  if (SSL_accept(st->ssl) != 1) return PermissionDenied("TLS handshake with a client failed: " + SslErrors());
  std::string peer = SubjectCn(st->ssl);
  std::unique_ptr<TlsChannel> ch(new TlsChannel(std::move(st)));
  ch->peer_name_ = std::move(peer);
  return ch;
}

Status TlsChannel::Write(ByteView data) {
  SigpipeBlock no_sigpipe;
  size_t done = 0;
  while (done < data.size()) {
    size_t n = 0;
    if (SSL_write_ex(state_->ssl, data.data() + done, data.size() - done, &n) != 1) {
      return Unavailable("TLS write failed: " + SslErrors());
    }
    done += n;
  }
  return Status::Ok();
}

Status TlsChannel::Read(uint8_t* out, size_t n) {
  size_t done = 0;
  while (done < n) {
    size_t got = 0;
    if (SSL_read_ex(state_->ssl, out + done, n - done, &got) != 1) {
      int e = SSL_get_error(state_->ssl, 0);
      if (e == SSL_ERROR_ZERO_RETURN) return Unavailable("peer closed");
      return Unavailable("TLS read failed: " + SslErrors());
    }
    done += got;
  }
  return Status::Ok();
}

}  // namespace cfs::crypto
