// Torn-rewrite reconstruction (docs/format/chunks.md section 4.1): after a
// power cut, each 512-byte sector of a rewritten block holds the ciphertext
// of one write of that block, whose slot may be gone. Sectors are matched to
// writes by the slots' ciphertext fingerprints, or decrypted under the
// nonces recovery can name (the derived nonces of the crashed run's writes,
// the slots' base nonce from an earlier run) and checked against a slot's
// fingerprint.
// Thread safety: a pure function.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "store/chunk_format.h"

namespace cfs::store {

// Writes newer than both slots that recovery looks for, per block.
constexpr uint32_t kLostWriteWindow = 64;

struct TornBlockInput {
  const format::BlockCodec* codec = nullptr;  // encrypted
  uint64_t chunk = 0;                         // chunk index
  uint32_t block = 0;                         // block index in the chunk
  uint64_t file_block = 0;                    // block number in the file (AAD)
  const format::Slot* slots = nullptr;        // the block's two slots
  ByteView data;                              // the 4096 bytes on disk
  // Salts of the runs whose unsynced writes may be on disk (0 = unknown).
  std::vector<uint64_t> run_salts;
  uint64_t chunk_salt = 0;  // 0 = unknown (header rebuilt): no derived nonces
  // Key generations a lost write may have used.
  std::vector<uint32_t> generations;
};

struct TornBlockResult {
  uint32_t from_slots = 0;     // sectors a slot's fingerprint names
  uint32_t holes = 0;          // sectors no write reached (zeros on disk): zeros
  uint32_t verified = 0;       // decrypted under another write, checked against a fingerprint
  uint32_t unverified = 0;     // nothing vouches for them: torn there
  bool authenticated = false;  // a slot's tag authenticates the whole block
  uint64_t max_ver = 0;        // largest write counter among slots and writes found
};

// Fills `plain` (4096 bytes) with the block as a plain disk would show it:
// each sector that some fingerprint vouches for is exactly that write's
// plaintext (in particular every sector the unsynced writes did not change
// is its fsynced content); the others are decrypted under the most likely
// lost write (noise if wrong: a torn page).
Result<TornBlockResult> ReconstructTornBlock(const TornBlockInput& in, uint8_t* plain);

}  // namespace cfs::store
