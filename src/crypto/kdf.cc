#include "crypto/kdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "common/log.h"
#include "crypto/ossl_params.h"

namespace cfs::crypto {
namespace {

using internal::OctetParam;

constexpr size_t kSha256Size = 32;
// Refuse scrypt parameters needing more than this much memory.
constexpr uint64_t kScryptMaxMem = uint64_t{2} << 30;

struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};
using KdfCtx = std::unique_ptr<EVP_KDF_CTX, KdfCtxFree>;

// Fetches a KDF once per process (aborts if the provider lacks it).
EVP_KDF* FetchKdfOrDie(const char* name) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, name, nullptr);
  if (kdf == nullptr) {
    log::Error("crypto: OpenSSL has no KDF {}", name);
    std::abort();
  }
  return kdf;
}

EVP_KDF* Hkdf() {
  static EVP_KDF* const kdf = FetchKdfOrDie(OSSL_KDF_NAME_HKDF);
  return kdf;
}

EVP_KDF* ScryptKdf() {
  static EVP_KDF* const kdf = FetchKdfOrDie(OSSL_KDF_NAME_SCRYPT);
  return kdf;
}

// Runs `kdf` with `params` into a new secret of `length` bytes.
Result<SecretBytes> Derive(EVP_KDF* kdf, const OSSL_PARAM* params, size_t length,
                           const char* what) {
  KdfCtx ctx(EVP_KDF_CTX_new(kdf));
  if (ctx == nullptr) return Internal(std::string(what) + ": EVP_KDF_CTX_new failed");
  SecretBytes out(length);
  if (EVP_KDF_derive(ctx.get(), out.UnsafeData(), length, params) != 1) {
    return Internal(std::string(what) + ": derivation failed in OpenSSL");
  }
  return out;
}

}  // namespace

Result<SecretBytes> HkdfSha256(const SecretBytes& ikm, ByteView salt, ByteView info,
                               size_t length) {
  if (ikm.empty()) return InvalidArgument("HKDF: empty input key");
  if (length == 0 || length > 255 * kSha256Size) {
    return InvalidArgument("HKDF: output length must be 1.." + std::to_string(255 * kSha256Size));
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OctetParam(OSSL_KDF_PARAM_KEY, ikm.UnsafeSpan()),
      OctetParam(OSSL_KDF_PARAM_SALT, salt),
      OctetParam(OSSL_KDF_PARAM_INFO, info),
      OSSL_PARAM_construct_end(),
  };
  return Derive(Hkdf(), params, length, "HKDF");
}

Result<SecretBytes> Scrypt(std::string_view passphrase, ByteView salt, const ScryptParams& p,
                           size_t length) {
  if (p.n < 2 || (p.n & (p.n - 1)) != 0) return InvalidArgument("scrypt: N must be a power of 2");
  if (p.r == 0 || p.p == 0) return InvalidArgument("scrypt: r and p must be positive");
  if (length == 0) return InvalidArgument("scrypt: empty output");
  // OpenSSL needs 128*r*(N+2) bytes for V plus 128*r*p for B.
  const uint64_t per_r = uint64_t{128} * p.r;
  if (p.n > kScryptMaxMem / per_r || p.p > kScryptMaxMem / per_r) {
    return InvalidArgument("scrypt: parameters need more than 2 GiB of memory");
  }
  const uint64_t need = per_r * (p.n + 2) + per_r * p.p;
  if (need > kScryptMaxMem) return InvalidArgument("scrypt: parameters need more than 2 GiB");
  uint64_t n = p.n;
  uint32_t r = p.r;
  uint32_t par = p.p;
  uint64_t maxmem = need + (uint64_t{1} << 20);
  OSSL_PARAM params[] = {
      OctetParam(OSSL_KDF_PARAM_PASSWORD, AsBytes(passphrase)),
      OctetParam(OSSL_KDF_PARAM_SALT, salt),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &par),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end(),
  };
  return Derive(ScryptKdf(), params, length, "scrypt");
}

}  // namespace cfs::crypto
