// Helpers shared by the crypto tests (header only; included by *_test.cc).
// Thread safety: pure functions.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <string_view>

#include "common/encoding.h"
#include "common/secret_bytes.h"

namespace cfs::crypto::testing {

// Hex to bytes; aborts the test binary on malformed vectors (a typo in a
// known-answer vector must not pass silently).
inline Bytes Hex(std::string_view hex) {
  auto b = HexDecode(hex);
  if (!b) {
    ADD_FAILURE() << "malformed hex vector: " << hex;
    std::abort();
  }
  return *b;
}

inline SecretBytes Secret(ByteView b) { return SecretBytes(b.data(), b.size()); }
inline SecretBytes SecretHex(std::string_view hex) { return Secret(Hex(hex)); }

// Seed for randomized tests: CIPHERFS_SEED if set, else random; printed.
inline uint64_t TestSeed() {
  uint64_t seed = 0;
  if (const char* env = std::getenv("CIPHERFS_SEED")) {
    seed = std::strtoull(env, nullptr, 0);
  } else {
    seed = std::random_device{}();
    seed = (seed << 32) ^ std::random_device{}();
  }
  std::printf("[ seed     ] CIPHERFS_SEED=%llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

}  // namespace cfs::crypto::testing
