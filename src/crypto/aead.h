// AES-256-GCM for 4 KiB data blocks and small blobs.
// A GcmKey holds one key; Seal draws a fresh random 96-bit nonce itself (no
// nonce parameter to misuse). OpenSSL contexts are keyed once per thread per
// key and reused, only the IV changes per call.
// Thread safety: all methods are const and may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "common/encoding.h"
#include "common/result.h"
#include "common/secret_bytes.h"

namespace cfs::crypto {

namespace internal {
class GcmKeyInternal;  // crypto/aead_internal.h: known-answer tests only
}  // namespace internal

constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
using Nonce = std::array<uint8_t, kNonceSize>;
using Tag = std::array<uint8_t, kTagSize>;

class GcmKey {
 public:
  // `key` must be 32 bytes (aborts otherwise: a programming error).
  explicit GcmKey(const SecretBytes& key);
  // Same, taking over `key` without a copy (one locked page less to map).
  explicit GcmKey(SecretBytes&& key);
  ~GcmKey();
  GcmKey(const GcmKey&) = delete;
  GcmKey& operator=(const GcmKey&) = delete;

  // Encrypts `plaintext` into `ciphertext` (same length; may alias),
  // writing the fresh nonce and the tag. Fails only if OpenSSL fails.
  Status Seal(ByteView aad, ByteView plaintext, uint8_t* ciphertext, Nonce* nonce, Tag* tag) const;
  // Encrypts like Seal with a nonce the caller derives (store chunk format
  // 2: salts, block index and a per-block write counter, so that recovery
  // can recompute the nonce of a write whose tag slot was lost). The caller
  // must guarantee the nonce never repeats under this key.
  Status SealWithDerivedNonce(const Nonce& nonce, ByteView aad, ByteView plaintext,
                              uint8_t* ciphertext, Tag* tag) const {
    return SealWithNonce(nonce, aad, plaintext, ciphertext, tag);
  }
  // Decrypts and verifies. Returns false (and leaves `plaintext` wiped to
  // zeros) when the tag does not verify; never returns unauthenticated data.
  bool Open(ByteView aad, const Nonce& nonce, const Tag& tag, ByteView ciphertext,
            uint8_t* plaintext) const;
  // Recovery only (torn-page re-tag after an unclean shutdown): decrypts
  // without checking the tag (GCM's CTR keystream). Never use on a read path.
  void DecryptUnauthenticatedForRecovery(const Nonce& nonce, ByteView ciphertext,
                                         uint8_t* plaintext) const;

  // Seals a small blob as nonce || ciphertext || tag.
  Result<Bytes> SealBlob(ByteView aad, ByteView plaintext) const;
  // Opens nonce || ciphertext || tag; kDataLoss when it does not verify.
  Result<SecretBytes> OpenBlob(ByteView aad, ByteView blob) const;

  // Unique id of this key object (for per-thread context caches).
  uint64_t id() const { return id_; }

 private:
  friend class internal::GcmKeyInternal;
  // Seal with a caller-chosen nonce; reachable only through aead_internal.h.
  Status SealWithNonce(const Nonce& nonce, ByteView aad, ByteView plaintext, uint8_t* ciphertext,
                       Tag* tag) const;

  SecretBytes key_;
  uint64_t id_;
};

}  // namespace cfs::crypto
