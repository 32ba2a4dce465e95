// Recovery after an unclean shutdown (docs/format/chunks.md section 4):
// torn blocks of logged chunks are rebuilt sector by sector, each sector as
// the write whose ciphertext it holds (chunk_recover_sectors.h), and
// re-tagged.
#include <algorithm>
#include <cstring>
#include <set>

#include "common/log.h"
#include "store/chunk_cow.h"
#include "store/chunk_recover_sectors.h"
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

// Key generations a lost write of a block may have used: its newest slot's,
// then the chunk's newest and the next (a rollover), most likely first.
std::vector<uint32_t> LostWriteGenerations(const format::Slot s[2], int newest, uint64_t max_seq, uint32_t shift) {
  std::vector<uint32_t> gens;
  for (uint32_t g : {s[newest].generation, uint32_t(max_seq >> shift), uint32_t((max_seq >> shift) + 1)}) {
    if (std::find(gens.begin(), gens.end(), g) == gens.end()) gens.push_back(g);
  }
  return gens;
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
  if (!h.ok() && GetU32(meta.data() + 8) == 1) return h.status();  // format 1: refuse, never rebuild
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
  // Lost writes used the previous run's salt and this chunk's salt; the
  // re-tags below use this run's salt (never used before), and a new chunk
  // salt where the old one is unknown.
  const uint64_t old_chunk_salt = header.salt;
  if (header.salt == 0) header.salt = format::NewSalt();
  const auto prev = log->previous_run_salts();
  const std::vector<uint64_t> run_salts(prev.begin(), prev.end());
  uint64_t max_seq = 0;
  for (uint32_t i = 0; i < 2 * blocks; ++i) {
    max_seq = std::max(max_seq, GetU64(meta.data() + format::kTagTableOffset + i * format::kSlotSize + 32));
  }
  const uint64_t disk_max_seq = max_seq;
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
    // Torn: each sector as the write whose ciphertext it holds.
    TornBlockResult torn;
    if (codec.encrypted()) {
      TornBlockInput in{&codec, c, b, block_no, s, data, run_salts, old_chunk_salt,
                        LostWriteGenerations(s, newest, disk_max_seq, options.generation_shift)};
      CFS_ASSIGN_OR_RETURN(torn, ReconstructTornBlock(in, plain.data()));
    } else {
      plain = data;  // plaintext: each sector is already old or new
      torn.max_ver = std::max(s[0].ver, s[1].ver);
    }
    format::Slot fresh;
    fresh.seq = ++max_seq;
    fresh.generation = uint32_t(fresh.seq >> options.generation_shift);
    fresh.ver = torn.max_ver + 1;
    if (codec.encrypted()) fresh.nonce = format::DeriveNonce(log->run_salt(), header.salt, b, fresh.ver);
    fresh.base_nonce = s[newest].nonce;  // the previous run's newest write
    fresh.base_generation = s[newest].generation;
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
    log::Warn("recovery: torn block re-tagged: file {} block {} (sectors: {} by slot, {} recovered, {} unwritten, "
              "{} torn{})",
              name, block_no, torn.from_slots, torn.verified, torn.holes, torn.unverified,
              torn.authenticated ? "; a slot's tag authenticates the block" : "");
  }
  if (changed || header.salt != old_chunk_salt) {
    header.generation = std::max(header.generation, uint32_t(max_seq >> options.generation_shift));
    uint8_t page[format::kHeaderWrite];
    format::EncodeHeader(*auth, header, page);
    CFS_RETURN_IF_ERROR(backing->PWrite(fd.fd, page, sizeof page, 0));
  }
  return backing->Fsync(fd.fd, true);
}

}  // namespace cfs::store
