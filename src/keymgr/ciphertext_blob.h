// The KMS ciphertext blob (docs/format/keystore.md): what Encrypt and
// GenerateDataKey return and Decrypt takes. It names its key and material
// version, so rotation never breaks old blobs, and binds its header, the key
// ARN and the encryption context as AES-256-GCM AAD.
//
//   "CFKB" | u8 version=1 | key id (16 bytes) | u32be material version |
//   nonce (12) | ciphertext (1..4096) | tag (16)
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "common/encoding.h"
#include "common/result.h"
#include "common/secret_bytes.h"
#include "crypto/aead.h"

namespace cfs::keymgr {

inline constexpr uint8_t kBlobVersion = 1;
inline constexpr size_t kBlobHeaderSize = 4 + 1 + 16 + 4 + crypto::kNonceSize;
inline constexpr size_t kMaxPlaintextSize = 4096;

struct CiphertextBlob {
  std::string key_id;  // UUID text
  uint32_t material_version = 0;
  crypto::Nonce nonce{};
  Bytes ciphertext;
  crypto::Tag tag{};
};

// InvalidCiphertextException for anything that is not a well-formed blob.
Result<CiphertextBlob> ParseCiphertextBlob(ByteView bytes);
Bytes SerializeCiphertextBlob(const CiphertextBlob& blob);

// lp("cipherfs-kms-blob") || u8(version) || lp(key_arn) ||
// u32be(material_version) || encoded context. (GCM authenticates the nonce
// itself: another nonce gives another keystream and tag.)
Bytes CiphertextBlobAad(const std::string& key_arn, uint32_t material_version, ByteView encoded_context);

// Encrypts `plaintext` (1..4096 bytes) under `material`.
Result<Bytes> SealCiphertextBlob(const crypto::GcmKey& material, const std::string& key_id,
                                 const std::string& key_arn, uint32_t material_version,
                                 ByteView encoded_context, ByteView plaintext);
// Verifies and decrypts; InvalidCiphertextException when it does not verify
// (wrong context, wrong key, any changed byte).
Result<SecretBytes> OpenCiphertextBlob(const crypto::GcmKey& material, const CiphertextBlob& blob,
                                       const std::string& key_arn, ByteView encoded_context);

}  // namespace cfs::keymgr
