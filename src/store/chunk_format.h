// Byte layouts of docs/format/chunks.md: inode files (version 1), chunk
// headers and tag slots (chunk format version 2), dirty-log headers and
// records (version 1), the derived block nonce, and the block codec
// (seal/open of one 4 KiB block under a tag slot).
// Thread safety: MetaAuth and BlockCodec are immutable after construction
// and may be used concurrently; the free functions are pure.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/encoding.h"
#include "common/result.h"
#include "crypto/aead.h"
#include "crypto/mac.h"
#include "store/volume_keys.h"

namespace cfs::store::format {

constexpr uint32_t kVersion = 1;       // inode files and the dirty log
constexpr uint32_t kChunkVersion = 2;  // chunk files (1: 48-byte slots, random nonces)
constexpr size_t kBlock = 4096;
constexpr size_t kMaxChunkBlocks = 2048;

// Inode file.
constexpr size_t kInodeSize = 80;
constexpr size_t kInodeMacOffset = 48;
struct InodeRecord {
  FileId id{};
  uint64_t size = 0;
};

// Chunk header.
constexpr size_t kHeaderWrite = 512;  // one sector, atomic
constexpr size_t kHeaderMapOffset = 48;
constexpr size_t kHeaderMapBytes = 256;
constexpr size_t kHeaderSaltOffset = 304;
constexpr size_t kHeaderMacOffset = 312;
// Tag slots: 128 bytes, a block's pair is 256 bytes, so no slot ever
// straddles a 512-byte sector of the tag table (a torn tag page never
// yields a half-old, half-new slot).
constexpr size_t kSlotSize = 128;
constexpr size_t kSector = 512;
constexpr uint32_t kSectors = kBlock / kSector;
constexpr size_t kFingerprintSize = 8;  // leading ciphertext bytes of each sector
constexpr size_t kSlotPairSize = 2 * kSlotSize;
constexpr size_t kTagTableOffset = 4096;
// Default: generation = seq >> 24.
constexpr uint32_t kDefaultGenerationShift = 24;

inline uint64_t DataOffset(uint32_t chunk_blocks) {
  return kTagTableOffset + ((uint64_t{chunk_blocks} * kSlotPairSize + kBlock - 1) / kBlock) * kBlock;
}
inline uint64_t SlotPairOffset(uint32_t b) { return kTagTableOffset + uint64_t{b} * kSlotPairSize; }

struct ChunkHeader {
  uint32_t chunk_blocks = 0;
  FileId id{};
  uint64_t chunk = 0;
  uint32_t generation = 0;
  std::array<uint8_t, kHeaderMapBytes> map{};
  // Random per chunk file incarnation, part of every block nonce; 0 = not
  // chosen yet (a new chunk: the first block write picks it).
  uint64_t salt = 0;
};
inline bool MapBit(const std::array<uint8_t, kHeaderMapBytes>& m, uint32_t b) {
  return (m[b / 8] >> (b % 8)) & 1;
}
inline void SetMapBit(std::array<uint8_t, kHeaderMapBytes>& m, uint32_t b, bool v) {
  if (v) m[b / 8] |= uint8_t(1u << (b % 8)); else m[b / 8] &= uint8_t(~(1u << (b % 8)));
}

struct Slot {
  crypto::Nonce nonce{};
  crypto::Tag tag{};
  uint32_t generation = 0;
  uint64_t seq = 0;
  // Per-block write counter (kept by a punch, so it never goes back); the
  // nonce holds its low 32 bits.
  uint64_t ver = 0;
  // The first kFingerprintSize bytes of each 512-byte sector of the data
  // as written (ciphertext: public), for torn-block recovery.
  std::array<uint8_t, kSectors * kFingerprintSize> fingerprints{};
  // Nonce and generation of the block's newest write made before the run
  // that wrote this slot (durable: a run starts with everything synced);
  // zeros if none. Writes of the same run have derivable nonces, so recovery
  // can name every write whose sectors may be on disk.
  crypto::Nonce base_nonce{};
  uint32_t base_generation = 0;
};
void EncodeSlot(const Slot& s, uint8_t* out128);
Slot DecodeSlot(const uint8_t* in128);  // reserved bytes ignored on read
// Fills slot->fingerprints from the written data (4096 bytes).
void SetFingerprints(const uint8_t* data, Slot* slot);
// True when sector j of `data` (4096 bytes) starts with slot's fingerprint.
bool SectorMatches(const Slot& slot, const uint8_t* data, uint32_t j);

// Nonce of a block write (encrypted volumes): 64 bits of
// ((run_salt ^ chunk_salt) mod 2^53) | block index << 53, then the low 32
// bits of the per-block write counter `ver`. Unique under one chunk key as long as
// (run_salt, chunk_salt, b, ver) never repeats (docs/format/chunks.md 2.4).
crypto::Nonce DeriveNonce(uint64_t run_salt, uint64_t chunk_salt, uint32_t b, uint64_t ver);
// A fresh random salt (never 0).
uint64_t NewSalt();

// Dirty log.
constexpr size_t kLogHeaderSize = 64;
constexpr size_t kLogRecordsOffset = 4096;
constexpr size_t kLogRecordSize = 64;
enum class LogState : uint32_t { kClean = 0, kOpen = 1 };
struct LogHeader {
  LogState state = LogState::kClean;
  uint64_t run_salt = 0;   // salt of the run that wrote the header (nonces)
  uint64_t prev_salt = 0;  // the previous run's, when it ended unclean
};
struct LogRecord {
  FileId id{};
  uint64_t first = 0;
  uint32_t count = 0;
};

// MAC (encrypted) or SHA-256 (unencrypted) over domain || bytes.
class MetaAuth {
 public:
  // `key` null: unencrypted volume.
  explicit MetaAuth(std::shared_ptr<const crypto::MacKey> key) : key_(std::move(key)) {}
  crypto::Mac Compute(std::string_view domain, ByteView bytes) const;
  bool Verify(std::string_view domain, ByteView bytes, ByteView mac) const;

 private:
  std::shared_ptr<const crypto::MacKey> key_;
};

void EncodeInode(const MetaAuth& auth, const InodeRecord& r, uint8_t* out80);
// kDataLoss on anything but a valid version-1 record.
Result<InodeRecord> DecodeInode(const MetaAuth& auth, ByteView in);

void EncodeHeader(const MetaAuth& auth, const ChunkHeader& h, uint8_t* out512);
// kDataLoss when the magic, version, MAC or reserved bytes are wrong.
Result<ChunkHeader> DecodeHeader(const MetaAuth& auth, ByteView in512);

void EncodeLogHeader(const LogHeader& h, uint8_t* out64);
// kDataLoss when it does not verify.
Result<LogHeader> DecodeLogHeader(ByteView in64);
void EncodeLogRecord(const MetaAuth& auth, const LogRecord& r, uint8_t* out64);
Result<LogRecord> DecodeLogRecord(const MetaAuth& auth, ByteView in64);

// Seals and opens blocks of one file. Encrypted: AES-256-GCM under
// VolumeKeys::ChunkKey; unencrypted: plaintext with a SHA-256 tag.
class BlockCodec {
 public:
  BlockCodec(const VolumeKeys* keys, const FileId& id) : keys_(keys), id_(id) {}
  bool encrypted() const { return keys_ != nullptr; }
  // The last chunk key used, kept by a caller looping over blocks (on its
  // stack, for one call: keys are never cached beyond VolumeKeys' own cache).
  struct KeyMemo {
    uint64_t chunk = ~uint64_t{0};
    uint32_t generation = 0;
    std::shared_ptr<const crypto::GcmKey> key;
  };
  // Encrypts `plain` (4096 bytes) of file block `n` in chunk `c` with the
  // slot's generation, seq, ver and (encrypted) nonce already set in `slot`
  // (DeriveNonce); fills the tag and the fingerprints.
  Status Seal(uint64_t c, uint64_t n, ByteView plain, uint8_t* out, Slot* slot, KeyMemo* memo = nullptr) const;
  // True and `out` filled when `slot` authenticates `data`; false otherwise
  // (out then unspecified). Errors only when the key is unavailable.
  Result<bool> Open(uint64_t c, uint64_t n, const Slot& slot, ByteView data, uint8_t* out,
                    KeyMemo* memo = nullptr) const;
  // Recovery only: the plaintext `data` decrypts to under `slot`, unchecked.
  Status RecoverPlaintext(uint64_t c, const Slot& slot, ByteView data, uint8_t* out) const;
  // Recovery only: the same under an explicit generation and nonce.
  Status RecoverPlaintext(uint64_t c, uint32_t generation, const crypto::Nonce& nonce, ByteView data,
                          uint8_t* out) const;

 private:
  Result<const crypto::GcmKey*> KeyFor(uint64_t c, uint32_t generation, KeyMemo* memo) const;
  std::array<uint8_t, 24> Aad(uint64_t n) const;
  crypto::Tag PlainTag(uint64_t n, uint64_t seq, ByteView data) const;
  const VolumeKeys* keys_;
  FileId id_;
};

}  // namespace cfs::store::format
