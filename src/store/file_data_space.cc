// FileData: truncate, fallocate, SEEK_DATA/SEEK_HOLE and allocated size.
#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "common/log.h"
#include "store/data_store_impl.h"

namespace cfs::store {
namespace {

Status ReadOnlyError() { return Status(Code::kFailedPrecondition, "volume is read-only", EROFS); }

bool ParseChunkName(const std::string& name, uint64_t* c) {
  if (name.empty() || (name.size() > 1 && name[0] == '0')) return false;
  auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), *c);
  return ec == std::errc() && p == name.data() + name.size();
}

}  // namespace

Status FileData::Impl::ReadModifyWrite(uint64_t block, uint32_t from, ByteView data) {
  const uint32_t cb = store->options.chunk_blocks;
  auto cs = Chunk(block / cb);
  uint8_t buf[format::kBlock];
  CFS_RETURN_IF_ERROR(ReadBlocks(*cs, uint32_t(block % cb), 1, buf));
  if (std::memcmp(buf + from, data.data(), data.size()) == 0) return Status::Ok();
  std::memcpy(buf + from, data.data(), data.size());
  return WriteBlocks(*cs, uint32_t(block % cb), 1, buf);
}

// Zeros [offset, end): partial edge blocks rewritten, whole blocks punched.
// The caller holds the gate and an exclusive range lock over the blocks.
Status FileData::Impl::ZeroRange(uint64_t offset, uint64_t end) {
  static const uint8_t kZeros[format::kBlock] = {};
  const uint32_t cb = store->options.chunk_blocks;
  uint64_t first_full = (offset + format::kBlock - 1) / format::kBlock;
  uint64_t end_full = end / format::kBlock;
  if (first_full > end_full) {  // inside one block
    return ReadModifyWrite(offset / format::kBlock, uint32_t(offset % format::kBlock),
                           ByteView(kZeros, end - offset));
  }
  if (offset % format::kBlock) {
    uint32_t from = uint32_t(offset % format::kBlock);
    CFS_RETURN_IF_ERROR(ReadModifyWrite(offset / format::kBlock, from, ByteView(kZeros, format::kBlock - from)));
  }
  if (end % format::kBlock && end_full >= first_full) {
    CFS_RETURN_IF_ERROR(ReadModifyWrite(end_full, 0, ByteView(kZeros, end % format::kBlock)));
  }
  for (uint64_t blk = first_full; blk < end_full;) {
    uint64_t c = blk / cb;
    uint32_t b0 = uint32_t(blk % cb);
    uint32_t n = uint32_t(std::min<uint64_t>(cb - b0, end_full - blk));
    CFS_RETURN_IF_ERROR(PunchBlocks(*Chunk(c), b0, n));
    blk += n;
  }
  return Status::Ok();
}

Status FileData::Impl::DropBeyond(uint64_t new_size, uint64_t zero_end) {
  const uint64_t chunk_bytes = store->chunk_bytes();
  const uint64_t first_dead = (new_size + chunk_bytes - 1) / chunk_bytes;
  auto dir = OpenDir(false);
  if (dir.ok()) {
    CFS_ASSIGN_OR_RETURN(auto names, store->backing->ListDir(*dir));
    store->fds->EraseFrom(id, first_dead);
    bool removed = false;
    for (const auto& name : names) {
      uint64_t c;
      if (!ParseChunkName(name, &c) || c < first_dead) continue;
      store->PreserveForSnapshot(id, c);
      Status s = store->backing->UnlinkAt(*dir, name, 0);
      if (!s.ok() && s.sys_errno() != ENOENT) return s;
      removed = true;
    }
    // Again after the unlinks: a descriptor opened meanwhile (Seek,
    // AllocatedBytes) must not survive in the cache for a file now gone.
    store->fds->EraseFrom(id, first_dead);
    {
      std::lock_guard<std::mutex> l(mu);
      for (auto it = chunks.lower_bound(first_dead); it != chunks.end();) it = chunks.erase(it);
      dir_dirty |= removed;
    }
    allocated_blocks.store(LoadedAllocatedBlocks());
  } else if (dir.status().sys_errno() != ENOENT) {
    return dir.status();
  }
  zero_end = std::min(zero_end, first_dead * chunk_bytes);
  if (new_size < zero_end) CFS_RETURN_IF_ERROR(ZeroRange(new_size, zero_end));
  return Status::Ok();
}

Status FileData::Impl::PrepareExtend(uint64_t end) {
  if (eof_clean.load() || end <= size.load()) return Status::Ok();
  auto guard = ranges.Lock(size.load() / format::kBlock, UINT64_MAX, true);
  if (eof_clean.load()) return Status::Ok();
  CFS_RETURN_IF_ERROR(DropBeyond(size.load(), UINT64_MAX));
  eof_clean.store(true);
  return Status::Ok();
}

Status FileData::Truncate(uint64_t new_size) {
  Impl& f = *impl_;
  if (f.store->options.read_only) return ReadOnlyError();
  if (new_size > (uint64_t{1} << 62)) return Status(Code::kInvalidArgument, "size too large", EFBIG);
  WriteGate::Writer writer(&f.store->gate);
  const uint64_t first_block = std::min(new_size, f.size.load()) / format::kBlock;
  auto guard = f.ranges.Lock(first_block, UINT64_MAX, true);
  const uint64_t old_size = f.size.load();
  if (new_size == old_size) return Status::Ok();
  const bool was_clean = f.eof_clean.load();
  if (new_size < old_size || !was_clean) {
    // Shrink: drop everything past the new size (only up to the old size
    // when that was clean). Grow over unclean ground: clean it first.
    uint64_t from = std::min(new_size, old_size);
    uint64_t old_end = (old_size + format::kBlock - 1) / format::kBlock * format::kBlock;
    CFS_RETURN_IF_ERROR(f.DropBeyond(from, was_clean ? old_end : UINT64_MAX));
    f.eof_clean.store(true);
  }
  std::lock_guard<std::mutex> l(f.mu);
  Status s = f.PersistSize(new_size);
  if (!s.ok()) f.eof_clean.store(false);
  return s;
}

uint64_t FileData::Impl::LoadedAllocatedBlocks() {
  std::vector<std::shared_ptr<ChunkState>> states;
  {
    std::lock_guard<std::mutex> l(mu);
    for (auto& [c, cs] : chunks) states.push_back(cs);
  }
  uint64_t total = 0;
  for (auto& cs : states) {
    std::lock_guard<std::mutex> l(cs->mu);
    if (!cs->exists) continue;
    for (uint8_t byte : cs->header.map) total += uint64_t(__builtin_popcount(byte));
  }
  return total;
}

Status FileData::Fallocate(int mode, uint64_t offset, uint64_t length) {
  Impl& f = *impl_;
  if (f.store->options.read_only) return ReadOnlyError();
  if (length == 0 || offset + length < offset) return Status(Code::kInvalidArgument, "bad range", EINVAL);
  const uint64_t end = offset + length;
  if (end > (uint64_t{1} << 62)) return Status(Code::kInvalidArgument, "range too large", EFBIG);
  const bool keep = mode & FALLOC_FL_KEEP_SIZE;
  const int kind = mode & ~FALLOC_FL_KEEP_SIZE;
  if (kind != 0 && kind != FALLOC_FL_PUNCH_HOLE && kind != FALLOC_FL_ZERO_RANGE) {
    return Status(Code::kUnimplemented, "fallocate mode " + std::to_string(mode), EOPNOTSUPP);
  }
  if (kind == FALLOC_FL_PUNCH_HOLE && !keep) return Status(Code::kInvalidArgument, "punch needs KEEP_SIZE", EINVAL);
  WriteGate::Writer writer(&f.store->gate);
  if (!keep) CFS_RETURN_IF_ERROR(f.PrepareExtend(end));
  auto guard = f.ranges.Lock(offset / format::kBlock, (end - 1) / format::kBlock, true);
  const uint32_t cb = f.store->options.chunk_blocks;
  if (kind == 0) {
    for (uint64_t blk = offset / format::kBlock; blk <= (end - 1) / format::kBlock;) {
      uint64_t c = blk / cb;
      uint32_t b0 = uint32_t(blk % cb);
      uint32_t n = uint32_t(std::min<uint64_t>(cb - b0, (end - 1) / format::kBlock + 1 - blk));
      auto cs = f.Chunk(c);
      CFS_ASSIGN_OR_RETURN(auto cow, f.PrepareWrite(*cs, true));
      CFS_ASSIGN_OR_RETURN(auto fd, f.Fd(c, false));
      // The data range and the slots of the blocks: a later write cannot
      // then fail with ENOSPC halfway through a block.
      Backing* b = f.store->backing;
      Status s = b->Fallocate(fd->fd(), FALLOC_FL_KEEP_SIZE, off_t(format::SlotPairOffset(b0)),
                              off_t(n) * format::kSlotPairSize);
      if (s.ok()) {
        s = b->Fallocate(fd->fd(), FALLOC_FL_KEEP_SIZE, off_t(f.store->data_offset + uint64_t{b0} * format::kBlock),
                         off_t(n) * format::kBlock);
      }
      cs->host_allocs.fetch_add(1);  // unwritten extents: a later write converts them
      if (!s.ok() && s.sys_errno() != EOPNOTSUPP) return s;
      blk += n;
    }
  } else {
    uint64_t zero_end = std::min(end, f.size.load());
    if (offset < zero_end) CFS_RETURN_IF_ERROR(f.ZeroRange(offset, zero_end));
  }
  if (!keep && end > f.size.load()) {
    std::lock_guard<std::mutex> l(f.mu);
    if (end > f.size.load()) {
      Status s = f.PersistSize(end);
      if (!s.ok()) f.eof_clean.store(false);
      return s;
    }
  }
  return Status::Ok();
}

Result<uint64_t> FileData::Seek(uint64_t offset, int whence) {
  Impl& f = *impl_;
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return Status(Code::kInvalidArgument, "whence", EINVAL);
  const uint64_t size = f.size.load();
  if (offset >= size) return Status(Code::kInvalidArgument, "seek past end of file", ENXIO);
  const bool want_data = whence == SEEK_DATA;
  const uint32_t cb = f.store->options.chunk_blocks;
  const uint64_t last_block = (size - 1) / format::kBlock;
  for (uint64_t blk = offset / format::kBlock; blk <= last_block;) {
    auto cs = f.Chunk(blk / cb);
    Status s = f.Load(*cs);
    std::lock_guard<std::mutex> l(cs->mu);
    bool exists = s.ok() && cs->exists;
    for (uint32_t b = uint32_t(blk % cb); b < cb && blk <= last_block; ++b, ++blk) {
      bool data = !s.ok() || (exists && format::MapBit(cs->header.map, b));  // unreadable counts as data
      if (data == want_data) return std::max(offset, blk * format::kBlock);
    }
  }
  if (want_data) return Status(Code::kInvalidArgument, "no data past offset", ENXIO);
  return size;
}

uint64_t FileData::AllocatedBytes() const {
  Impl& f = *impl_;
  bool all;
  {
    std::lock_guard<std::mutex> l(f.mu);
    all = f.all_chunks_loaded;
  }
  if (!all) {
    auto dir = f.OpenDir(false);
    auto names = dir.ok() ? f.store->backing->ListDir(*dir) : Result<std::vector<std::string>>(dir.status());
    if (names.ok()) {
      for (const auto& name : *names) {
        uint64_t c;
        if (ParseChunkName(name, &c)) (void)f.Load(*f.Chunk(c));
      }
    }
    std::lock_guard<std::mutex> l(f.mu);
    f.all_chunks_loaded = names.ok() || names.status().sys_errno() == ENOENT;
  }
  return f.allocated_blocks.load() * format::kBlock;
}

}  // namespace cfs::store
