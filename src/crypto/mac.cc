#include "crypto/mac.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <memory>

#include "common/log.h"
#include "crypto/ossl_params.h"

namespace cfs::crypto {
namespace {

constexpr size_t kMinMacSize = 16;

[[noreturn]] void Die(const char* what) {
  log::Error("crypto: {} failed in OpenSSL", what);
  std::abort();
}

EVP_MAC* Hmac() {
  static EVP_MAC* const mac = [] {
    EVP_MAC* m = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    if (m == nullptr) Die("fetching HMAC");
    return m;
  }();
  return mac;
}

const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) Die("fetching SHA256");
    return m;
  }();
  return md;
}

struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};

}  // namespace

MacKey::MacKey(const SecretBytes& key) : key_(key.Clone()) {
  if (key_.size() < kMinMacSize) {
    log::Error("crypto: MacKey needs at least {} key bytes, got {}", kMinMacSize, key_.size());
    std::abort();
  }
}

MacKey::~MacKey() = default;  // key_ wipes itself

Mac MacKey::Compute(ByteView data) const {
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_new(Hmac()));
  if (ctx == nullptr) Die("EVP_MAC_CTX_new");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_init(ctx.get(), key_.UnsafeData(), key_.size(), params) != 1) Die("HMAC init");
  if (!data.empty() && EVP_MAC_update(ctx.get(), data.data(), data.size()) != 1) {
    Die("HMAC update");
  }
  Mac mac;
  size_t len = 0;
  if (EVP_MAC_final(ctx.get(), mac.data(), &len, mac.size()) != 1 || len != mac.size()) {
    Die("HMAC final");
  }
  return mac;
}

bool MacKey::Verify(ByteView data, ByteView mac) const {
  if (mac.size() < kMinMacSize || mac.size() > kMacSize) return false;
  Mac expected = Compute(data);
  const bool ok = CRYPTO_memcmp(expected.data(), mac.data(), mac.size()) == 0;
  OPENSSL_cleanse(expected.data(), expected.size());
  return ok;
}

Digest Sha256(ByteView data) {
  Digest d;
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), d.data(), &len, Sha256Md(), nullptr) != 1 ||
      len != d.size()) {
    Die("SHA-256");
  }
  return d;
}

bool ConstantTimeEqual(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace cfs::crypto
