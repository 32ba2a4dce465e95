// The kmsd wire format (docs/format/keystore.md section 6): one JSON request
// line per Unix-socket connection, one JSON response line back.
//   request:  {"Operation": "Decrypt", "Region": "local-1", ...parameters}
//   response: {"Result": {...}}  or  {"__type": "AccessDeniedException",
//             "message": "<full status message>", "code": <Status code>}
// Binary values (plaintexts, blobs) are base64. These helpers convert the
// KeyManager's values to and from that JSON; HandleKmsRequest runs one
// request against a LocalKeyManager (the server side).
// Thread safety: pure functions except HandleKmsRequest (uses `kms`).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "keymgr/key_manager.h"
#include "keymgr/local_key_manager.h"

namespace cfs::keymgr {

inline constexpr size_t kMaxWireMessage = 512 * 1024;

nlohmann::json MetadataToWire(const KeyMetadata& m);
KeyMetadata MetadataFromWire(const nlohmann::json& j);  // throws on malformed input
nlohmann::json GrantToWire(const GrantListEntry& g);
GrantListEntry GrantFromWire(const nlohmann::json& j);

nlohmann::json StatusToWire(const Status& status);
Status StatusFromWire(const nlohmann::json& j);

// Runs `request` as kms's current caller; never throws.
nlohmann::json HandleKmsRequest(LocalKeyManager& kms, const nlohmann::json& request);

}  // namespace cfs::keymgr
