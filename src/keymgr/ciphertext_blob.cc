#include "keymgr/ciphertext_blob.h"

#include <cstring>

#include "keymgr/identifiers.h"
#include "keymgr/kms_error.h"

namespace cfs::keymgr {
namespace {

constexpr uint8_t kMagic[4] = {'C', 'F', 'K', 'B'};

Status Invalid() {
  return KmsError(KmsErrorType::kInvalidCiphertext, "The ciphertext blob is not a valid cipherfs KMS ciphertext");
}

}  // namespace

Result<CiphertextBlob> ParseCiphertextBlob(ByteView b) {
  if (b.size() < kBlobHeaderSize + 1 + crypto::kTagSize ||
      b.size() > kBlobHeaderSize + kMaxPlaintextSize + crypto::kTagSize) {
    return Invalid();
  }
  if (std::memcmp(b.data(), kMagic, 4) != 0 || b[4] != kBlobVersion) return Invalid();
  CiphertextBlob blob;
  std::string hex = HexEncode(b.subspan(5, 16));
  blob.key_id = hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) +
                "-" + hex.substr(20);
  const uint8_t* v = b.data() + 21;
  blob.material_version = (uint32_t{v[0]} << 24) | (uint32_t{v[1]} << 16) | (uint32_t{v[2]} << 8) | v[3];
  std::memcpy(blob.nonce.data(), b.data() + 25, crypto::kNonceSize);
  size_t ct_size = b.size() - kBlobHeaderSize - crypto::kTagSize;
  blob.ciphertext.assign(b.begin() + kBlobHeaderSize, b.begin() + kBlobHeaderSize + ct_size);
  std::memcpy(blob.tag.data(), b.data() + kBlobHeaderSize + ct_size, crypto::kTagSize);
  return blob;
}

Bytes SerializeCiphertextBlob(const CiphertextBlob& blob) {
  Bytes out(kMagic, kMagic + 4);
  out.push_back(kBlobVersion);
  std::string hex;
  for (char c : blob.key_id) {
    if (c != '-') hex.push_back(c);
  }
  Bytes id = HexDecode(hex).value_or(Bytes(16, 0));
  id.resize(16);
  out.insert(out.end(), id.begin(), id.end());
  AppendU32Be(&out, blob.material_version);
  out.insert(out.end(), blob.nonce.begin(), blob.nonce.end());
  out.insert(out.end(), blob.ciphertext.begin(), blob.ciphertext.end());
  out.insert(out.end(), blob.tag.begin(), blob.tag.end());
  return out;
}

Bytes CiphertextBlobAad(const std::string& key_arn, uint32_t material_version, ByteView encoded_context) {
  Bytes aad;
  AppendLengthPrefixed(&aad, AsBytes("cipherfs-kms-blob"));
  aad.push_back(kBlobVersion);
  AppendLengthPrefixed(&aad, AsBytes(key_arn));
  AppendU32Be(&aad, material_version);
  aad.insert(aad.end(), encoded_context.begin(), encoded_context.end());
  return aad;
}

Result<Bytes> SealCiphertextBlob(const crypto::GcmKey& material, const std::string& key_id,
                                 const std::string& key_arn, uint32_t material_version,
                                 ByteView encoded_context, ByteView plaintext) {
  if (plaintext.empty() || plaintext.size() > kMaxPlaintextSize) {
    return KmsError(KmsErrorType::kValidation, "Plaintext must be 1 to 4096 bytes");
  }
  CiphertextBlob blob;
  blob.key_id = key_id;
  blob.material_version = material_version;
  blob.ciphertext.resize(plaintext.size());
  Bytes aad = CiphertextBlobAad(key_arn, material_version, encoded_context);
  CFS_RETURN_IF_ERROR(material.Seal(aad, plaintext, blob.ciphertext.data(), &blob.nonce, &blob.tag));
  return SerializeCiphertextBlob(blob);
}

Result<SecretBytes> OpenCiphertextBlob(const crypto::GcmKey& material, const CiphertextBlob& blob,
                                       const std::string& key_arn, ByteView encoded_context) {
  Bytes aad = CiphertextBlobAad(key_arn, blob.material_version, encoded_context);
  SecretBytes plain(blob.ciphertext.size());
  if (!material.Open(aad, blob.nonce, blob.tag, blob.ciphertext, plain.UnsafeData())) {
    return KmsError(KmsErrorType::kInvalidCiphertext,
                    "The ciphertext does not verify under its key with this encryption context");
  }
  return plain;
}

}  // namespace cfs::keymgr
