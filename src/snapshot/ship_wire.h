// The messages of a shipment between hosts (docs/regions.md, "Between
// hosts"): a snapshot copy or a replica shipment sent over a TlsChannel
// (DESIGN.md rule 8) to `cipherfs region serve`. A message is
//   u8 type | 3 zero bytes | u32 header length | u64 payload length |
//   header (a JSON object) | payload (raw bytes)
// with both lengths bounded per type, so a hostile peer can't make the
// other end allocate more than a chunk file. A session:
//   sender: kHello {kind, target, region, key_id, job}, payload volume.yaml
//           kKey (the plaintext data key, encrypted volumes only)
//   server: kReady {done: [[rel, size]...]} (chunks already moved) | kError
//   sender: kTree (packed tree/, ship_tree.h), kRemove {rel}..., kChunk
//           {rel, sha256} payload the chunk file, each answered kAck | kError
//   sender: kCommit; server: kDone {arn, key_arn, ...} | kError
// Thread safety: one thread per ShipWire (as its channel).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/result.h"
#include "common/secret_bytes.h"
#include "crypto/tls_channel.h"

namespace cfs::snapshot {

enum class ShipMsg : uint8_t {
  kHello = 1,
  kKey = 2,
  kReady = 3,
  kTree = 4,
  kRemove = 5,
  kChunk = 6,
  kAck = 7,
  kCommit = 8,
  kDone = 9,
  kError = 10,
};

struct ShipMessage {
  ShipMsg type = ShipMsg::kError;
  nlohmann::json header;  // always an object
  Bytes payload;
};

class ShipWire {
 public:
  explicit ShipWire(crypto::TlsChannel* channel) : ch_(channel) {}

  Status Send(ShipMsg type, const nlohmann::json& header, ByteView payload = {});
  // kKey with `key` as payload, never copied out of locked memory.
  Status SendKey(const SecretBytes& key);
  // kError carrying `s` (code and message).
  Status SendError(const Status& s);
  // The next message (not kKey). DataLoss for a malformed or oversized one,
  // Unavailable when the peer closed.
  Result<ShipMessage> Receive();
  // The next message, which must be kKey; its payload straight into locked
  // memory.
  Result<SecretBytes> ReceiveKey();
  // Receive(), then: the status a kError carries; FailedPrecondition if
  // the type is not `want`.
  Result<ShipMessage> Expect(ShipMsg want);

 private:
  struct Head {
    ShipMsg type;
    uint32_t header_len;
    uint64_t payload_len;
  };
  Result<Head> ReadHead();
  crypto::TlsChannel* ch_;
};

// Header fields, type-checked (a hostile peer's JSON is not trusted).
Result<std::string> HeaderString(const nlohmann::json& h, const char* key);
Result<uint64_t> HeaderU64(const nlohmann::json& h, const char* key);

}  // namespace cfs::snapshot
