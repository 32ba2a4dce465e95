#include "crypto/siv.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <memory>

#include "common/log.h"
#include "crypto/siv_internal.h"

namespace cfs::crypto {
namespace internal {
namespace {

constexpr size_t kSivKeySize = 64;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

EVP_CIPHER* FetchOrDie(const char* name) {
  EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (c == nullptr) {
    log::Error("crypto: OpenSSL has no {}", name);
    std::abort();
  }
  return c;
}

// The SIV cipher for a key of `key_size` bytes (two AES keys), or nullptr.
const EVP_CIPHER* SivCipher(size_t key_size) {
  static EVP_CIPHER* const aes128 = FetchOrDie("AES-128-SIV");
  static EVP_CIPHER* const aes192 = FetchOrDie("AES-192-SIV");
  static EVP_CIPHER* const aes256 = FetchOrDie("AES-256-SIV");
  switch (key_size) {
    case 32: return aes128;
    case 48: return aes192;
    case 64: return aes256;
    default: return nullptr;
  }
}

// Keys a new context and feeds every AAD component. A zero-length component
// still needs a non-null pointer: OpenSSL's SIV reads (NULL, 0) as "final".
Result<CipherCtx> Begin(const SecretBytes& key, std::span<const ByteView> aad, int encrypt) {
  const EVP_CIPHER* cipher = SivCipher(key.size());
  if (cipher == nullptr) return InvalidArgument("AES-SIV key must be 32, 48 or 64 bytes");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr ||
      EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key.UnsafeData(), nullptr, encrypt) != 1) {
    return Internal("AES-SIV: context setup failed in OpenSSL");
  }
  static const uint8_t kEmpty[1] = {0};
  for (ByteView component : aad) {
    if (component.size() > INT_MAX) return InvalidArgument("AES-SIV: associated data too large");
    const uint8_t* p = component.empty() ? kEmpty : component.data();
    int outl = 0;
    if (EVP_CipherUpdate(ctx.get(), nullptr, &outl, p, static_cast<int>(component.size())) != 1) {
      return Internal("AES-SIV: associated data rejected by OpenSSL");
    }
  }
  return ctx;
}

}  // namespace

Result<Bytes> SivEncrypt(const SecretBytes& key, std::span<const ByteView> aad,
                         ByteView plaintext) {
  if (plaintext.empty()) return InvalidArgument("AES-SIV: empty plaintext is not supported");
  if (plaintext.size() > INT_MAX - kSivSize) return InvalidArgument("AES-SIV: input too large");
  CFS_ASSIGN_OR_RETURN(CipherCtx ctx, Begin(key, aad, 1));
  Bytes out(kSivSize + plaintext.size());
  int outl = 0;
  uint8_t final_block[EVP_MAX_BLOCK_LENGTH];
  int final_len = 0;
  if (EVP_CipherUpdate(ctx.get(), out.data() + kSivSize, &outl, plaintext.data(),
                       static_cast<int>(plaintext.size())) != 1 ||
      static_cast<size_t>(outl) != plaintext.size() ||
      EVP_CipherFinal_ex(ctx.get(), final_block, &final_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kSivSize, out.data()) != 1) {
    return Internal("AES-SIV: encryption failed in OpenSSL");
  }
  return out;
}

Result<Bytes> SivDecrypt(const SecretBytes& key, std::span<const ByteView> aad,
                         ByteView ciphertext) {
  if (ciphertext.size() <= kSivSize) return DataLoss("AES-SIV: ciphertext too short");
  if (ciphertext.size() > INT_MAX) return DataLoss("AES-SIV: ciphertext too large");
  CFS_ASSIGN_OR_RETURN(CipherCtx ctx, Begin(key, aad, 0));
  uint8_t siv[kSivSize];
  std::copy(ciphertext.begin(), ciphertext.begin() + kSivSize, siv);
  // The SIV is the IV of the CTR step, so it must be known before decrypting.
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kSivSize, siv) != 1) {
    return Internal("AES-SIV: setting the SIV failed in OpenSSL");
  }
  const ByteView body = ciphertext.subspan(kSivSize);
  Bytes out(body.size());
  int outl = 0;
  uint8_t final_block[EVP_MAX_BLOCK_LENGTH];
  int final_len = 0;
  const bool ok = EVP_CipherUpdate(ctx.get(), out.data(), &outl, body.data(),
                                   static_cast<int>(body.size())) == 1 &&
                  static_cast<size_t>(outl) == body.size() &&
                  EVP_CipherFinal_ex(ctx.get(), final_block, &final_len) == 1;
  if (!ok) {
    OPENSSL_cleanse(out.data(), out.size());
    return DataLoss("AES-SIV: name does not authenticate (wrong key, directory or tampered)");
  }
  return out;
}

}  // namespace internal

SivKey::SivKey(const SecretBytes& key) : key_(key.Clone()) {
  if (key_.size() != internal::kSivKeySize) {
    log::Error("crypto: SivKey needs a 64-byte key, got {} bytes", key_.size());
    std::abort();
  }
}

SivKey::~SivKey() = default;  // key_ wipes itself

Result<Bytes> SivKey::Encrypt(ByteView aad, ByteView plaintext) const {
  const ByteView components[] = {aad};
  return internal::SivEncrypt(key_, components, plaintext);
}

Result<Bytes> SivKey::Decrypt(ByteView aad, ByteView ciphertext) const {
  const ByteView components[] = {aad};
  return internal::SivDecrypt(key_, components, ciphertext);
}

}  // namespace cfs::crypto
