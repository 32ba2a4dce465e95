// HMAC-SHA256 and SHA-256, plus constant-time comparison.
// Thread safety: const methods and free functions may be called concurrently.
#pragma once

#include <array>

#include "common/encoding.h"
#include "common/result.h"
#include "common/secret_bytes.h"

namespace cfs::crypto {

constexpr size_t kMacSize = 32;
using Mac = std::array<uint8_t, kMacSize>;
using Digest = std::array<uint8_t, 32>;

class MacKey {
 public:
  explicit MacKey(const SecretBytes& key);  // any length >= 16
  ~MacKey();
  MacKey(const MacKey&) = delete;
  MacKey& operator=(const MacKey&) = delete;

  Mac Compute(ByteView data) const;
  // Constant-time check of a full or truncated (>= 16 bytes) MAC.
  bool Verify(ByteView data, ByteView mac) const;

 private:
  SecretBytes key_;
};

Digest Sha256(ByteView data);
// Constant-time equality of two byte strings of equal length (false if not).
bool ConstantTimeEqual(ByteView a, ByteView b);

}  // namespace cfs::crypto
