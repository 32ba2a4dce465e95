// Block I/O within one chunk file: two tag slots per block, batched
// pread/pwrite of the slot range and of the data range
// (docs/format/chunks.md section 2.3).
#include <linux/falloc.h>

#include <cstring>

#include "common/log.h"
#include "store/data_store_impl.h"

namespace cfs::store {
namespace {

// Per-thread buffers, grown on demand and reused (no allocation per block).
uint8_t* ThreadBuffer(int which, size_t size) {
  thread_local std::vector<uint8_t> buffers[2];
  auto& b = buffers[which];
  if (b.size() < size) b.resize(size);
  return b.data();
}
constexpr int kSlotBuf = 0, kDataBuf = 1;
constexpr uint64_t kMaxSeq = uint64_t{1} << 62;

// PRead of exactly `n` bytes; bytes past the host end of file read as zeros.
Status ReadFull(Backing* b, int fd, uint8_t* buf, size_t n, uint64_t off) {
  CFS_ASSIGN_OR_RETURN(size_t got, b->PRead(fd, buf, n, off_t(off)));
  if (got < n) std::memset(buf + got, 0, n - got);
  return Status::Ok();
}

// Records blocks written (or punched) since the last good sync; cs.mu held.
void MarkBits(ChunkState& cs, uint32_t b0, uint32_t n, bool punched) {
  size_t words = cs.header.map.size() / 8;
  if (cs.wrote_bits.empty()) {
    cs.wrote_bits.assign(words, 0);
    cs.punched_bits.assign(words, 0);
  }
  for (uint32_t b = b0; b < b0 + n; ++b) {
    uint64_t bit = uint64_t{1} << (b % 64);
    (punched ? cs.punched_bits : cs.wrote_bits)[b / 64] |= bit;
    (punched ? cs.wrote_bits : cs.punched_bits)[b / 64] &= ~bit;
  }
}

}  // namespace

Status FileData::Impl::VerifyAfterFailedSync(ChunkState& cs, int fd) {
  std::vector<uint64_t> wrote, punched;
  uint64_t floor;
  {
    std::lock_guard<std::mutex> l(cs.mu);
    wrote = cs.wrote_bits;
    punched = cs.punched_bits;
    floor = cs.sync_floor;
    // The header page may have been dropped too: write it again from memory.
    CFS_RETURN_IF_ERROR(WriteHeader(cs, fd));
  }
  const uint32_t blocks = store->options.chunk_blocks;
  std::vector<uint8_t> table(size_t{blocks} * format::kSlotPairSize);
  CFS_RETURN_IF_ERROR(ReadFull(store->backing, fd, table.data(), table.size(), format::kTagTableOffset));
  for (uint32_t b = 0; b < blocks && !wrote.empty(); ++b) {
    const uint8_t* pair = table.data() + size_t{b} * format::kSlotPairSize;
    uint64_t newest = std::max(GetU64(pair + 32), GetU64(pair + format::kSlotSize + 32));
    bool lost = ((wrote[b / 64] >> (b % 64)) & 1) ? newest <= floor
                                                  : ((punched[b / 64] >> (b % 64)) & 1) && newest != 0;
    if (lost) {
      log::Error("file {} block {}: written data lost after a failed fsync", HexEncode(id), BlockNo(cs, b));
      return Status(Code::kDataLoss,
                    "data of block " + std::to_string(BlockNo(cs, b)) + " of file " + HexEncode(id) +
                        " was lost after a failed fsync",
                    EIO);
    }
  }
  return Status::Ok();
}

Status FileData::Impl::ReadBlocks(ChunkState& cs, uint32_t b0, uint32_t n, uint8_t* out) {
  CFS_RETURN_IF_ERROR(Load(cs));
  bool exists;
  {
    std::lock_guard<std::mutex> l(cs.mu);
    exists = cs.exists;
  }
  if (!exists) {
    std::memset(out, 0, size_t{n} * format::kBlock);
    return Status::Ok();
  }
  CFS_ASSIGN_OR_RETURN(auto fd, Fd(cs.index, false));
  Backing* b = store->backing;
  uint8_t* slots = ThreadBuffer(kSlotBuf, size_t{n} * format::kSlotPairSize);
  uint8_t* data = ThreadBuffer(kDataBuf, size_t{n} * format::kBlock);
  CFS_RETURN_IF_ERROR(ReadFull(b, fd->fd(), slots, size_t{n} * format::kSlotPairSize, format::SlotPairOffset(b0)));
  CFS_RETURN_IF_ERROR(ReadFull(b, fd->fd(), data, size_t{n} * format::kBlock,
                               store->data_offset + uint64_t{b0} * format::kBlock));
  format::BlockCodec::KeyMemo memo;
  for (uint32_t i = 0; i < n; ++i) {
    format::Slot s[2] = {format::DecodeSlot(slots + i * format::kSlotPairSize),
                         format::DecodeSlot(slots + i * format::kSlotPairSize + format::kSlotSize)};
    if (s[1].seq > s[0].seq) std::swap(s[0], s[1]);  // newer first
    uint64_t block_no = BlockNo(cs, b0 + i);
    ByteView cipher(data + size_t{i} * format::kBlock, format::kBlock);
    uint8_t* plain = out + size_t{i} * format::kBlock;
    bool ok = false;
    for (const auto& slot : s) {
      if (slot.seq == 0) continue;
      CFS_ASSIGN_OR_RETURN(ok, codec->Open(cs.index, block_no, slot, cipher, plain, &memo));
      if (ok) break;
    }
    if (ok) continue;
    bool written;
    {
      std::lock_guard<std::mutex> l(cs.mu);
      written = format::MapBit(cs.header.map, b0 + i);
    }
    std::memset(plain, 0, format::kBlock);
    if (!written) continue;
    store->counters.auth_failures.fetch_add(1, std::memory_order_relaxed);
    log::Error("authentication failed: file {} block {}", HexEncode(id), block_no);
    return Status(Code::kDataLoss,
                  "block " + std::to_string(block_no) + " of file " + HexEncode(id) + " fails authentication", EIO);
  }
  if (codec->encrypted()) store->counters.blocks_decrypted.fetch_add(n, std::memory_order_relaxed);
  return Status::Ok();
}

Status FileData::Impl::WriteBlocks(ChunkState& cs, uint32_t b0, uint32_t n, const uint8_t* plain) {
  CFS_ASSIGN_OR_RETURN(auto cow, PrepareWrite(cs, true));
  UnsyncedMark unsynced_mark{this, &cs};  // after every bump below
  CFS_ASSIGN_OR_RETURN(auto fd, Fd(cs.index, false));
  const bool encrypted = codec->encrypted();
  uint64_t chunk_salt = 0;
  bool allocates = false;  // may this write allocate host blocks (SyncChunk)?
  {
    std::lock_guard<std::mutex> l(cs.mu);
    CFS_RETURN_IF_ERROR(EnsureSeq(cs, fd->fd()));
    if (store->overwrites_in_place) {
      allocates = store->data_offset + uint64_t{b0 + n} * format::kBlock > cs.host_bytes_checked;
      for (uint32_t i = b0; i < b0 + n && !allocates; ++i) allocates = !format::MapBit(cs.header.map, i);
    }
    if (encrypted && cs.header.salt == 0) {
      // A new chunk: its salt is chosen before its first block is sealed
      // and written with the header.
      cs.header.salt = format::NewSalt();
      Status s = WriteHeader(cs, fd->fd());
      if (!s.ok()) {
        cs.header.salt = 0;
        NoteError(s);
        return s;
      }
    }
    chunk_salt = cs.header.salt;
  }
  const uint64_t run_salt = store->log->run_salt();
  Backing* b = store->backing;
  const size_t slot_bytes = size_t{n} * format::kSlotPairSize;
  uint8_t* slots = ThreadBuffer(kSlotBuf, slot_bytes);
  uint8_t* data = ThreadBuffer(kDataBuf, size_t{n} * format::kBlock);
  CFS_RETURN_IF_ERROR(ReadFull(b, fd->fd(), slots, slot_bytes, format::SlotPairOffset(b0)));
  const uint32_t shift = store->options.generation_shift;
  format::BlockCodec::KeyMemo memo;
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t* pair = slots + size_t{i} * format::kSlotPairSize;
    const format::Slot old[2] = {format::DecodeSlot(pair), format::DecodeSlot(pair + format::kSlotSize)};
    int target = old[1].seq < old[0].seq ? 1 : 0;
    format::Slot slot;
    // Both slots' counters (a punched pair keeps its counter in slot 0):
    // the page cache holds every earlier write of this block, so `ver`
    // only grows within a run (chunks.md 2.4).
    slot.ver = std::max(old[0].ver, old[1].ver) + 1;
    if (encrypted) slot.nonce = format::DeriveNonce(run_salt, chunk_salt, b0 + i, slot.ver);
    const format::Slot& newer = old[1 - target];
    if (encrypted && newer.seq != 0) {
      // The base: the newer slot if an earlier run wrote it, else its base.
      bool this_run = newer.nonce == format::DeriveNonce(run_salt, chunk_salt, b0 + i, newer.ver);
      slot.base_nonce = this_run ? newer.base_nonce : newer.nonce;
      slot.base_generation = this_run ? newer.base_generation : newer.generation;
    }
    slot.seq = cs.seq.fetch_add(1) + 1;
    if (slot.seq >= kMaxSeq) {  // seq is not authenticated: a forged huge one must not wrap to 0
      log::Error("chunk {} of file {}: sequence counter out of range (tampered tag table?)", cs.index, HexEncode(id));
      return Status(Code::kDataLoss, "chunk sequence counter out of range", EIO);
    }
    slot.generation = uint32_t(slot.seq >> shift);
    CFS_RETURN_IF_ERROR(codec->Seal(cs.index, BlockNo(cs, b0 + i),
                                    ByteView(plain + size_t{i} * format::kBlock, format::kBlock),
                                    data + size_t{i} * format::kBlock, &slot, &memo));
    format::EncodeSlot(slot, pair + target * format::kSlotSize);
  }
  Status s = b->PWrite(fd->fd(), slots, slot_bytes, format::SlotPairOffset(b0));
  if (s.ok()) {
    s = b->PWrite(fd->fd(), data, size_t{n} * format::kBlock, store->data_offset + uint64_t{b0} * format::kBlock);
  }
  if (allocates) cs.host_allocs.fetch_add(1);
  NoteWritten(cs);
  if (!s.ok()) {
    NoteError(s);
    return s;
  }
  if (codec->encrypted()) store->counters.blocks_encrypted.fetch_add(n, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> l(cs.mu);
    MarkBits(cs, b0, n, /*punched=*/false);
    uint32_t newly = 0;
    for (uint32_t i = b0; i < b0 + n; ++i) {
      if (!format::MapBit(cs.header.map, i)) {
        format::SetMapBit(cs.header.map, i, true);
        ++newly;
      }
    }
    if (newly > 0) {
      allocated_blocks.fetch_add(newly);
      s = WriteHeader(cs, fd->fd());
      if (cs.sync) cs.sync->written.fetch_add(1);
      if (!s.ok()) {
        NoteError(s);
        return s;
      }
    }
  }
  // A streaming writer (a large write ending at the chunk's end) is done
  // with this chunk: the device starts on it now, while the next chunks are
  // encrypted, instead of all at the fsync (docs/performance.md, session 4).
  const uint32_t cb = store->options.chunk_blocks;
  if (b0 + n == cb && n >= cb / 4) b->StartWriteback(fd->fd());
  return Status::Ok();
}

Status FileData::Impl::PunchBlocks(ChunkState& cs, uint32_t b0, uint32_t n) {
  CFS_RETURN_IF_ERROR(Load(cs));
  {
    std::lock_guard<std::mutex> l(cs.mu);
    if (!cs.exists) return Status::Ok();
  }
  CFS_ASSIGN_OR_RETURN(auto cow, PrepareWrite(cs, false));
  UnsyncedMark unsynced_mark{this, &cs};
  CFS_ASSIGN_OR_RETURN(auto fd, Fd(cs.index, false));
  Backing* b = store->backing;
  {
    std::lock_guard<std::mutex> l(cs.mu);
    MarkBits(cs, b0, n, /*punched=*/true);
    uint32_t cleared = 0;
    for (uint32_t i = b0; i < b0 + n; ++i) {
      if (format::MapBit(cs.header.map, i)) {
        format::SetMapBit(cs.header.map, i, false);
        ++cleared;
      }
    }
    if (cleared) {
      allocated_blocks.fetch_sub(cleared);
      Status s = WriteHeader(cs, fd->fd());
      if (!s.ok()) {
        NoteError(s);
        return s;
      }
    }
  }
  // Slots cleared (seq 0: never tried), the write counter kept in slot 0 so
  // that the block's next write does not reuse a nonce.
  const size_t slot_bytes = size_t{n} * format::kSlotPairSize;
  uint8_t* slots = ThreadBuffer(kSlotBuf, slot_bytes);
  Status s = ReadFull(b, fd->fd(), slots, slot_bytes, format::SlotPairOffset(b0));
  for (uint32_t i = 0; s.ok() && i < n; ++i) {
    uint8_t* pair = slots + size_t{i} * format::kSlotPairSize;
    format::Slot kept;
    kept.ver = std::max(format::DecodeSlot(pair).ver, format::DecodeSlot(pair + format::kSlotSize).ver);
    std::memset(pair, 0, format::kSlotPairSize);
    format::EncodeSlot(kept, pair);
  }
  if (s.ok()) s = b->PWrite(fd->fd(), slots, slot_bytes, format::SlotPairOffset(b0));
  if (s.ok()) {
    s = b->Fallocate(fd->fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     off_t(store->data_offset + uint64_t{b0} * format::kBlock), off_t(n) * format::kBlock);
    if (s.sys_errno() == EOPNOTSUPP) s = Status::Ok();  // the slots are cleared: reads are zeros anyway
  }
  cs.host_allocs.fetch_add(1);  // host blocks freed: the next sync writes the metadata
  NoteWritten(cs);
  if (!s.ok()) NoteError(s);
  return s;
}

}  // namespace cfs::store
