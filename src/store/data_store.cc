// DataStore: opens a volume's data path (objects/, dirty.log), inode files,
// file registry, clean close, write barrier.
#include <algorithm>
#include <atomic>
#include <thread>

#include "common/log.h"
#include "crypto/random.h"
#include "store/data_store_impl.h"

namespace cfs::store {
namespace {

// A private descriptor of what `fd` refers to (the caller keeps its own,
// which may be O_PATH), reopened through /proc/self/fd with `flags`.
Result<int> Reopen(Backing* b, int fd, int flags) {
  return b->OpenAt(AT_FDCWD, "/proc/self/fd/" + std::to_string(fd), flags | O_CLOEXEC);
}

// An inode file of length 0 was created but never filled durably: the
// daemon or the machine stopped between the create and the first fsync (on
// ext4 the directory entry can survive a power cut while the 80 bytes do
// not). It is an empty file, as ext4 would show it, never EIO: a database
// replaying its log reopens such files. Anything else short or wrong is EIO.
struct InodeRead {
  format::InodeRecord record;
  bool uninitialized = false;
};

Result<InodeRead> ReadInode(Backing* b, const format::MetaAuth& auth, int fd) {
  uint8_t rec[format::kInodeSize];
  CFS_ASSIGN_OR_RETURN(size_t n, b->PRead(fd, rec, sizeof rec, 0));
  if (n == 0) return InodeRead{format::InodeRecord{crypto::RandomArray<16>(), 0}, true};
  CFS_ASSIGN_OR_RETURN(format::InodeRecord r, format::DecodeInode(auth, ByteView(rec, n)));
  return InodeRead{r, false};
}

bool ParseChunkIndex(const std::string& name, uint64_t* c) {
  if (name.empty() || name.size() > 19 || name.find_first_not_of("0123456789") != std::string::npos) return false;
  *c = std::stoull(name);
  return true;
}

}  // namespace

std::string DataStore::Impl::FileDirName(const FileId& id) const { return HexEncode(id); }

Result<std::unique_ptr<DataStore>> DataStore::Open(Backing* backing, int volume_dirfd, const VolumeKeys* keys,
                                                   DataStoreOptions options) {
  if (options.chunk_blocks == 0 || options.chunk_blocks > format::kMaxChunkBlocks) {
    return InvalidArgument("chunk_blocks must be 1.." + std::to_string(format::kMaxChunkBlocks));
  }
  // The nonce holds 32 bits of a block's write counter, so a key (2^shift
  // chunk writes) must never see 2^32 writes of one block (chunks.md 2.4).
  if (options.generation_shift == 0 || options.generation_shift > 32) {
    return InvalidArgument("generation_shift must be 1..32");
  }
  std::unique_ptr<DataStore> ds(new DataStore());
  ds->impl_ = std::make_shared<Impl>();
  Impl& s = *ds->impl_;
  s.backing = backing;
  s.keys = keys;
  s.options = options;
  s.data_offset = format::DataOffset(options.chunk_blocks);
  std::shared_ptr<const crypto::MacKey> meta;
  if (keys) {
    CFS_ASSIGN_OR_RETURN(meta, keys->MetaKey());
  }
  s.auth = std::make_unique<format::MetaAuth>(std::move(meta));
  CFS_ASSIGN_OR_RETURN(s.volume_fd, Reopen(backing, volume_dirfd, O_RDONLY | O_DIRECTORY));
  if (!options.read_only) {
    Status m = backing->MkdirAt(s.volume_fd, "objects", 0700);
    if (!m.ok() && m.sys_errno() != EEXIST) return m.WithContext("creating objects/");
  }
  CFS_ASSIGN_OR_RETURN(s.objects_fd, backing->OpenAt(s.volume_fd, "objects", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  s.overwrites_in_place =
      !options.read_only && options.sync_overwrites_in_place && backing->OverwritesInPlace(s.volume_fd);
  if (s.overwrites_in_place) {
    CFS_ASSIGN_OR_RETURN(struct stat vst, backing->Fstat(s.volume_fd));
    s.volume_dev = vst.st_dev;
  }
  CFS_ASSIGN_OR_RETURN(s.log, DirtyLog::Open(backing, s.volume_fd, s.auth.get(), options.read_only,
                                               options.dirty_log_compact_records,
                                               &s.counters.dirty_log_commits));
  s.fds = std::make_unique<FdCache>(backing, std::max<size_t>(options.max_open_chunk_fds, 1));
  return ds;
}

DataStore::~DataStore() = default;

Result<int> DataStore::Impl::HashDirFd(const FileId& id, bool create, bool* created) {
  std::atomic<int>& slot = hash_dir_fds[id[0]];
  int fd = slot.load();
  if (fd >= 0) return fd;
  std::string hh = HexEncode(id).substr(0, 2);
  auto opened = backing->OpenAt(objects_fd, hh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!opened.ok() && opened.status().sys_errno() == ENOENT && create) {
    Status s = backing->MkdirAt(objects_fd, hh, 0700);
    if (s.ok() && created != nullptr) *created = true;
    else if (s.sys_errno() != EEXIST) return s;
    opened = backing->OpenAt(objects_fd, hh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  if (!opened.ok()) return opened.status();
  int expected = -1;
  if (slot.compare_exchange_strong(expected, *opened)) return *opened;
  (void)backing->Close(*opened);  // another thread opened it first
  return expected;
}

DataStore::Impl::~Impl() {
  (void)SyncPendingInodes();
  if (fds) fds->Clear();  // null when Open failed midway
  log.reset();
  for (auto& fd : hash_dir_fds) {
    if (fd.load() >= 0) (void)backing->Close(fd.load());
  }
  if (objects_fd >= 0) (void)backing->Close(objects_fd);
  if (volume_fd >= 0) (void)backing->Close(volume_fd);
}

bool DataStore::unclean() const { return impl_->log->unclean(); }
DataCounters& DataStore::counters() { return impl_->counters; }
uint32_t DataStore::chunk_blocks() const { return impl_->options.chunk_blocks; }

void DataStore::BeginWriteBarrier() { impl_->gate.Close(); }
void DataStore::EndWriteBarrier() { impl_->gate.Open(); }
void DataStore::BumpCowEpoch() { impl_->cow_epoch.fetch_add(1); }

Status DataStore::BeginSnapshotLinks(int snapshot_objects_fd, bool refresh) {
  Impl& s = *impl_;
  if (s.options.read_only) return Status(Code::kFailedPrecondition, "volume is read-only", EROFS);
  std::lock_guard<std::mutex> l(s.snapshot_mu);
  if (s.snapshot_links) return FailedPrecondition("another snapshot of this volume is still linking its chunks");
  s.snapshot_links = std::make_shared<SnapshotLinks>(s.backing, s.objects_fd, snapshot_objects_fd, refresh);
  s.cow_epoch.fetch_add(1);  // every chunk's next change goes through PrepareWrite's slow path
  return Status::Ok();
}

Result<uint64_t> DataStore::FinishSnapshotLinks() {
  Impl& s = *impl_;
  std::shared_ptr<SnapshotLinks> links;
  {
    std::lock_guard<std::mutex> l(s.snapshot_mu);
    links = s.snapshot_links;
  }
  if (!links) return FailedPrecondition("no snapshot is linking its chunks");
  Status st = links->Finish();
  {
    std::lock_guard<std::mutex> l(s.snapshot_mu);
    s.snapshot_links.reset();
  }
  CFS_RETURN_IF_ERROR(st);
  return links->linked();
}

void DataStore::Impl::PreserveForSnapshot(const FileId& id, uint64_t c) {
  std::shared_ptr<SnapshotLinks> links;
  {
    std::lock_guard<std::mutex> l(snapshot_mu);
    links = snapshot_links;
  }
  if (links) links->Preserve(HexEncode(id), c);
}

Result<uint64_t> DataStore::RecoverTornBlocks() {
  if (impl_->options.read_only) return Status(Code::kFailedPrecondition, "volume is read-only", EROFS);
  return impl_->Recover();
}

Result<format::InodeRecord> DataStore::Impl::WriteNewInode(int inode_fd, bool may_reopen) {
  if (options.read_only) return Status(Code::kFailedPrecondition, "volume is read-only", EROFS);
  // An id whose first chunks are already in the dirty log: the file's
  // first write then needs no log commit of its own (dirty_log.h).
  format::InodeRecord r{crypto::RandomArray<16>(), 0};
  if (log) {
    CFS_ASSIGN_OR_RETURN(r.id, log->NewFileId());
  }
  uint8_t rec[format::kInodeSize];
  format::EncodeInode(*auth, r, rec);
  // The creator's descriptor is usually writable: one pwrite.
  Status s = backing->PWrite(inode_fd, rec, sizeof rec, 0);
  if (s.sys_errno() == EBADF && may_reopen) {
    CFS_ASSIGN_OR_RETURN(int fd, Reopen(backing, inode_fd, O_RDWR));
    s = backing->PWrite(fd, rec, sizeof rec, 0);
    (void)backing->Close(fd);
  }
  CFS_RETURN_IF_ERROR(s);
  return r;
}

Status DataStore::InitInodeFile(int inode_fd) { return impl_->WriteNewInode(inode_fd, true).status(); }

Result<std::shared_ptr<FileData>> DataStore::CreateFile(int creator_fd) {
  // No reopen: the FileData keeps this descriptor, so it must be writable.
  auto r = impl_->WriteNewInode(creator_fd, false);
  if (!r.ok()) {
    (void)impl_->backing->Close(creator_fd);
    return r.status();
  }
  return Adopt(creator_fd, r->id, r->size);
}

Result<uint64_t> DataStore::ReadSize(int inode_fd) {
  CFS_ASSIGN_OR_RETURN(int fd, Reopen(impl_->backing, inode_fd, O_RDONLY));
  auto r = ReadInode(impl_->backing, *impl_->auth, fd);
  (void)impl_->backing->Close(fd);
  if (!r.ok()) return Status(Code::kDataLoss, r.status().message(), EIO);
  return r->record.size;
}

Result<std::shared_ptr<FileData>> DataStore::OpenFile(int inode_fd) {
  Impl& s = *impl_;
  auto reopened = Reopen(s.backing, inode_fd, s.options.read_only ? O_RDONLY : O_RDWR);
  // A daemon without CAP_DAC_OVERRIDE cannot write a read-only file's
  // inode file: it can still read it.
  if (!reopened.ok() && reopened.status().sys_errno() == EACCES) reopened = Reopen(s.backing, inode_fd, O_RDONLY);
  CFS_ASSIGN_OR_RETURN(int fd, std::move(reopened));
  auto rec = ReadInode(s.backing, *s.auth, fd);
  if (!rec.ok()) {
    (void)s.backing->Close(fd);
    log::Error("inode file does not verify: {}", rec.status().message());
    return Status(Code::kDataLoss, rec.status().message(), EIO);
  }
  if (rec->uninitialized && !s.options.read_only) {
    // Give it the fresh id now, so writes have a durable identity.
    uint8_t buf[format::kInodeSize];
    format::EncodeInode(*s.auth, rec->record, buf);
    Status w = s.backing->PWrite(fd, buf, sizeof buf, 0);
    if (!w.ok()) {
      (void)s.backing->Close(fd);
      return w.WithContext("initializing an empty inode file");
    }
    log::Warn("empty inode file (created, not durable before an unclean shutdown) opened as an empty file {}",
              HexEncode(rec->record.id));
  }
  return Adopt(fd, rec->record.id, rec->record.size);
}

Result<std::shared_ptr<FileData>> DataStore::Adopt(int fd, const FileId& id, uint64_t size) {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> l(s.files_mu);
  auto it = s.files.find(id);
  if (it != s.files.end()) {
    if (auto existing = it->second.lock()) {
      (void)s.backing->Close(fd);
      return existing;
    }
  }
  std::shared_ptr<FileData> f(new FileData());
  f->impl_ = std::make_unique<FileData::Impl>();
  FileData::Impl& fi = *f->impl_;
  fi.store = impl_;
  fi.id = id;
  fi.inode_fd = fd;
  fi.codec = std::make_unique<format::BlockCodec>(s.keys, id);
  fi.size.store(size);
  if (s.files.size() > 1024) std::erase_if(s.files, [](const auto& e) { return e.second.expired(); });
  s.files[id] = f;
  return f;
}

Status DataStore::DeleteFileData(const FileId& id) {
  Impl& s = *impl_;
  if (s.options.read_only) return Status(Code::kFailedPrecondition, "volume is read-only", EROFS);
  s.fds->EraseFrom(id, 0);
  std::string name = HexEncode(id);
  auto hh = s.HashDirFd(id);  // the store's descriptor: not closed here
  if (!hh.ok()) return hh.status().sys_errno() == ENOENT ? Status::Ok() : hh.status();
  auto dir = s.backing->OpenAt(*hh, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  Status st;
  if (dir.ok()) {
    auto names = s.backing->ListDir(*dir);
    if (names.ok()) {
      for (const auto& n : *names) {
        if (uint64_t c; ParseChunkIndex(n, &c)) s.PreserveForSnapshot(id, c);
        Status u = s.backing->UnlinkAt(*dir, n, 0);
        if (!u.ok() && u.sys_errno() != ENOENT && st.ok()) st = u;
      }
    } else {
      st = names.status();
    }
    (void)s.backing->Close(*dir);
    if (st.ok()) st = s.backing->UnlinkAt(*hh, name, AT_REMOVEDIR);
  } else if (dir.status().sys_errno() != ENOENT) {
    st = dir.status();
  }
  s.fds->EraseFrom(id, 0);  // again: nothing opened during the unlinks may stay cached
  return st.ok() || st.sys_errno() == ENOENT ? Status::Ok() : st.WithContext("deleting data of " + name);
}

Status ParallelSync(size_t n, const std::function<Status(size_t)>& job) {
  constexpr size_t kSyncThreads = 8;
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first;
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      Status s = job(i);
      if (!s.ok()) {
        std::lock_guard<std::mutex> l(mu);
        if (first.ok()) first = s;
      }
    }
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < std::min(n, kSyncThreads); ++t) helpers.emplace_back(worker);
  worker();
  for (auto& h : helpers) h.join();
  return first;
}

Status DataStore::Impl::SyncPendingInodes() {
  std::vector<int> fds;
  {
    std::lock_guard<std::mutex> l(files_mu);
    fds.swap(pending_inode_fds);
  }
  return ParallelSync(fds.size(), [&](size_t i) {
    Status s = backing->Fsync(fds[i], true);
    (void)backing->Close(fds[i]);
    return s;
  });
}

Status DataStore::Impl::SyncDirtyChunks() {
  auto entries = log->DirtyEntries();
  return ParallelSync(entries.size(), [&](size_t i) -> Status {
    auto& [rec, state] = entries[i];
    uint64_t w = state->written.load();
    std::string name = HexEncode(rec.id);
    auto hh = HashDirFd(rec.id);
    if (!hh.ok()) return Status::Ok();  // deleted
    auto dir = backing->OpenAt(*hh, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!dir.ok()) return Status::Ok();
    auto fd = backing->OpenAt(*dir, std::to_string(rec.first), O_RDWR | O_CLOEXEC);
    Status s = backing->Fsync(*dir, false);
    (void)backing->Close(*dir);
    if (fd.ok()) {
      if (s.ok()) s = backing->Fsync(*fd, true);
      (void)backing->Close(*fd);
    } else if (fd.status().sys_errno() != ENOENT) {
      s = fd.status();
    }
    if (s.ok()) state->MarkSynced(w);
    return s;
  });
}

Status DataStore::Impl::MaybeCompact() {
  if (options.read_only || !log->WantsCompaction()) return Status::Ok();
  std::unique_lock<std::mutex> l(compact_mu, std::try_to_lock);
  if (!l.owns_lock()) return Status::Ok();
  CFS_RETURN_IF_ERROR(SyncPendingInodes());
  if (!gate.TryClose(200)) return Status::Ok();  // busy or a snapshot: next time
  Status s = log->Compact();
  gate.Open();
  return s;
}

Status DataStore::CloseClean() {
  Impl& s = *impl_;
  if (s.options.read_only) return Status::Ok();
  std::lock_guard<std::mutex> l(s.compact_mu);
  s.gate.Close();
  Status first;
  std::vector<std::shared_ptr<FileData>> open;
  {
    std::lock_guard<std::mutex> fl(s.files_mu);
    for (auto& [id, w] : s.files) {
      if (auto f = w.lock()) open.push_back(std::move(f));
    }
  }
  for (auto& f : open) {
    Status st = f->impl_->SyncImpl(true);
    if (!st.ok() && first.ok()) first = st;
  }
  open.clear();
  Status st = s.SyncDirtyChunks();
  if (first.ok()) first = st;
  st = s.SyncPendingInodes();
  if (first.ok()) first = st;
  if (first.ok()) first = s.log->MarkClean();
  s.gate.Open();
  return first;
}

}  // namespace cfs::store
