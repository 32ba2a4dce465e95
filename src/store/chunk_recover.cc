// Recovery after an unclean shutdown (docs/format/chunks.md section 4):
// torn blocks of logged chunks are re-tagged: from the old/new sector mix a
// slot's tag authenticates when there is one, else from their newest slot.
#include <cstring>
#include <set>

#include "common/log.h"
#include "store/chunk_cow.h"
#include "store/data_store_impl.h"

namespace cfs::store {
namespace {

struct FdGuard {
  Backing* b;
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) (void)b->Close(fd);
  }
};

constexpr size_t kSector = 512;
constexpr uint32_t kSectors = format::kBlock / kSector;

// A power cut during an in-place rewrite leaves each 512-byte sector of the
// block with its old or its new ciphertext. A sector the rewrite did not
// change was durable before and must come back intact (the database's
// acknowledged redo/WAL records share their block with the next commit's).
// Each sector decrypts correctly under the slot whose ciphertext it holds;
// the cipher is a stream cipher (GCM's CTR), so the block re-encrypted under
// slot k is candidate ^ data ^ dec[k]. Tries every mix and keeps the one a
// slot's tag authenticates: nothing unauthenticated is accepted here.
Result<bool> OpenSectorMix(const format::BlockCodec& codec, uint64_t c, uint64_t n, const format::Slot s[2],
                           ByteView data, uint8_t* plain) {
  if (!codec.encrypted() || s[0].seq == 0 || s[1].seq == 0) return false;
  std::vector<uint8_t> dec[2] = {std::vector<uint8_t>(format::kBlock), std::vector<uint8_t>(format::kBlock)};
  for (int k : {0, 1}) CFS_RETURN_IF_ERROR(codec.RecoverPlaintext(c, s[k], data, dec[k].data()));
  std::vector<uint8_t> candidate(format::kBlock), sealed(format::kBlock);
  for (uint32_t mask = 1; mask + 1 < (1u << kSectors); ++mask) {  // all-0 and all-1 failed already
    for (uint32_t j = 0; j < kSectors; ++j) {
      std::memcpy(candidate.data() + j * kSector, dec[(mask >> j) & 1].data() + j * kSector, kSector);
    }
    for (int k : {0, 1}) {
      for (size_t i = 0; i < format::kBlock; ++i) sealed[i] = candidate[i] ^ data[i] ^ dec[k][i];
      CFS_ASSIGN_OR_RETURN(bool ok, codec.Open(c, n, s[k], sealed, plain));
      if (ok) return true;
    }
  }
  return false;
}

}  // namespace

Result<uint64_t> DataStore::Impl::Recover() {
  if (!log->unclean()) return uint64_t{0};
  std::set<std::pair<FileId, uint64_t>> chunks;
  for (const auto& r : log->PreviousRecords()) {
    for (uint64_t c = r.first; c < r.first + r.count; ++c) chunks.insert({r.id, c});
  }
  uint64_t repaired = 0;
  Status first;
  for (const auto& [id, c] : chunks) {
    Status s = RecoverChunk(id, c, &repaired);
    if (!s.ok()) {
      log::Error("recovery of chunk {} of file {}: {}", c, HexEncode(id), s.ToString());
      if (first.ok()) first = s;
    }
  }
  if (!first.ok()) return first;
  log->MarkRecovered();
  if (repaired) log::Warn("recovery: {} torn blocks re-tagged", repaired);
  return repaired;
}

Status DataStore::Impl::RecoverChunk(const FileId& id, uint64_t c, uint64_t* repaired) {
  const std::string name = HexEncode(id), cname = std::to_string(c);
  FdGuard hh{backing}, dir{backing}, fd{backing};
  auto r = backing->OpenAt(objects_fd, name.substr(0, 2), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!r.ok()) return r.status().sys_errno() == ENOENT ? Status::Ok() : r.status();
  hh.fd = *r;
  r = backing->OpenAt(hh.fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!r.ok()) return r.status().sys_errno() == ENOENT ? Status::Ok() : r.status();
  dir.fd = *r;
  r = backing->OpenAt(dir.fd, cname, O_RDWR | O_CLOEXEC);
  if (!r.ok()) return r.status().sys_errno() == ENOENT ? Status::Ok() : r.status();
  fd.fd = *r;
  CFS_ASSIGN_OR_RETURN(struct stat st, backing->Fstat(fd.fd));
  if (st.st_size == 0) return Status::Ok();
  if (st.st_nlink > 1) {  // shared with a snapshot: never repair in place
    CFS_RETURN_IF_ERROR(BreakChunkCow(backing, dir.fd, cname, fd.fd));
    (void)backing->Close(fd.fd);
    fd.fd = -1;
    CFS_ASSIGN_OR_RETURN(fd.fd, backing->OpenAt(dir.fd, cname, O_RDWR | O_CLOEXEC));
    counters.cow_breaks.fetch_add(1, std::memory_order_relaxed);
  }
  const uint32_t blocks = options.chunk_blocks;
  std::vector<uint8_t> meta(data_offset, 0);
  CFS_ASSIGN_OR_RETURN(size_t got, backing->PRead(fd.fd, meta.data(), meta.size(), 0));
  (void)got;  // short: the rest reads as zeros
  auto h = format::DecodeHeader(*auth, ByteView(meta.data(), format::kHeaderWrite));
  bool rebuild = !h.ok() || h->chunk_blocks != blocks || h->id != id || h->chunk != c;
  format::ChunkHeader header;
  if (rebuild) {
    header.chunk_blocks = blocks;
    header.id = id;
    header.chunk = c;
    log::Warn("recovery: rebuilding the header of chunk {} of file {}", c, name);
  } else {
    header = *h;
  }
  uint64_t max_seq = 0;
  for (uint32_t i = 0; i < 2 * blocks; ++i) {
    max_seq = std::max(max_seq, GetU64(meta.data() + format::kTagTableOffset + i * format::kSlotSize + 32));
  }
  format::BlockCodec codec(keys, id);
  bool changed = rebuild;
  std::vector<uint8_t> data(format::kBlock), plain(format::kBlock);
  for (uint32_t b = 0; b < blocks; ++b) {
    uint8_t* pair = meta.data() + format::SlotPairOffset(b);
    format::Slot s[2] = {format::DecodeSlot(pair), format::DecodeSlot(pair + format::kSlotSize)};
    if (s[0].seq == 0 && s[1].seq == 0) {
      if (format::MapBit(header.map, b)) {
        format::SetMapBit(header.map, b, false);
        changed = true;
      }
      continue;
    }
    const uint64_t block_no = c * blocks + b;
    const uint64_t data_off = data_offset + uint64_t{b} * format::kBlock;
    CFS_ASSIGN_OR_RETURN(size_t n, backing->PRead(fd.fd, data.data(), data.size(), off_t(data_off)));
    std::fill(data.begin() + n, data.end(), 0);
    int newest = s[1].seq > s[0].seq ? 1 : 0;
    bool ok = false;
    for (int k : {newest, 1 - newest}) {
      if (s[k].seq == 0) continue;
      CFS_ASSIGN_OR_RETURN(ok, codec.Open(c, block_no, s[k], data, plain.data()));
      if (ok) break;
    }
    if (ok) {
      if (rebuild) format::SetMapBit(header.map, b, true);
      continue;
    }
    // A hole whose first write was interrupted (the map bit is set only
    // after slot and data): the hole is the old state, keep it.
    if (!rebuild && !format::MapBit(header.map, b)) continue;
    // Torn: the sector mix a slot authenticates, else whatever the data
    // decrypts to under the newest slot (a torn page).
    CFS_ASSIGN_OR_RETURN(bool whole, OpenSectorMix(codec, c, block_no, s, data, plain.data()));
    if (!whole) CFS_RETURN_IF_ERROR(codec.RecoverPlaintext(c, s[newest], data, plain.data()));
    format::Slot fresh;
    fresh.seq = ++max_seq;
    fresh.generation = uint32_t(fresh.seq >> options.generation_shift);
    CFS_RETURN_IF_ERROR(codec.Seal(c, block_no, plain, data.data(), &fresh));
    uint8_t enc[format::kSlotSize];
    format::EncodeSlot(fresh, enc);
    int target = 1 - newest;
    CFS_RETURN_IF_ERROR(backing->PWrite(fd.fd, enc, sizeof enc,
                                        off_t(format::SlotPairOffset(b) + target * format::kSlotSize)));
    CFS_RETURN_IF_ERROR(backing->PWrite(fd.fd, data.data(), data.size(), off_t(data_off)));
    format::SetMapBit(header.map, b, true);
    changed = true;
    ++*repaired;
    counters.torn_blocks_repaired.fetch_add(1, std::memory_order_relaxed);
    log::Warn("recovery: torn block re-tagged: file {} block {} ({})", name, block_no,
              whole ? "sectors authenticated" : "torn page");
  }
  if (changed) {
    header.generation = std::max(header.generation, uint32_t(max_seq >> options.generation_shift));
    uint8_t page[format::kHeaderWrite];
    format::EncodeHeader(*auth, header, page);
    CFS_RETURN_IF_ERROR(backing->PWrite(fd.fd, page, sizeof page, 0));
  }
  return backing->Fsync(fd.fd, true);
}

}  // namespace cfs::store
