// Internal to crypto/: a per-thread cache of EVP_CIPHER_CTX objects already
// keyed for AES-256-GCM, so a Seal/Open only sets the IV. Each thread holds
// at most kGcmCtxCacheSize contexts, evicted least recently used. Contexts
// are named by GcmKey::id() (a process-wide counter that never repeats), and
// a GcmKey's destructor purges its contexts from every thread's cache so no
// expanded key schedule outlives its key.
// Thread safety: all functions may be called from any thread. Lock order:
// the registry mutex, then one thread cache's mutex.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

#include "common/secret_bytes.h"

namespace cfs::crypto::internal {

constexpr size_t kGcmCtxCacheSize = 16;

// The fetched AES-256-GCM cipher (fetched once; aborts if unavailable).
const EVP_CIPHER* Aes256Gcm();

// This thread's context for one key, keyed from `key` on a cache miss, held
// exclusively until the lease ends; it then goes back to the thread's cache
// (or is freed if MarkBroken() was called, e.g. after an OpenSSL error).
class GcmCtxLease {
 public:
  GcmCtxLease(uint64_t key_id, const SecretBytes& key);
  ~GcmCtxLease();
  GcmCtxLease(const GcmCtxLease&) = delete;
  GcmCtxLease& operator=(const GcmCtxLease&) = delete;

  // nullptr if no context could be made (OpenSSL failure).
  EVP_CIPHER_CTX* get() const { return ctx_; }
  void MarkBroken() { broken_ = true; }

 private:
  uint64_t key_id_;
  EVP_CIPHER_CTX* ctx_;
  bool broken_ = false;
};

// Frees every thread's contexts of `key_id` (called by ~GcmKey).
void PurgeGcmCtx(uint64_t key_id);

// Number of contexts cached by the calling thread (tests).
size_t CachedGcmCtxCountForThisThread();
// Number of contexts of `key_id` cached by any thread (tests).
size_t CachedGcmCtxCountForKey(uint64_t key_id);

}  // namespace cfs::crypto::internal
