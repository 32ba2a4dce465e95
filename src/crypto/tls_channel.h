// TlsChannel: one TCP connection under TLS 1.3 (OpenSSL) with both ends
// authenticated by certificates of one CA (DESIGN.md rule 8: data sent to a
// replica in another region is encrypted in transit, for unencrypted
// clusters too). The server requires a client certificate; the client
// checks that the server's certificate names the host it dialled. Used by
// snapshot copies and replica shipping between hosts (snapshot/ship_remote.h).
// Thread safety: one thread per channel at a time (reads and writes not
// concurrent); distinct channels are independent.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/encoding.h"
#include "common/result.h"

namespace cfs::crypto {

// PEM files: this end's certificate and private key, and the CA that must
// have signed the peer's certificate.
struct TlsIdentity {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
};

class TlsChannel {
 public:
  // Dials host:port and handshakes. Unavailable if the connection fails,
  // PermissionDenied if either end's certificate is refused.
  static Result<std::unique_ptr<TlsChannel>> Connect(const std::string& host, uint16_t port,
                                                     const TlsIdentity& identity);
  // Accepts one connection on `listen_fd` (ListenTcp) and handshakes;
  // PermissionDenied if the client has no certificate of the CA. A read on
  // the accepted channel fails after 300 s without data from the peer.
  static Result<std::unique_ptr<TlsChannel>> Accept(int listen_fd, const TlsIdentity& identity);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  Status Write(ByteView data);
  // Reads exactly `n` bytes; Unavailable "peer closed" at end of stream.
  Status Read(uint8_t* out, size_t n);
  // The subject common name of the peer's certificate.
  const std::string& peer_name() const { return peer_name_; }

 private:
  struct State;
  explicit TlsChannel(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
  std::string peer_name_;
};

// A listening TCP socket on host:port (port 0: any free one, written to
// *bound_port). The caller closes it.
Result<int> ListenTcp(const std::string& host, uint16_t port, uint16_t* bound_port);

}  // namespace cfs::crypto
