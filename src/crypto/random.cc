#include "crypto/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "common/log.h"

namespace cfs::crypto {
namespace {

// RAND_bytes / RAND_priv_bytes take an int length.
template <typename Fn>
void FillOrAbort(Fn fill, uint8_t* out, size_t n, const char* what) {
  while (n > 0) {
    const int piece = static_cast<int>(std::min<size_t>(n, INT_MAX));
    if (fill(out, piece) != 1) {
      log::Error("crypto: {} failed; aborting rather than reusing randomness", what);
      std::abort();
    }
    out += piece;
    n -= static_cast<size_t>(piece);
  }
}

}  // namespace

void RandomBytes(uint8_t* out, size_t n) { FillOrAbort(RAND_bytes, out, n, "RAND_bytes"); }

SecretBytes RandomSecret(size_t n) {
  SecretBytes secret(n);
  FillOrAbort(RAND_priv_bytes, secret.UnsafeData(), n, "RAND_priv_bytes");
  return secret;
}

}  // namespace cfs::crypto
