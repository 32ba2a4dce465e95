#include "store/chunk_format.h"

#include <cstring>

#include "crypto/random.h"

namespace cfs::store::format {
namespace {

constexpr char kInodeMagic[] = "CFSINOD1";
constexpr char kChunkMagic[] = "CFSCHNK1";  // the version field tells 1 from 2
constexpr char kLogMagic[] = "CFSDLOG1";

bool AllZero(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= p[i];
  return acc == 0;
}

}  // namespace

// Slot layout (chunks.md 2.2): nonce [0,12) tag [12,28) generation [28,32)
// seq [32,40) ver [40,48) fingerprints [48,112) base nonce [112,124)
// base generation [124,128).
constexpr size_t kSlotVerOffset = 40;
constexpr size_t kSlotFingerprintOffset = 48;
constexpr size_t kSlotBaseOffset = 112;
static_assert(kSlotFingerprintOffset + kSectors * kFingerprintSize == kSlotBaseOffset);
static_assert(kSlotBaseOffset + crypto::kNonceSize + 4 == kSlotSize);
static_assert(kSector % kSlotSize == 0, "a slot must never straddle a sector");

void EncodeSlot(const Slot& s, uint8_t* out) {
  std::memset(out, 0, kSlotSize);
  std::memcpy(out, s.nonce.data(), crypto::kNonceSize);
  std::memcpy(out + 12, s.tag.data(), crypto::kTagSize);
  PutU32(out + 28, s.generation);
  PutU64(out + 32, s.seq);
  PutU64(out + kSlotVerOffset, s.ver);
  std::memcpy(out + kSlotFingerprintOffset, s.fingerprints.data(), s.fingerprints.size());
  std::memcpy(out + kSlotBaseOffset, s.base_nonce.data(), crypto::kNonceSize);
  PutU32(out + kSlotBaseOffset + crypto::kNonceSize, s.base_generation);
}

Slot DecodeSlot(const uint8_t* in) {
  Slot s;
  std::memcpy(s.nonce.data(), in, crypto::kNonceSize);
  std::memcpy(s.tag.data(), in + 12, crypto::kTagSize);
  s.generation = GetU32(in + 28);
  s.seq = GetU64(in + 32);
  s.ver = GetU64(in + kSlotVerOffset);
  std::memcpy(s.fingerprints.data(), in + kSlotFingerprintOffset, s.fingerprints.size());
  std::memcpy(s.base_nonce.data(), in + kSlotBaseOffset, crypto::kNonceSize);
  s.base_generation = GetU32(in + kSlotBaseOffset + crypto::kNonceSize);
  return s;
}

void SetFingerprints(const uint8_t* data, Slot* slot) {
  for (uint32_t j = 0; j < kSectors; ++j) {
    std::memcpy(slot->fingerprints.data() + j * kFingerprintSize, data + j * kSector, kFingerprintSize);
  }
}

bool SectorMatches(const Slot& slot, const uint8_t* data, uint32_t j) {
  return std::memcmp(slot.fingerprints.data() + j * kFingerprintSize, data + j * kSector, kFingerprintSize) == 0;
}

crypto::Nonce DeriveNonce(uint64_t run_salt, uint64_t chunk_salt, uint32_t b, uint64_t ver) {
  static_assert(kMaxChunkBlocks <= (1u << 11), "the block index gets 11 bits of the nonce");
  constexpr uint64_t kSaltMask = (uint64_t{1} << 53) - 1;
  crypto::Nonce n;
  PutU64(n.data(), ((run_salt ^ chunk_salt) & kSaltMask) | (uint64_t{b} << 53));
  PutU32(n.data() + 8, uint32_t(ver));
  return n;
}

uint64_t NewSalt() {
  uint64_t salt = 0;
  while (salt == 0) {
    uint8_t b[8];
    crypto::RandomBytes(b, sizeof b);
    salt = GetU64(b);
  }
  return salt;
}

crypto::Mac MetaAuth::Compute(std::string_view domain, ByteView bytes) const {
  Bytes msg(domain.size() + bytes.size());
  std::memcpy(msg.data(), domain.data(), domain.size());
  if (!bytes.empty()) std::memcpy(msg.data() + domain.size(), bytes.data(), bytes.size());
  return key_ ? key_->Compute(msg) : crypto::Sha256(msg);
}

bool MetaAuth::Verify(std::string_view domain, ByteView bytes, ByteView mac) const {
  crypto::Mac want = Compute(domain, bytes);
  return crypto::ConstantTimeEqual(want, mac);
}

void EncodeInode(const MetaAuth& auth, const InodeRecord& r, uint8_t* out) {
  std::memset(out, 0, kInodeSize);
  std::memcpy(out, kInodeMagic, 8);
  PutU32(out + 8, kVersion);
  PutU32(out + 12, 0);
  std::memcpy(out + 16, r.id.data(), 16);
  PutU64(out + 32, r.size);
  crypto::Mac mac = auth.Compute("inode", ByteView(out, kInodeMacOffset));
  std::memcpy(out + kInodeMacOffset, mac.data(), mac.size());
}

Result<InodeRecord> DecodeInode(const MetaAuth& auth, ByteView in) {
  if (in.size() < kInodeSize) return DataLoss("inode file: short (" + std::to_string(in.size()) + " bytes)");
  const uint8_t* p = in.data();
  if (std::memcmp(p, kInodeMagic, 8) != 0) return DataLoss("inode file: bad magic");
  if (GetU32(p + 8) != kVersion) {
    return DataLoss("inode file: unknown format version " + std::to_string(GetU32(p + 8)));
  }
  if (!auth.Verify("inode", ByteView(p, kInodeMacOffset), ByteView(p + kInodeMacOffset, 32))) {
    return DataLoss("inode file: MAC does not verify");
  }
  if (GetU32(p + 12) != 0 || !AllZero(p + 40, 8)) return DataLoss("inode file: unknown flags");
  InodeRecord r;
  std::memcpy(r.id.data(), p + 16, 16);
  r.size = GetU64(p + 32);
  if (r.size > (uint64_t{1} << 62)) return DataLoss("inode file: size out of range");
  return r;
}

void EncodeHeader(const MetaAuth& auth, const ChunkHeader& h, uint8_t* out) {
  std::memset(out, 0, kHeaderWrite);
  std::memcpy(out, kChunkMagic, 8);
  PutU32(out + 8, kChunkVersion);
  PutU32(out + 12, h.chunk_blocks);
  std::memcpy(out + 16, h.id.data(), 16);
  PutU64(out + 32, h.chunk);
  PutU32(out + 40, h.generation);
  std::memcpy(out + kHeaderMapOffset, h.map.data(), kHeaderMapBytes);
  PutU64(out + kHeaderSaltOffset, h.salt);
  crypto::Mac mac = auth.Compute("chunk", ByteView(out, kHeaderMacOffset));
  std::memcpy(out + kHeaderMacOffset, mac.data(), mac.size());
}

Result<ChunkHeader> DecodeHeader(const MetaAuth& auth, ByteView in) {
  if (in.size() < kHeaderMacOffset + 32) return DataLoss("chunk header: short");
  const uint8_t* p = in.data();
  if (std::memcmp(p, kChunkMagic, 8) != 0) return DataLoss("chunk header: bad magic");
  if (GetU32(p + 8) != kChunkVersion) {
    uint32_t v = GetU32(p + 8);
    if (v == 1) {
      return DataLoss("chunk header: chunk format version 1 (written before torn-rewrite recovery); this build "
                      "reads only version 2: copy the data out with the older build into a new volume");
    }
    return DataLoss("chunk header: unknown chunk format version " + std::to_string(v));
  }
  if (!auth.Verify("chunk", ByteView(p, kHeaderMacOffset), ByteView(p + kHeaderMacOffset, 32))) {
    return DataLoss("chunk header: MAC does not verify");
  }
  ChunkHeader h;
  h.chunk_blocks = GetU32(p + 12);
  std::memcpy(h.id.data(), p + 16, 16);
  h.chunk = GetU64(p + 32);
  h.generation = GetU32(p + 40);
  std::memcpy(h.map.data(), p + kHeaderMapOffset, kHeaderMapBytes);
  h.salt = GetU64(p + kHeaderSaltOffset);
  if (h.chunk_blocks == 0 || h.chunk_blocks > kMaxChunkBlocks || !AllZero(p + 44, 4)) {
    return DataLoss("chunk header: bad fields");
  }
  return h;
}

void EncodeLogHeader(const LogHeader& h, uint8_t* out) {
  std::memset(out, 0, kLogHeaderSize);
  std::memcpy(out, kLogMagic, 8);
  PutU32(out + 8, kVersion);
  PutU32(out + 12, static_cast<uint32_t>(h.state));
  PutU64(out + 16, h.run_salt);
  PutU64(out + 24, h.prev_salt);
  MetaAuth checksum(nullptr);
  crypto::Mac sum = checksum.Compute("dirtylog", ByteView(out, 32));
  std::memcpy(out + 32, sum.data(), sum.size());
}

Result<LogHeader> DecodeLogHeader(ByteView in) {
  if (in.size() < kLogHeaderSize) return DataLoss("dirty log header: short");
  const uint8_t* p = in.data();
  MetaAuth checksum(nullptr);
  if (std::memcmp(p, kLogMagic, 8) != 0 || GetU32(p + 8) != kVersion ||
      !checksum.Verify("dirtylog", ByteView(p, 32), ByteView(p + 32, 32))) {
    return DataLoss("dirty log header does not verify");
  }
  uint32_t state = GetU32(p + 12);
  if (state > 1) return DataLoss("dirty log header: bad state");
  LogHeader h;
  h.state = static_cast<LogState>(state);
  h.run_salt = GetU64(p + 16);
  h.prev_salt = GetU64(p + 24);
  return h;
}

void EncodeLogRecord(const MetaAuth& auth, const LogRecord& r, uint8_t* out) {
  std::memset(out, 0, kLogRecordSize);
  std::memcpy(out, r.id.data(), 16);
  PutU64(out + 16, r.first);
  PutU32(out + 24, r.count);
  crypto::Mac mac = auth.Compute("dirtylog", ByteView(out, 32));
  std::memcpy(out + 32, mac.data(), mac.size());
}

Result<LogRecord> DecodeLogRecord(const MetaAuth& auth, ByteView in) {
  const uint8_t* p = in.data();
  if (in.size() < kLogRecordSize || !auth.Verify("dirtylog", ByteView(p, 32), ByteView(p + 32, 32))) {
    return DataLoss("dirty log record does not verify");
  }
  LogRecord r;
  std::memcpy(r.id.data(), p, 16);
  r.first = GetU64(p + 16);
  r.count = GetU32(p + 24);
  if (r.count == 0 || r.count > 65536 || !AllZero(p + 28, 4)) return DataLoss("dirty log record: bad count");
  return r;
}

std::array<uint8_t, 24> BlockCodec::Aad(uint64_t n) const {
  std::array<uint8_t, 24> aad;
  std::memcpy(aad.data(), id_.data(), 16);
  PutU64(aad.data() + 16, n);
  return aad;
}

Result<const crypto::GcmKey*> BlockCodec::KeyFor(uint64_t c, uint32_t generation, KeyMemo* memo) const {
  if (!memo->key || memo->chunk != c || memo->generation != generation) {
    CFS_ASSIGN_OR_RETURN(memo->key, keys_->ChunkKey(id_, c, generation));
    memo->chunk = c;
    memo->generation = generation;
  }
  return memo->key.get();
}

crypto::Tag BlockCodec::PlainTag(uint64_t n, uint64_t seq, ByteView data) const {
  thread_local Bytes msg;
  msg.resize(32 + data.size());
  std::memcpy(msg.data(), id_.data(), 16);
  PutU64(msg.data() + 16, n);
  PutU64(msg.data() + 24, seq);
  std::memcpy(msg.data() + 32, data.data(), data.size());
  crypto::Digest d = crypto::Sha256(msg);
  crypto::Tag t;
  std::memcpy(t.data(), d.data(), t.size());
  return t;
}

Status BlockCodec::Seal(uint64_t c, uint64_t n, ByteView plain, uint8_t* out, Slot* slot, KeyMemo* memo) const {
  if (!keys_) {
    if (out != plain.data()) std::memcpy(out, plain.data(), plain.size());
    slot->nonce.fill(0);
    slot->tag = PlainTag(n, slot->seq, plain);
    slot->fingerprints.fill(0);  // plaintext: recovery needs none (and must not store any)
    return Status::Ok();
  }
  KeyMemo local;
  CFS_ASSIGN_OR_RETURN(const crypto::GcmKey* key, KeyFor(c, slot->generation, memo ? memo : &local));
  auto aad = Aad(n);
  CFS_RETURN_IF_ERROR(key->SealWithDerivedNonce(slot->nonce, aad, plain, out, &slot->tag));
  SetFingerprints(out, slot);
  return Status::Ok();
}

Result<bool> BlockCodec::Open(uint64_t c, uint64_t n, const Slot& slot, ByteView data, uint8_t* out,
                              KeyMemo* memo) const {
  if (!keys_) {
    crypto::Tag t = PlainTag(n, slot.seq, data);
    if (!crypto::ConstantTimeEqual(t, slot.tag)) return false;
    if (out != data.data()) std::memcpy(out, data.data(), data.size());
    return true;
  }
  KeyMemo local;
  CFS_ASSIGN_OR_RETURN(const crypto::GcmKey* key, KeyFor(c, slot.generation, memo ? memo : &local));
  auto aad = Aad(n);
  return key->Open(aad, slot.nonce, slot.tag, data, out);
}

Status BlockCodec::RecoverPlaintext(uint64_t c, const Slot& slot, ByteView data, uint8_t* out) const {
  return RecoverPlaintext(c, slot.generation, slot.nonce, data, out);
}

Status BlockCodec::RecoverPlaintext(uint64_t c, uint32_t generation, const crypto::Nonce& nonce, ByteView data,
                                    uint8_t* out) const {
  if (!keys_) {
    if (out != data.data()) std::memcpy(out, data.data(), data.size());
    return Status::Ok();
  }
  CFS_ASSIGN_OR_RETURN(auto key, keys_->ChunkKey(id_, c, generation));
  key->DecryptUnauthenticatedForRecovery(nonce, data, out);
  return Status::Ok();
}

}  // namespace cfs::store::format
