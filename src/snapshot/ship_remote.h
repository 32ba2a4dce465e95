// Shipping between hosts (DESIGN.md rules 4 and 8; docs/regions.md): a
// snapshot copy or a replica shipment sent over TLS (crypto::TlsChannel,
// both ends certificate-authenticated) to `cipherfs region serve` on the
// host of the target region. The chunks travel as they are on disk
// (ciphertext), each with its SHA-256, which the receiving end checks on
// arrival (ship_wire.h has the messages).
// RemoteSession is the sending end; ReceiveImage the loop of the receiving
// end, which the CLI's server wraps with the region-specific parts (KMS,
// staging folders, descriptors).
// Thread safety: a RemoteSession's chunk receiver may be called from several
// threads (one message exchange at a time); everything else one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/secret_bytes.h"
#include "crypto/tls_channel.h"
#include "snapshot/copy_transfer.h"
#include "snapshot/ship_wire.h"
#include "store/backing.h"

namespace cfs::snapshot {

// A receiving end: "tls://HOST:PORT" and this end's certificate, key and CA.
struct RemoteTarget {
  std::string host;
  uint16_t port = 0;
  crypto::TlsIdentity identity;
  std::string url() const;
};

// Parses "tls://HOST:PORT"; InvalidArgument otherwise.
Result<RemoteTarget> ParseRemoteTarget(const std::string& url, const crypto::TlsIdentity& identity);

// What a session asks of the receiving end (kHello).
struct RemoteHello {
  std::string kind;         // "copy" or "ship"
  std::string target_id;    // the copy's snapshot id, or the replica id
  std::string region;       // the target region (must be the server's)
  std::string key_id;       // a key of the target region ("" unencrypted)
  std::string job;          // copy: identifies a resumable copy
  std::string point_in_time;  // ship: the source snapshot's time
  std::string source_yaml;  // the source's volume.yaml
};

class RemoteSession {
 public:
  // Connects, sends kHello (and the data key for an encrypted source) and
  // waits for kReady. The server's refusal comes back as its status;
  // PermissionDenied when the TLS handshake fails either way.
  static Result<std::unique_ptr<RemoteSession>> Open(const RemoteTarget& target, const RemoteHello& hello,
                                                     const SecretBytes* data_key);
  // Chunks an earlier interrupted copy already moved (rel -> size).
  const std::map<std::string, uint64_t>& done() const { return done_; }
  // Sends `volume_dir`/tree (ship_tree.h).
  Status SendTree(store::Backing* backing, const std::string& volume_dir);
  // Sends chunks and removals, each acknowledged by the receiving end.
  ChunkReceiver* chunks() { return &chunks_; }
  // Asks the receiving end to make the image durable and install it; its
  // kDone header.
  Result<nlohmann::json> Commit();

 private:
  class Chunks final : public ChunkReceiver {
   public:
    explicit Chunks(RemoteSession* s) : s_(s) {}
    Status Receive(const std::string& rel, ByteView data, const crypto::Digest& sent) override;
    Status Remove(const std::string& rel) override;
    Status Finish() override { return Status::Ok(); }  // the receiving end syncs at commit or disconnect

   private:
    RemoteSession* s_;
  };
  // Sends one message and waits for its kAck. After a failure every call
  // returns that first failure (several sender threads share the session).
  Status Exchange(ShipMsg type, const nlohmann::json& header, ByteView payload = {});
  explicit RemoteSession(std::unique_ptr<crypto::TlsChannel> ch)
      : ch_(std::move(ch)), wire_(ch_.get()), chunks_(this) {}
  std::unique_ptr<crypto::TlsChannel> ch_;
  ShipWire wire_;
  std::mutex mu_;  // one message exchange at a time; guards failed_
  Status failed_;
  std::map<std::string, uint64_t> done_;
  Chunks chunks_;
};

// Reads kHello (and the key, when the source is encrypted) from a new
// session; `key` is left empty for an unencrypted source.
Result<RemoteHello> ReceiveHello(ShipWire& wire, SecretBytes* key);

// The receiving end after kReady: unpacks kTree into `volume_dir` (an
// existing tree/ there is replaced), applies kRemove and kChunk through
// `receiver` (which checks each chunk's SHA-256), acknowledging each, until
// kCommit (Ok) or an error (sent to the peer, then returned). The caller
// calls receiver->Finish() in every case.
Status ReceiveImage(ShipWire& wire, store::Backing* backing, const std::string& volume_dir, ChunkReceiver* receiver);

// "<ab>/<file id>/<index>" with plain components: what a peer may name.
bool IsValidChunkRel(const std::string& rel);

}  // namespace cfs::snapshot
