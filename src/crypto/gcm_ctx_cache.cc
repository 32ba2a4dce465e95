#include "crypto/gcm_ctx_cache.h"

#include <cstdlib>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "common/log.h"

namespace cfs::crypto::internal {
namespace {

// One thread's contexts. A slot with key_id 0 is empty (ids start at 1).
class ThreadCache {
 public:
  ThreadCache();
  ~ThreadCache();

  // Removes and returns the context of `key_id`, or nullptr.
  EVP_CIPHER_CTX* Take(uint64_t key_id);
  // Stores `ctx` for `key_id`, evicting the least recently used slot.
  void Put(uint64_t key_id, EVP_CIPHER_CTX* ctx);
  // Frees the contexts of `key_id`; returns how many.
  size_t Purge(uint64_t key_id);
  size_t Count(uint64_t key_id);  // key_id 0: all contexts

 private:
  struct Slot {
    uint64_t key_id = 0;
    uint64_t last_use = 0;
    EVP_CIPHER_CTX* ctx = nullptr;
  };
  std::mutex mu_;  // guards slots_ and tick_; taken after the registry's
  Slot slots_[kGcmCtxCacheSize];
  uint64_t tick_ = 0;
};

// Every live ThreadCache, so ~GcmKey can purge them all. Leaked on purpose:
// thread caches and keys may be destroyed during static destruction.
struct Registry {
  std::mutex mu;  // guards caches; taken before any ThreadCache::mu_
  std::unordered_set<ThreadCache*> caches;
};

Registry& GetRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

// Set when this thread's cache has been destroyed (thread exit), so a key
// used by a later thread-exit destructor gets an uncached context instead
// of touching a dead cache.
thread_local bool t_cache_destroyed = false;

// This thread's cache, or nullptr during thread exit.
ThreadCache* ThisThreadCache() {
  if (t_cache_destroyed) return nullptr;
  static thread_local ThreadCache cache;
  return &cache;
}

ThreadCache::ThreadCache() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.caches.insert(this);
}

ThreadCache::~ThreadCache() {
  t_cache_destroyed = true;
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.caches.erase(this);
  std::lock_guard<std::mutex> own(mu_);
  for (Slot& s : slots_) {
    EVP_CIPHER_CTX_free(s.ctx);  // cleanses the key schedule
    s = Slot{};
  }
}

EVP_CIPHER_CTX* ThreadCache::Take(uint64_t key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Slot& s : slots_) {
    if (s.key_id == key_id) {
      EVP_CIPHER_CTX* ctx = s.ctx;
      s = Slot{};
      return ctx;
    }
  }
  return nullptr;
}

void ThreadCache::Put(uint64_t key_id, EVP_CIPHER_CTX* ctx) {
  EVP_CIPHER_CTX* evicted = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Slot* victim = &slots_[0];
    for (Slot& s : slots_) {
      if (s.key_id == 0) {
        victim = &s;
        break;
      }
      if (s.last_use < victim->last_use) victim = &s;
    }
    evicted = victim->ctx;
    *victim = Slot{key_id, ++tick_, ctx};
  }
  EVP_CIPHER_CTX_free(evicted);
}

size_t ThreadCache::Purge(uint64_t key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (Slot& s : slots_) {
    if (s.key_id == key_id) {
      EVP_CIPHER_CTX_free(s.ctx);
      s = Slot{};
      ++n;
    }
  }
  return n;
}

size_t ThreadCache::Count(uint64_t key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const Slot& s : slots_) {
    if (s.key_id != 0 && (key_id == 0 || s.key_id == key_id)) ++n;
  }
  return n;
}

EVP_CIPHER_CTX* NewKeyedCtx(const SecretBytes& key) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return nullptr;
  if (EVP_CipherInit_ex(ctx, Aes256Gcm(), nullptr, key.UnsafeData(), nullptr, 1) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

}  // namespace

const EVP_CIPHER* Aes256Gcm() {
  static const EVP_CIPHER* const cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (c == nullptr) {
      log::Error("crypto: OpenSSL has no AES-256-GCM");
      std::abort();
    }
    return c;
  }();
  return cipher;
}

GcmCtxLease::GcmCtxLease(uint64_t key_id, const SecretBytes& key) : key_id_(key_id) {
  ThreadCache* cache = ThisThreadCache();
  ctx_ = cache != nullptr ? cache->Take(key_id) : nullptr;
  if (ctx_ == nullptr) ctx_ = NewKeyedCtx(key);
}

GcmCtxLease::~GcmCtxLease() {
  if (ctx_ == nullptr) return;
  ThreadCache* cache = ThisThreadCache();
  if (broken_ || cache == nullptr) {
    EVP_CIPHER_CTX_free(ctx_);
    return;
  }
  cache->Put(key_id_, ctx_);
}

void PurgeGcmCtx(uint64_t key_id) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (ThreadCache* c : r.caches) c->Purge(key_id);
}

size_t CachedGcmCtxCountForThisThread() {
  ThreadCache* cache = ThisThreadCache();
  return cache != nullptr ? cache->Count(0) : 0;
}

size_t CachedGcmCtxCountForKey(uint64_t key_id) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  size_t n = 0;
  for (ThreadCache* c : r.caches) n += c->Count(key_id);
  return n;
}

}  // namespace cfs::crypto::internal
