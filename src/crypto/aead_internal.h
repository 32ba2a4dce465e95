// Internal to crypto/ and its tests: sealing with a caller-chosen nonce, for
// known-answer tests only. Production code seals through GcmKey::Seal, which
// draws the nonce itself; nothing outside src/crypto includes this header.
// Thread safety: as GcmKey.
#pragma once

#include "crypto/aead.h"

namespace cfs::crypto::internal {

class GcmKeyInternal {
 public:
  static Status SealWithNonce(const GcmKey& key, const Nonce& nonce, ByteView aad,
                              ByteView plaintext, uint8_t* ciphertext, Tag* tag) {
    return key.SealWithNonce(nonce, aad, plaintext, ciphertext, tag);
  }
};

}  // namespace cfs::crypto::internal
