// FileData::Impl: per-chunk state, chunk files and their descriptors,
// and what must happen before a chunk is modified (log, copy-on-write).
#include <bit>
#include <algorithm>
#include <string>
#include <vector>

#include "common/log.h"
#include "store/chunk_cow.h"
#include "store/data_store_impl.h"

namespace cfs::store {
namespace {

uint32_t PopCount(const format::ChunkHeader& h) {
  uint32_t n = 0;
  for (uint8_t byte : h.map) n += uint32_t(std::popcount(byte));
  return n;
}

// Raises the chunk's seq counter to the largest seq in a run of its tag
// slots (chunks.md 2.3: at byte 32 of a slot); a short run holds every
// slot there is. Marks the counter known.
void RaiseSeqFromSlots(ChunkState& cs, ByteView table) {
  uint64_t max_seq = 0;
  for (size_t off = 0; off + format::kSlotSize <= table.size(); off += format::kSlotSize) {
    max_seq = std::max(max_seq, GetU64(table.data() + off + 32));
  }
  uint64_t cur = cs.seq.load();
  while (cur < max_seq && !cs.seq.compare_exchange_weak(cur, max_seq)) {
  }
  cs.seq_known = true;
}

Status ReadOnlyError() { return Status(Code::kFailedPrecondition, "volume is read-only", EROFS); }

}  // namespace

std::shared_ptr<ChunkState> FileData::Impl::Chunk(uint64_t c) {
  std::lock_guard<std::mutex> l(mu);
  auto& slot = chunks[c];
  if (!slot) slot = std::make_shared<ChunkState>(c);
  return slot;
}

Result<int> FileData::Impl::OpenDir(bool create) {
  std::lock_guard<std::mutex> l(mu);
  if (dir_fd >= 0) return dir_fd;
  const bool ro = store->options.read_only;
  // Only this object makes its file's directory: absent once, absent until
  // a write creates it. Not on a read-only mount (a replica's shipper may
  // add directories and remove objects/<hh> beside it).
  if (!create && dir_absent) return Status(Code::kNotFound, "no chunk directory", ENOENT);
  std::string name = HexEncode(id);
  Backing* b = store->backing;
  bool made_hh = false;
  auto hh = ro ? b->OpenAt(store->objects_fd, name.substr(0, 2), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
               : store->HashDirFd(id, create, &made_hh);
  if (!hh.ok()) {
    dir_absent = hh.status().sys_errno() == ENOENT && !ro;
    return hh.status();
  }
  if (made_hh) parent_dirty = true;
  Status made;
  if (create) {
    made = b->MkdirAt(*hh, name, 0700);
    if (made.ok()) parent_dirty = true;
    else if (made.sys_errno() == EEXIST) made = Status::Ok();
  }
  auto fd = made.ok() ? b->OpenAt(*hh, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : Result<int>(made);
  if (ro) (void)b->Close(*hh);
  if (!fd.ok()) {
    dir_absent = fd.status().sys_errno() == ENOENT && !ro;
    return fd.status();
  }
  dir_absent = false;
  dir_fd = *fd;
  return dir_fd;
}

Result<std::shared_ptr<ChunkFd>> FileData::Impl::Fd(uint64_t c, bool create) {
  CFS_ASSIGN_OR_RETURN(int dir, OpenDir(create));
  Backing* b = store->backing;
  bool ro = store->options.read_only;
  return store->fds->Get(id, c, [&]() -> Result<int> {
    int flags = (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | (create ? O_CREAT : 0);
    return b->OpenAt(dir, std::to_string(c), flags, 0600);
  });
}

Status FileData::Impl::Load(ChunkState& cs) {
  std::lock_guard<std::mutex> l(cs.mu);
  if (cs.loaded) return cs.error;
  auto fd = Fd(cs.index, false);
  if (!fd.ok()) {
    if (fd.status().sys_errno() != ENOENT) return fd.status();
    cs.loaded = true;  // no chunk file: all holes
    return Status::Ok();
  }
  // One read of the header page and the whole tag table: the table then
  // stays in the host page cache, so a cold random read of a block costs
  // one disk read (its data), not two (its slot pair, then its data).
  thread_local std::vector<uint8_t> head;
  head.resize(store->data_offset);
  CFS_ASSIGN_OR_RETURN(size_t n, store->backing->PRead((*fd)->fd(), head.data(), head.size(), 0));
  cs.loaded = true;
  if (n == 0) return Status::Ok();  // created, header never written: all holes
  auto h = format::DecodeHeader(*store->auth, ByteView(head.data(), std::min(n, format::kHeaderWrite)));
  if (h.ok() && (h->chunk_blocks != store->options.chunk_blocks || h->id != id || h->chunk != cs.index)) {
    h = DataLoss("chunk header names another chunk");
  }
  if (!h.ok()) {
    store->counters.auth_failures.fetch_add(1, std::memory_order_relaxed);
    log::Error("chunk {} of file {}: {}", cs.index, HexEncode(id), h.status().message());
    cs.error = Status(Code::kDataLoss, "chunk " + std::to_string(cs.index) + " of file " + HexEncode(id) +
                                           ": " + h.status().message(), EIO);
    return cs.error;
  }
  cs.header = *h;
  cs.exists = true;
  allocated_blocks.fetch_add(PopCount(cs.header));
  // The tag table is in `head` already: the chunk's seq counter from it
  // spares the first write of this chunk a second read of the table
  // (EnsureSeq).
  size_t table = std::min(n > format::kTagTableOffset ? n - format::kTagTableOffset : 0,
                          size_t{store->options.chunk_blocks} * format::kSlotPairSize);
  RaiseSeqFromSlots(cs, ByteView(head.data() + format::kTagTableOffset, table));
  return Status::Ok();
}

Status FileData::Impl::EnsureSeq(ChunkState& cs, int fd) {
  if (cs.seq_known || !cs.exists) {
    cs.seq_known = true;
    return Status::Ok();
  }
  uint32_t blocks = store->options.chunk_blocks;
  std::vector<uint8_t> table(size_t{blocks} * format::kSlotPairSize);
  CFS_ASSIGN_OR_RETURN(size_t n, store->backing->PRead(fd, table.data(), table.size(), format::kTagTableOffset));
  RaiseSeqFromSlots(cs, ByteView(table.data(), n));
  return Status::Ok();
}

Status FileData::Impl::WriteHeader(ChunkState& cs, int fd) {
  uint32_t gen = uint32_t(cs.seq.load() >> store->options.generation_shift);
  cs.header.generation = std::max(cs.header.generation, gen);
  uint8_t page[format::kHeaderWrite];
  format::EncodeHeader(*store->auth, cs.header, page);
  return store->backing->PWrite(fd, page, sizeof page, 0);
}

Status FileData::Impl::Create(ChunkState& cs) {
  CFS_ASSIGN_OR_RETURN(auto fd, Fd(cs.index, true));
  cs.header = format::ChunkHeader{};
  cs.header.chunk_blocks = store->options.chunk_blocks;
  cs.header.id = id;
  cs.header.chunk = cs.index;
  // The salt goes out with this first header (WriteBlocks would otherwise
  // write the header once more just to add it).
  if (codec->encrypted()) cs.header.salt = format::NewSalt();
  CFS_RETURN_IF_ERROR(WriteHeader(cs, fd->fd()));
  cs.host_allocs.fetch_add(1);
  cs.exists = true;
  cs.seq_known = true;
  std::lock_guard<std::mutex> l(mu);
  dir_dirty = true;
  return Status::Ok();
}

Status FileData::Impl::BreakCow(ChunkState& cs) {
  {
    std::lock_guard<std::mutex> l(cs.mu);
    if (!cs.exists) return Status::Ok();
  }
  CFS_ASSIGN_OR_RETURN(auto fd, Fd(cs.index, false));
  CFS_ASSIGN_OR_RETURN(struct stat st, store->backing->Fstat(fd->fd()));
  if (st.st_nlink <= 1) return Status::Ok();
  CFS_ASSIGN_OR_RETURN(int dir, OpenDir(false));
  // The rename is made durable by the file's next sync (dir_dirty), as a
  // new chunk file's entry is: a flush less on the write path per chunk a
  // snapshot shares (each shipment of a replica breaks every chunk written).
  Status s = BreakChunkCow(store->backing, dir, std::to_string(cs.index), fd->fd(), /*sync_dir=*/false);
  // Even on failure: the rename may have happened, and the cached
  // descriptor must never be the snapshot's file.
  store->fds->Erase(id, cs.index);
  cs.host_allocs.fetch_add(1);  // a new file: its blocks are new allocations
  {
    std::lock_guard<std::mutex> l(mu);
    dir_dirty = true;
  }
  CFS_RETURN_IF_ERROR(s);
  store->counters.cow_breaks.fetch_add(1, std::memory_order_relaxed);
  log::Debug("copy-on-write break: file {} chunk {}", HexEncode(id), cs.index);
  return Status::Ok();
}

Result<std::shared_lock<std::shared_mutex>> FileData::Impl::PrepareWrite(ChunkState& cs, bool create) {
  if (store->options.read_only) return ReadOnlyError();
  CFS_RETURN_IF_ERROR(Load(cs));
  std::shared_ptr<ChunkSyncState> sync;
  {
    std::lock_guard<std::mutex> l(cs.mu);
    sync = cs.sync;
  }
  if (!sync || !sync->live.load()) {
    CFS_ASSIGN_OR_RETURN(sync, store->log->Ensure(id, cs.index));
    std::lock_guard<std::mutex> l(cs.mu);
    cs.sync = sync;
  }
  uint64_t epoch = store->cow_epoch.load();
  if (cs.cow_checked_epoch.load() != epoch) {
    std::unique_lock<std::shared_mutex> cow(cs.cow_mu);
    if (cs.cow_checked_epoch.load() != epoch) {
      store->PreserveForSnapshot(id, cs.index);  // a snapshot still linking its chunks gets this one first
      CFS_RETURN_IF_ERROR(BreakCow(cs));
      cs.cow_checked_epoch.store(epoch);
    }
  }
  std::shared_lock<std::shared_mutex> cow(cs.cow_mu);
  std::lock_guard<std::mutex> l(cs.mu);
  if (create && !cs.exists) {
    CFS_RETURN_IF_ERROR(Create(cs));
    cs.sync->written.fetch_add(1);
  }
  return cow;
}

void FileData::Impl::NoteWritten(ChunkState& cs) {
  std::lock_guard<std::mutex> l(cs.mu);
  if (cs.sync) cs.sync->written.fetch_add(1);
}

void FileData::Impl::NoteError(const Status& s) {
  std::lock_guard<std::mutex> l(mu);
  if (sticky.ok()) sticky = s;
}

}  // namespace cfs::store
