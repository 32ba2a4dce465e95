// FileData: reads, writes, size and sync of one regular file's contents.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "common/log.h"
#include "store/data_store_impl.h"

namespace cfs::store {
namespace {

uint8_t* StagingBuffer(size_t size) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < size) buf.resize(size);
  return buf.data();
}

// One chunk's part of a block range: blocks [b0, b0 + n) of chunk c.
struct Segment {
  uint64_t c;
  uint32_t b0, n;
};

template <typename F>
Status ForEachSegment(uint64_t first_block, uint64_t last_block, uint32_t chunk_blocks, F f) {
  for (uint64_t blk = first_block; blk <= last_block;) {
    Segment s{blk / chunk_blocks, uint32_t(blk % chunk_blocks), 0};
    s.n = uint32_t(std::min<uint64_t>(chunk_blocks - s.b0, last_block + 1 - blk));
    CFS_RETURN_IF_ERROR(f(s));
    blk += s.n;
  }
  return Status::Ok();
}

// Closed files whose size was not synced keep their inode descriptor until
// a compaction or clean close syncs it; beyond this many, the close syncs.
constexpr size_t kMaxPendingInodes = 256;

}  // namespace

FileData::Impl::~Impl() {
  Backing* b = store->backing;
  if (dir_fd >= 0) (void)b->Close(dir_fd);
  if (inode_fd < 0) return;
  if (size_version != size_synced && !store->options.read_only) {
    size_t pending;
    {
      std::lock_guard<std::mutex> l(store->files_mu);
      store->pending_inode_fds.push_back(inode_fd);  // synced at the next compaction or clean close
      pending = store->pending_inode_fds.size();
    }
    if (pending > kMaxPendingInodes) {
      Status s = store->SyncPendingInodes();
      if (!s.ok()) log::Error("syncing sizes of closed files: {}", s.ToString());
    }
    return;
  }
  (void)b->Close(inode_fd);
}

FileData::~FileData() = default;
const FileId& FileData::id() const { return impl_->id; }
uint64_t FileData::size() const { return impl_->size.load(); }

Status FileData::Impl::PersistSize(uint64_t new_size) {
  uint8_t rec[format::kInodeSize];
  format::EncodeInode(*store->auth, format::InodeRecord{id, new_size}, rec);
  Status s = store->backing->PWrite(inode_fd, rec, sizeof rec, 0);
  if (!s.ok()) {
    if (sticky.ok()) sticky = s;
    return s.WithContext("writing the size of file " + HexEncode(id));
  }
  size.store(new_size);
  ++size_version;
  return Status::Ok();
}

namespace {

// A read-only mount may serve a volume its writer is changing (a same-region
// replica, docs/regions.md): each read takes the size the writer last wrote
// to the inode file. A record that does not verify (being rewritten) keeps
// the size known so far.
template <typename FileImpl>  // FileData::Impl (private: named by deduction)
void RefreshSizeForReader(FileImpl& f) {
  uint8_t rec[format::kInodeSize];
  Result<size_t> n = f.store->backing->PRead(f.inode_fd, rec, sizeof rec, 0);
  if (!n.ok() || *n != sizeof rec) return;
  Result<format::InodeRecord> r = format::DecodeInode(*f.store->auth, ByteView(rec, *n));
  if (r.ok() && r->id == f.id) f.size.store(r->size);
}

// Blocks for a read-only mount beside a live writer: the chunk header is
// read again (the writer may have written or punched blocks since), a
// descriptor left on a file a copy-on-write break replaced (unlinked) is
// reopened, and a block read between the writer's tag and data writes
// (fails to authenticate) is read again from fresh state a few times
// before it is an error.
constexpr int kReaderRetries = 8;

template <typename FileImpl>
Status ReaderReadBlocks(FileImpl& f, ChunkState& cs, uint32_t b0, uint32_t n, uint8_t* out) {
  Status s;
  for (int attempt = 0; attempt < kReaderRetries; ++attempt) {
    if (attempt > 0) ::usleep(1000u << std::min(attempt, 5));
    bool exists;
    {
      std::lock_guard<std::mutex> l(cs.mu);
      exists = cs.loaded && cs.exists;
    }
    if (exists) {
      auto fd = f.Fd(cs.index, false);
      Result<struct stat> st = fd.ok() ? f.store->backing->Fstat((*fd)->fd()) : Result<struct stat>(fd.status());
      if (!st.ok() || st->st_nlink == 0) f.store->fds->Erase(f.id, cs.index);
    }
    {
      std::lock_guard<std::mutex> l(cs.mu);
      uint32_t had = 0;
      for (uint8_t byte : cs.header.map) had += uint32_t(std::popcount(byte));
      if (cs.exists) f.allocated_blocks.fetch_sub(std::min<uint64_t>(had, f.allocated_blocks.load()));
      cs.loaded = false;
      cs.exists = false;
      cs.error = Status::Ok();
      cs.header = format::ChunkHeader{};
    }
    s = f.ReadBlocks(cs, b0, n, out);
    if (s.ok() || s.code() != Code::kDataLoss) return s;
  }
  return s;
}

}  // namespace

Result<size_t> FileData::Read(uint64_t offset, size_t length, uint8_t* out) {
  Impl& f = *impl_;
  if (f.store->options.read_only) RefreshSizeForReader(f);
  uint64_t size = f.size.load();
  if (offset >= size || length == 0) return size_t{0};
  uint64_t end = std::min<uint64_t>(size, offset + length);
  auto guard = f.ranges.Lock(offset / format::kBlock, (end - 1) / format::kBlock, false);
  end = std::min<uint64_t>(end, f.size.load());  // a truncate may have run before we got the lock
  if (end <= offset) return size_t{0};
  const uint32_t cb = f.store->options.chunk_blocks;
  Status s = ForEachSegment(offset / format::kBlock, (end - 1) / format::kBlock, cb, [&](Segment seg) {
    auto cs = f.Chunk(seg.c);
    uint64_t seg_start = (seg.c * cb + seg.b0) * format::kBlock;
    uint64_t seg_end = seg_start + uint64_t{seg.n} * format::kBlock;
    uint64_t from = std::max(seg_start, offset), to = std::min(seg_end, end);
    uint8_t* dst = out + (from - offset);
    auto read = [&](uint8_t* to_buf) {
      return f.store->options.read_only ? ReaderReadBlocks(f, *cs, seg.b0, seg.n, to_buf)
                                        : f.ReadBlocks(*cs, seg.b0, seg.n, to_buf);
    };
    if (from == seg_start && to == seg_end) return read(dst);
    uint8_t* tmp = StagingBuffer(size_t{seg.n} * format::kBlock);
    CFS_RETURN_IF_ERROR(read(tmp));
    std::memcpy(dst, tmp + (from - seg_start), to - from);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  f.store->counters.bytes_read.fetch_add(end - offset, std::memory_order_relaxed);
  return size_t(end - offset);
}

Status FileData::Impl::WriteRange(uint64_t offset, ByteView data) {
  const uint64_t end = offset + data.size();
  const uint32_t cb = store->options.chunk_blocks;
  return ForEachSegment(offset / format::kBlock, (end - 1) / format::kBlock, cb, [&](Segment seg) {
    auto cs = Chunk(seg.c);
    uint64_t seg_start = (seg.c * cb + seg.b0) * format::kBlock;
    uint64_t seg_end = seg_start + uint64_t{seg.n} * format::kBlock;
    uint64_t from = std::max(seg_start, offset), to = std::min(seg_end, end);
    const uint8_t* src = data.data() + (from - offset);
    if (from == seg_start && to == seg_end) return WriteBlocks(*cs, seg.b0, seg.n, src);
    uint8_t* buf = StagingBuffer(size_t{seg.n} * format::kBlock);
    if (from != seg_start) CFS_RETURN_IF_ERROR(ReadBlocks(*cs, seg.b0, 1, buf));
    uint32_t last = seg.n - 1;
    if (to != seg_end && (last > 0 || from == seg_start)) {
      CFS_RETURN_IF_ERROR(ReadBlocks(*cs, seg.b0 + last, 1, buf + size_t{last} * format::kBlock));
    }
    std::memcpy(buf + (from - seg_start), src, to - from);
    return WriteBlocks(*cs, seg.b0, seg.n, buf);
  });
}

Result<size_t> FileData::Write(uint64_t offset, ByteView data) {
  Impl& f = *impl_;
  if (f.store->options.read_only) return Status(Code::kFailedPrecondition, "volume is read-only", EROFS);
  if (data.empty()) return size_t{0};
  if (offset + data.size() < offset || offset + data.size() > (uint64_t{1} << 62)) {
    return Status(Code::kInvalidArgument, "write beyond the largest file size", EFBIG);
  }
  WriteGate::Writer writer(&f.store->gate);
  const uint64_t end = offset + data.size();
  CFS_RETURN_IF_ERROR(f.PrepareExtend(end));
  auto guard = f.ranges.Lock(offset / format::kBlock, (end - 1) / format::kBlock, true);
  Status s = f.WriteRange(offset, data);
  if (s.ok() && end > f.size.load()) {
    std::lock_guard<std::mutex> l(f.mu);
    if (end > f.size.load()) s = f.PersistSize(end);
  }
  if (!s.ok()) {
    if (end > f.size.load()) f.eof_clean.store(false);  // blocks past the size may be written
    return s;
  }
  f.store->counters.bytes_written.fetch_add(data.size(), std::memory_order_relaxed);
  f.cycle_writes.fetch_add(1);
  return data.size();
}

Status FileData::Impl::SyncChunk(ChunkState& cs, ChunkSyncState& sync) {
  uint64_t w = sync.written.load();
  std::lock_guard<std::mutex> serial(cs.sync_mu);
  // A sync that started after our writes ended (a sync ahead) succeeded
  // while we waited: they are durable.
  if (sync.synced.load() >= w) return Status::Ok();
  auto fd = Fd(cs.index, false);
  if (!fd.ok()) return fd.status().sys_errno() == ENOENT ? Status::Ok() : fd.status();  // truncated away
  // Read after `w`: every change counted in `w` that allocated was counted here first.
  const uint64_t allocs = cs.host_allocs.load();
  bool retry, in_place;
  uint64_t floor;
  {
    std::lock_guard<std::mutex> l(cs.mu);
    retry = cs.sync_failed;
    floor = cs.seq.load();
    in_place = store->overwrites_in_place && !retry && cs.overwrites_only_at == allocs;
  }
  // A failed fdatasync may have dropped the dirty pages (fsyncgate): a
  // retry says OK only if what was written since the last good sync is
  // still there.
  if (retry) CFS_RETURN_IF_ERROR(VerifyAfterFailedSync(cs, (*fd)->fd()));
  Backing* b = store->backing;
  Status s = in_place ? b->SyncOverwrites((*fd)->fd(), store->volume_fd) : b->Fsync((*fd)->fd(), true);
  (in_place ? store->counters.chunk_syncs_in_place : store->counters.chunk_syncs_full).fetch_add(1);
  // After a full sync of a chunk whose blocks are all written, the file's
  // holes say whether they are all allocated (then an overwrite allocates
  // nothing). A chunk still being filled (a log's head, a growing table)
  // keeps syncing in full: its next write would undo the check, which
  // costs ~12% of an appending fdatasync loop (docs/performance.md,
  // session 7). A backing that fails to say is failing: reported like a
  // failed flush.
  HostExtents extents;
  bool map = s.ok() && !in_place && store->overwrites_in_place;
  if (map) {
    std::lock_guard<std::mutex> l(cs.mu);
    for (uint32_t i = 0; i < store->options.chunk_blocks && map; ++i) map = format::MapBit(cs.header.map, i);
  }
  if (map) s = MapHoles((*fd)->fd(), &extents);
  std::lock_guard<std::mutex> l(cs.mu);
  if (!s.ok()) {
    cs.sync_failed = true;
    return s;
  }
  if (map && extents.dev == store->volume_dev && cs.host_allocs.load() == allocs &&
      WrittenBlocksAllocated(cs, extents)) {
    cs.overwrites_only_at = allocs;
    cs.host_bytes_checked = extents.size;
  }
  cs.sync_failed = false;
  cs.sync_floor = std::max(cs.sync_floor, floor);
  std::fill(cs.wrote_bits.begin(), cs.wrote_bits.end(), 0);  // writes racing this sync lose
  std::fill(cs.punched_bits.begin(), cs.punched_bits.end(), 0);  // only the extra check
  sync.MarkSynced(w);
  return Status::Ok();
}

Status FileData::Impl::MapHoles(int fd, HostExtents* out) {
  Backing* b = store->backing;
  CFS_ASSIGN_OR_RETURN(struct stat st, b->Fstat(fd));
  out->dev = st.st_dev;
  out->size = uint64_t(st.st_size);
  // SEEK_HOLE reports unwritten (fallocated) extents as holes too.
  for (uint64_t at = 0; at < out->size;) {
    CFS_ASSIGN_OR_RETURN(off_t hole, b->Lseek(fd, off_t(at), SEEK_HOLE));
    if (uint64_t(hole) >= out->size) break;
    auto data = b->Lseek(fd, hole, SEEK_DATA);
    if (!data.ok() && data.status().sys_errno() != ENXIO) return data.status();
    uint64_t end = data.ok() ? uint64_t(*data) : out->size;  // ENXIO: a hole up to the end
    out->holes.emplace_back(uint64_t(hole), end);
    at = end;
  }
  return Status::Ok();
}

bool FileData::Impl::WrittenBlocksAllocated(const ChunkState& cs, const HostExtents& e) const {
  auto allocated = [&](uint64_t from, uint64_t len) {
    if (from + len > e.size) return false;
    for (const auto& [lo, hi] : e.holes) {
      if (from < hi && lo < from + len) return false;
    }
    return true;
  };
  if (!allocated(0, format::kHeaderWrite)) return false;
  for (uint32_t i = 0; i < store->options.chunk_blocks; ++i) {
    if (!format::MapBit(cs.header.map, i)) continue;
    if (!allocated(format::SlotPairOffset(i), format::kSlotPairSize) ||
        !allocated(store->data_offset + uint64_t{i} * format::kBlock, format::kBlock)) {
      return false;
    }
  }
  return true;
}

bool FileData::Impl::AdoptDirtyChunks() {
  bool any = false;
  for (auto& [rec, state] : store->log->DirtyEntries()) {
    if (rec.id != id) continue;
    auto cs = Chunk(rec.first);
    {
      std::lock_guard<std::mutex> l(cs->mu);
      if (!cs->sync) cs->sync = state;
    }
    std::lock_guard<std::mutex> l(mu);
    unsynced.insert(rec.first);
    any = true;
  }
  return any;
}

FileData::Impl::SyncBatch FileData::Impl::CollectUnsynced() {
  SyncBatch batch;
  {
    std::lock_guard<std::mutex> l(mu);
    for (auto it = unsynced.begin(); it != unsynced.end();) {
      auto cs = chunks.find(*it);
      if (cs == chunks.end()) {
        it = unsynced.erase(it);  // truncated away (a new write of it marks it again)
        continue;
      }
      batch.states.push_back(cs->second);
      ++it;
    }
  }
  for (auto& cs : batch.states) {
    std::lock_guard<std::mutex> l(cs->mu);
    if (cs->sync && cs->sync->Dirty()) batch.jobs.push_back({cs, cs->sync, cs->sync->written.load()});
  }
  return batch;
}

Status FileData::Impl::SyncBatchChunks(const SyncBatch& batch) {
  const auto& jobs = batch.jobs;
  Status first = ParallelSync(jobs.size(), [&](size_t i) -> Status {
    return SyncChunk(*jobs[i].state, *jobs[i].sync);
  });
  // A chunk leaves the set only if clean, still the one loaded, and no
  // write or punch of it ended since it was checked (such a one is marked
  // again, or stays). `mu` and a chunk's mu are never held together here.
  for (auto& cs : batch.states) {
    uint64_t changes = cs->finished_changes.load();
    bool dirty;
    {
      std::lock_guard<std::mutex> cl(cs->mu);
      dirty = cs->sync && cs->sync->Dirty();
    }
    if (dirty) continue;
    std::lock_guard<std::mutex> l(mu);
    auto it = chunks.find(cs->index);
    if (it != chunks.end() && it->second == cs && cs->finished_changes.load() == changes) unsynced.erase(cs->index);
  }
  if (first.code() == Code::kDataLoss) {
    std::lock_guard<std::mutex> l(mu);
    if (poison.ok()) poison = first;
  }
  return first;
}

Status FileData::Impl::SyncImpl(bool datasync) {
  if (store->options.read_only) return Status::Ok();
  last_cycle_writes.store(cycle_writes.exchange(0));
  {
    std::lock_guard<std::mutex> l(mu);
    if (!poison.ok()) return poison;
  }
  bool first_sync = false;
  {
    std::lock_guard<std::mutex> l(mu);
    first_sync = !adopted;
    adopted = true;
  }
  if (first_sync && AdoptDirtyChunks()) {
    bool have_dir = OpenDir(false).ok();  // no chunk directory: nothing to sync there
    std::lock_guard<std::mutex> l(mu);
    dir_dirty |= have_dir;
    parent_dirty |= have_dir;
  }
  Status first = SyncBatchChunks(CollectUnsynced());
  bool dirs = false, parents = false;
  uint64_t version;
  int dir;
  {
    std::lock_guard<std::mutex> l(mu);
    std::swap(dirs, dir_dirty);
    std::swap(parents, parent_dirty);
    version = size_version;
    dir = dir_fd;
  }
  if (dirs || parents) {
    Status s = store->backing->Fsync(dir, false);
    if (s.ok() && parents) {
      auto hh = store->HashDirFd(id);
      s = hh.ok() ? store->backing->Fsync(*hh, false) : hh.status();
      if (s.ok()) s = store->backing->Fsync(store->objects_fd, false);
    }
    if (!s.ok()) {
      std::lock_guard<std::mutex> l(mu);
      dir_dirty |= dirs;
      parent_dirty |= parents;
      if (first.ok()) first = s;
    }
  }
  // The first sync also covers a size an earlier open left unsynced.
  if (version != size_synced || !datasync || first_sync) {
    Status s;
    {  // after a failed fsync the page may be gone: write the size again
      std::lock_guard<std::mutex> l(mu);
      if (inode_sync_failed) s = PersistSize(size.load());
    }
    if (s.ok()) s = store->backing->Fsync(inode_fd, datasync);
    std::lock_guard<std::mutex> l(mu);
    inode_sync_failed = !s.ok();
    if (s.ok()) size_synced = std::max(size_synced, version);
    else if (first.ok()) first = s;
  }
  std::lock_guard<std::mutex> l(mu);
  if (!sticky.ok()) {
    if (first.ok()) first = sticky;
    sticky = Status::Ok();
  }
  return first;
}

bool FileData::WantsSyncAhead() const {
  uint32_t before = impl_->last_cycle_writes.load();
  return impl_->cycle_writes.load() == 1 && before >= 1 && before <= 2;
}

void FileData::SyncAhead() {
  Impl& f = *impl_;
  if (f.store->options.read_only) return;
  {
    std::lock_guard<std::mutex> l(f.mu);
    // One at a time; after a data loss or before the first Sync adopted
    // what earlier opens left, the Sync to come has more to do.
    if (f.ahead || !f.poison.ok() || !f.adopted) return;
  }
  Impl::SyncBatch batch = f.CollectUnsynced();
  if (batch.jobs.empty()) return;
  auto ahead = std::make_shared<Impl::Ahead>();
  ahead->covers = batch.jobs;
  {
    std::lock_guard<std::mutex> l(f.mu);
    if (f.ahead) return;
    f.ahead = ahead;
  }
  f.store->counters.syncs_ahead.fetch_add(1, std::memory_order_relaxed);
  Status s = f.SyncBatchChunks(batch);
  std::vector<std::function<void(const Status&)>> joined;
  {
    std::lock_guard<std::mutex> l(f.mu);
    joined.swap(ahead->joined);
    f.ahead.reset();
  }
  // With no fsync waiting, the error waits for the next Sync; a waiting
  // one reports it (and the chunk's next sync retries with the check of
  // VerifyAfterFailedSync).
  if (!s.ok() && joined.empty()) f.NoteError(s);
  for (auto& done : joined) done(s);
  Status c = f.store->MaybeCompact();
  if (!c.ok()) log::Warn("dirty log compaction: {}", c.ToString());
}

bool FileData::Impl::Ahead::Covers(const std::vector<SyncJob>& now) const {
  for (const SyncJob& job : now) {
    auto it = std::find_if(covers.begin(), covers.end(), [&](const SyncJob& c) { return c.sync == job.sync; });
    if (it == covers.end() || it->written < job.written) return false;
  }
  return true;
}

bool FileData::JoinSyncAhead(std::function<void(const Status&)> done) {
  Impl& f = *impl_;
  std::shared_ptr<Impl::Ahead> a;
  {
    std::lock_guard<std::mutex> l(f.mu);
    // Only a sync of chunks and nothing else: no chunk directory entry,
    // size or earlier error to make durable or report.
    if (!f.ahead || !f.poison.ok() || !f.sticky.ok() || !f.adopted || f.dir_dirty || f.parent_dirty ||
        f.size_version != f.size_synced || f.inode_sync_failed) {
      return false;
    }
    a = f.ahead;
  }
  // What Sync(true) would flush now; a write ending after this ended after
  // the fsync began, which need not cover it.
  if (!a->Covers(f.CollectUnsynced().jobs)) return false;
  std::lock_guard<std::mutex> l(f.mu);
  if (f.ahead != a) return false;  // it ended meanwhile: a plain Sync is cheap now
  a->joined.push_back(std::move(done));
  f.last_cycle_writes.store(f.cycle_writes.exchange(0));
  f.store->counters.syncs_joined.fetch_add(1, std::memory_order_relaxed);
  return true;
}

Status FileData::Sync(bool datasync) {
  Status s = impl_->SyncImpl(datasync);
  Status c = impl_->store->MaybeCompact();
  if (!c.ok()) log::Warn("dirty log compaction: {}", c.ToString());
  return s;
}

}  // namespace cfs::store
