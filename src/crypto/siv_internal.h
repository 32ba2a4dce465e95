// Internal to crypto/ and its tests: RFC 5297 AES-SIV with any AES key size
// (32, 48 or 64 key bytes: AES-128/192/256-SIV) and any number of
// associated-data components, so the RFC's AES-128 vectors can be checked
// against the same code that SivKey uses. Output: SIV(16) || ciphertext.
// Limitation (OpenSSL 3.0): the plaintext must not be empty.
// Thread safety: pure functions.
#pragma once

#include <span>

#include "common/encoding.h"
#include "common/result.h"
#include "common/secret_bytes.h"

namespace cfs::crypto::internal {

constexpr size_t kSivSize = 16;

Result<Bytes> SivEncrypt(const SecretBytes& key, std::span<const ByteView> aad,
                         ByteView plaintext);
// kDataLoss when the SIV does not verify.
Result<Bytes> SivDecrypt(const SecretBytes& key, std::span<const ByteView> aad,
                         ByteView ciphertext);

}  // namespace cfs::crypto::internal
