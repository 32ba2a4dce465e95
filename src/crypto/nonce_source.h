// Internal to crypto/: random 96-bit GCM nonces, drawn from OpenSSL's DRBG
// in 4 KiB batches per thread (one DRBG call per 341 nonces instead of one
// per block: a small RAND_bytes costs about as much as sealing 4 KiB).
// Fork-safe: a child process discards the batch it inherited, so parent and
// child never hand out the same nonce.
// Thread safety: may be called from any thread (per-thread state).
#pragma once

#include <cstdint>

namespace cfs::crypto::internal {

// Writes 12 fresh random bytes to `nonce`. Aborts if the DRBG fails.
void NextNonce(uint8_t* nonce);

}  // namespace cfs::crypto::internal
