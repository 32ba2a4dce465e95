// Randomness from OpenSSL's DRBG (seeded by the OS). Aborts if the DRBG
// fails: continuing without randomness would reuse nonces.
// Thread safety: may be called from any thread.
#pragma once

#include <array>
#include <cstdint>

#include "common/secret_bytes.h"

namespace cfs::crypto {

void RandomBytes(uint8_t* out, size_t n);
SecretBytes RandomSecret(size_t n);  // from the private DRBG
template <size_t N>
std::array<uint8_t, N> RandomArray() {
  std::array<uint8_t, N> a;
  RandomBytes(a.data(), N);
  return a;
}

}  // namespace cfs::crypto
