// AES-256-SIV (RFC 5297) for file names: deterministic, so the same name in
// the same directory always encrypts to the same stored name (lookups need
// no scan), and misuse-resistant. Output: 16-byte SIV || ciphertext.
// Thread safety: const methods may be called concurrently.
#pragma once

#include "common/encoding.h"
#include "common/result.h"
#include "common/secret_bytes.h"

namespace cfs::crypto {

class SivKey {
 public:
  // `key` must be 64 bytes (AES-256-SIV uses two 256-bit keys).
  explicit SivKey(const SecretBytes& key);
  ~SivKey();
  SivKey(const SivKey&) = delete;
  SivKey& operator=(const SivKey&) = delete;

  // One associated-data component (e.g. the parent directory id).
  Result<Bytes> Encrypt(ByteView aad, ByteView plaintext) const;
  // kDataLoss when the SIV does not verify.
  Result<Bytes> Decrypt(ByteView aad, ByteView ciphertext) const;

 private:
  SecretBytes key_;
};

}  // namespace cfs::crypto
