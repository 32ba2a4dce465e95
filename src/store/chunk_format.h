// Byte layouts of format version 1 (docs/format/chunks.md): inode files,
// chunk headers, tag slots, dirty-log headers and records, and the block
// codec (seal/open of one 4 KiB block under a tag slot).
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

constexpr uint32_t kVersion = 1;
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
constexpr size_t kHeaderMacOffset = 304;
constexpr size_t kSlotSize = 48;
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
};
void EncodeSlot(const Slot& s, uint8_t* out48);
Slot DecodeSlot(const uint8_t* in48);  // reserved bytes ignored on read

// Dirty log.
constexpr size_t kLogHeaderSize = 64;
constexpr size_t kLogRecordsOffset = 4096;
constexpr size_t kLogRecordSize = 64;
enum class LogState : uint32_t { kClean = 0, kOpen = 1 };
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

void EncodeLogHeader(LogState state, uint8_t* out64);
// nullopt-like: kDataLoss when it does not verify.
Result<LogState> DecodeLogHeader(ByteView in64);
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
  // slot's generation and seq already set in `slot`; fills nonce and tag.
  Status Seal(uint64_t c, uint64_t n, ByteView plain, uint8_t* out, Slot* slot, KeyMemo* memo = nullptr) const;
  // True and `out` filled when `slot` authenticates `data`; false otherwise
  // (out then unspecified). Errors only when the key is unavailable.
  Result<bool> Open(uint64_t c, uint64_t n, const Slot& slot, ByteView data, uint8_t* out,
                    KeyMemo* memo = nullptr) const;
  // Recovery only: the plaintext `data` decrypts to under `slot`, unchecked.
  Status RecoverPlaintext(uint64_t c, const Slot& slot, ByteView data, uint8_t* out) const;

 private:
  Result<const crypto::GcmKey*> KeyFor(uint64_t c, uint32_t generation, KeyMemo* memo) const;
  std::array<uint8_t, 24> Aad(uint64_t n) const;
  crypto::Tag PlainTag(uint64_t n, uint64_t seq, ByteView data) const;
  const VolumeKeys* keys_;
  FileId id_;
};

}  // namespace cfs::store::format
