// Key derivation: HKDF-SHA256 (RFC 5869) and scrypt for passphrases.
// Thread safety: pure functions.
#pragma once

#include <string_view>

#include "common/encoding.h"
#include "common/result.h"
#include "common/secret_bytes.h"

namespace cfs::crypto {

// HKDF-SHA256 extract-and-expand; `length` up to 255*32 bytes.
Result<SecretBytes> HkdfSha256(const SecretBytes& ikm, ByteView salt, ByteView info, size_t length);

struct ScryptParams {
  uint64_t n = 1 << 17;  // CPU/memory cost
  uint32_t r = 8;
  uint32_t p = 1;
};
Result<SecretBytes> Scrypt(std::string_view passphrase, ByteView salt, const ScryptParams& params,
                           size_t length);

}  // namespace cfs::crypto
