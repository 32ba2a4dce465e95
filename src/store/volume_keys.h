// VolumeKeys: every key of one encrypted volume, derived from its data key
// with HKDF-SHA256 (docs/format/keys.md):
//   chunk key (file id, chunk index, generation):
//       HKDF(data key, salt = file id, info = "cipherfs v1 chunk" || u64 chunk || u32 gen)
//   name key (64 bytes, AES-SIV):   HKDF(data key, salt = "", info = "cipherfs v1 names")
//   meta key (HMAC-SHA256 over inode files and chunk headers):
//                                   HKDF(data key, salt = "", info = "cipherfs v1 meta")
// Chunk keys are cached (bounded LRU) since deriving one costs an HKDF.
// Wipe() destroys every key now (key became unusable); later calls fail
// with kFailedPrecondition.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>

#include "common/result.h"
#include "common/secret_bytes.h"
#include "crypto/aead.h"
#include "crypto/mac.h"
#include "crypto/siv.h"

namespace cfs::store {

using FileId = std::array<uint8_t, 16>;

class VolumeKeys {
 public:
  // `data_key` must be 32 bytes (kInvalidArgument otherwise).
  static Result<std::unique_ptr<VolumeKeys>> Derive(const SecretBytes& data_key);
  // Same, with a chunk key cache of `chunk_key_cache_size` entries (default 4096).
  static Result<std::unique_ptr<VolumeKeys>> Derive(const SecretBytes& data_key,
                                                    size_t chunk_key_cache_size);
  ~VolumeKeys();

  Result<std::shared_ptr<const crypto::GcmKey>> ChunkKey(const FileId& file, uint64_t chunk,
                                                         uint32_t generation) const;
  Result<std::shared_ptr<const crypto::SivKey>> NameKey() const;
  Result<std::shared_ptr<const crypto::MacKey>> MetaKey() const;
  void Wipe();
  bool wiped() const;

 private:
  VolumeKeys() = default;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cfs::store
