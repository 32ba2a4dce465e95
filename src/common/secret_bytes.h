// SecretBytes: key material. Locked in memory (mlock, excluded from core
// dumps with MADV_DONTDUMP), wiped on release, never printed (no operator<<,
// no implicit conversion). Move-only; Clone() is the explicit copy.
// The rare raw access is spelled `UnsafeData()` so it is greppable.
// Storage: secrets of at most 256 bytes (keys) take a slot of the process-
// wide pool of locked pages (common/secret_pool.h: cheap, no syscall per
// key); larger ones map and lock pages of their own, unmapped on release.
// Both are wiped on release.
// Thread safety: const methods may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace cfs {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);  // zero-filled, locked
  SecretBytes(const uint8_t* data, size_t size);
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes Clone() const;
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Wipes and frees now (e.g. when a key becomes unusable).
  void Wipe();

  uint8_t* UnsafeData() { return data_; }
  const uint8_t* UnsafeData() const { return data_; }
  std::span<const uint8_t> UnsafeSpan() const { return {data_, size_}; }

  // Constant-time equality (for tests and key comparison).
  bool Equals(const SecretBytes& other) const;

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  // Bytes behind data_: a pool slot size (<= secret_pool::kMaxPooled) or
  // a whole number of pages mapped for this secret alone.
  size_t mapped_ = 0;
};

// Overwrites memory in a way the compiler cannot elide.
void SecureWipe(void* p, size_t n);

// Process hardening for anything holding keys: no core dumps, not ptrace-
// attachable by other users (PR_SET_DUMPABLE 0). Returns false on failure.
bool DisableCoreDumps();

}  // namespace cfs
