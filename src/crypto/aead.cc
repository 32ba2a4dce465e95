#include "crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "common/log.h"
#include "crypto/gcm_ctx_cache.h"
#include "crypto/nonce_source.h"

namespace cfs::crypto {
namespace {

// Ids start at 1 (0 marks an empty cache slot) and are never reused.
std::atomic<uint64_t> g_next_key_id{1};

constexpr size_t kMaxUpdate = size_t{1} << 30;  // EVP lengths are int

// Feeds `in` through the context in int-sized pieces; out == nullptr feeds AAD.
bool Update(EVP_CIPHER_CTX* ctx, uint8_t* out, const uint8_t* in, size_t n) {
  while (n > 0) {
    const int piece = static_cast<int>(std::min(n, kMaxUpdate));
    int outl = 0;
    if (EVP_CipherUpdate(ctx, out, &outl, in, piece) != 1 || outl != piece) return false;
    in += piece;
    if (out != nullptr) out += piece;
    n -= static_cast<size_t>(piece);
  }
  return true;
}

// Sets the nonce (key already in ctx) and the direction, then feeds the AAD.
bool Start(EVP_CIPHER_CTX* ctx, const Nonce& nonce, ByteView aad, int encrypt) {
  if (EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data(), encrypt) != 1) return false;
  return Update(ctx, nullptr, aad.data(), aad.size());
}

bool SealInCtx(EVP_CIPHER_CTX* ctx, const Nonce& nonce, ByteView aad, ByteView plaintext,
               uint8_t* ciphertext, Tag* tag) {
  if (!Start(ctx, nonce, aad, 1)) return false;
  if (!Update(ctx, ciphertext, plaintext.data(), plaintext.size())) return false;
  uint8_t final_block[EVP_MAX_BLOCK_LENGTH];
  int outl = 0;
  if (EVP_CipherFinal_ex(ctx, final_block, &outl) != 1 || outl != 0) return false;
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTagSize, tag->data()) == 1;
}

enum class OpenResult { kOk, kBadTag, kError };

OpenResult OpenInCtx(EVP_CIPHER_CTX* ctx, const Nonce& nonce, const Tag& tag, ByteView aad,
                     ByteView ciphertext, uint8_t* plaintext) {
  if (!Start(ctx, nonce, aad, 0)) return OpenResult::kError;
  if (!Update(ctx, plaintext, ciphertext.data(), ciphertext.size())) return OpenResult::kError;
  Tag expected = tag;  // the ctrl takes a non-const pointer
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTagSize, expected.data()) != 1) {
    return OpenResult::kError;
  }
  uint8_t final_block[EVP_MAX_BLOCK_LENGTH];
  int outl = 0;
  // EVP compares the tag in constant time.
  return EVP_CipherFinal_ex(ctx, final_block, &outl) == 1 ? OpenResult::kOk : OpenResult::kBadTag;
}

}  // namespace

GcmKey::GcmKey(const SecretBytes& key) : GcmKey(key.Clone()) {}

GcmKey::GcmKey(SecretBytes&& key) : key_(std::move(key)), id_(g_next_key_id.fetch_add(1)) {
  if (key_.size() != kKeySize) {
    log::Error("crypto: GcmKey needs a {}-byte key, got {} bytes", kKeySize, key_.size());
    std::abort();
  }
}

GcmKey::~GcmKey() { internal::PurgeGcmCtx(id_); }

Status GcmKey::SealWithNonce(const Nonce& nonce, ByteView aad, ByteView plaintext,
                             uint8_t* ciphertext, Tag* tag) const {
  internal::GcmCtxLease lease(id_, key_);
  if (lease.get() != nullptr && SealInCtx(lease.get(), nonce, aad, plaintext, ciphertext, tag)) {
    return Status::Ok();
  }
  lease.MarkBroken();
  // Never leave partial output behind (the buffer may alias the plaintext).
  if (!plaintext.empty()) OPENSSL_cleanse(ciphertext, plaintext.size());
  OPENSSL_cleanse(tag->data(), tag->size());
  return Internal("AES-256-GCM seal failed in OpenSSL");
}

Status GcmKey::Seal(ByteView aad, ByteView plaintext, uint8_t* ciphertext, Nonce* nonce,
                    Tag* tag) const {
  internal::NextNonce(nonce->data());
  return SealWithNonce(*nonce, aad, plaintext, ciphertext, tag);
}

bool GcmKey::Open(ByteView aad, const Nonce& nonce, const Tag& tag, ByteView ciphertext,
                  uint8_t* plaintext) const {
  internal::GcmCtxLease lease(id_, key_);
  OpenResult r = OpenResult::kError;
  if (lease.get() != nullptr) r = OpenInCtx(lease.get(), nonce, tag, aad, ciphertext, plaintext);
  if (r == OpenResult::kOk) return true;
  if (r == OpenResult::kError) lease.MarkBroken();
  if (!ciphertext.empty()) OPENSSL_cleanse(plaintext, ciphertext.size());
  return false;
}

void GcmKey::DecryptUnauthenticatedForRecovery(const Nonce& nonce, ByteView ciphertext,
                                               uint8_t* plaintext) const {
  internal::GcmCtxLease lease(id_, key_);
  // The GCM decryption of each byte is emitted by Update; the tag is only
  // checked by Final, which is deliberately never called here.
  if (lease.get() == nullptr || !Start(lease.get(), nonce, ByteView(), 0) ||
      !Update(lease.get(), plaintext, ciphertext.data(), ciphertext.size())) {
    log::Error("crypto: AES-256-GCM keystream decryption failed in OpenSSL");
    std::abort();  // a recovery tool must not write garbage as plaintext
  }
}

Result<Bytes> GcmKey::SealBlob(ByteView aad, ByteView plaintext) const {
  Bytes out(kNonceSize + plaintext.size() + kTagSize);
  Nonce nonce;
  Tag tag;
  CFS_RETURN_IF_ERROR(Seal(aad, plaintext, out.data() + kNonceSize, &nonce, &tag));
  std::memcpy(out.data(), nonce.data(), kNonceSize);
  std::memcpy(out.data() + kNonceSize + plaintext.size(), tag.data(), kTagSize);
  return out;
}

Result<SecretBytes> GcmKey::OpenBlob(ByteView aad, ByteView blob) const {
  if (blob.size() < kNonceSize + kTagSize) {
    return DataLoss("sealed blob too short: " + std::to_string(blob.size()) + " bytes");
  }
  const size_t n = blob.size() - kNonceSize - kTagSize;
  Nonce nonce;
  Tag tag;
  std::memcpy(nonce.data(), blob.data(), kNonceSize);
  std::memcpy(tag.data(), blob.data() + kNonceSize + n, kTagSize);
  SecretBytes out(n);
  if (!Open(aad, nonce, tag, blob.subspan(kNonceSize, n), out.UnsafeData())) {
    return DataLoss("sealed blob does not authenticate (wrong key, context or tampered)");
  }
  return out;
}

}  // namespace cfs::crypto
