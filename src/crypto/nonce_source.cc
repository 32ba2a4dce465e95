#include "crypto/nonce_source.h"

#include <pthread.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "crypto/aead.h"
#include "crypto/random.h"

namespace cfs::crypto::internal {
namespace {

constexpr size_t kBatchNonces = 341;
constexpr size_t kBatchBytes = kBatchNonces * kNonceSize;

// Incremented in every child after fork(); a batch filled under another
// epoch is stale (the parent may hand out the same bytes).
std::atomic<uint64_t> g_fork_epoch{0};
std::once_flag g_atfork_once;

void OnForkChild() { g_fork_epoch.fetch_add(1, std::memory_order_relaxed); }

struct Batch {
  uint8_t bytes[kBatchBytes];
  size_t next = kBatchBytes;  // offset of the next unused nonce
  uint64_t epoch = 0;
};

}  // namespace

void NextNonce(uint8_t* nonce) {
  std::call_once(g_atfork_once, [] { pthread_atfork(nullptr, nullptr, OnForkChild); });
  static thread_local Batch batch;
  const uint64_t epoch = g_fork_epoch.load(std::memory_order_relaxed);
  if (batch.next == kBatchBytes || batch.epoch != epoch) {
    RandomBytes(batch.bytes, kBatchBytes);
    batch.next = 0;
    batch.epoch = epoch;
  }
  std::memcpy(nonce, batch.bytes + batch.next, kNonceSize);
  std::memset(batch.bytes + batch.next, 0, kNonceSize);  // never handed out twice
  batch.next += kNonceSize;
}

}  // namespace cfs::crypto::internal
