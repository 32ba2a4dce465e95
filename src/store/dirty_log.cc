#include "store/dirty_log.h"

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "crypto/random.h"

namespace cfs::store {

namespace {
constexpr char kLogName[] = "dirty.log";
constexpr char kLogTmpName[] = "dirty.log.tmp";
}  // namespace

void ChunkSyncState::MarkSynced(uint64_t w) {
  uint64_t cur = synced.load();
  while (cur < w && !synced.compare_exchange_weak(cur, w)) {
  }
}

size_t DirtyLog::KeyHash::operator()(const Key& k) const {
  uint64_t a;
  std::memcpy(&a, k.id.data(), 8);
  return size_t(a ^ (k.chunk * 0x9E3779B97F4A7C15ull));
}

Result<std::unique_ptr<DirtyLog>> DirtyLog::Open(Backing* backing, int volume_dirfd,
                                                 const format::MetaAuth* auth, bool read_only,
                                                 uint64_t compact_after, std::atomic<uint64_t>* commits) {
  std::unique_ptr<DirtyLog> log(new DirtyLog(backing, volume_dirfd, auth));
  log->compact_after_ = compact_after;
  log->commits_ = commits;
  log->pending_ = std::make_shared<Batch>();
  CFS_RETURN_IF_ERROR(log->Load(read_only));
  return log;
}

DirtyLog::~DirtyLog() {
  if (fd_ >= 0) (void)backing_->Close(fd_);
}

Status DirtyLog::Load(bool read_only) {
  int flags = read_only ? O_RDONLY : (O_RDWR | O_CREAT);
  auto fd = backing_->OpenAt(dirfd_, kLogName, flags | O_CLOEXEC, 0600);
  if (!fd.ok()) {
    if (read_only && fd.status().sys_errno() == ENOENT) return Status::Ok();
    return fd.status().WithContext("dirty log");
  }
  fd_ = *fd;
  CFS_ASSIGN_OR_RETURN(struct stat st, backing_->Fstat(fd_));
  if (st.st_size > 0) {
    uint8_t hdr[format::kLogHeaderSize] = {};
    CFS_ASSIGN_OR_RETURN(size_t n, backing_->PRead(fd_, hdr, sizeof hdr, 0));
    auto header = format::DecodeLogHeader(ByteView(hdr, n));
    unclean_ = !header.ok() || header->state == format::LogState::kOpen;
    if (unclean_ && header.ok()) previous_salts_ = {header->run_salt, header->prev_salt};
  }
  if (unclean_) {
    Bytes buf(st.st_size > off_t(format::kLogRecordsOffset) ? st.st_size - format::kLogRecordsOffset : 0);
    CFS_ASSIGN_OR_RETURN(size_t n, backing_->PRead(fd_, buf.data(), buf.size(), format::kLogRecordsOffset));
    size_t end = 0;
    for (size_t off = 0; off + format::kLogRecordSize <= n; off += format::kLogRecordSize) {
      ByteView rec(buf.data() + off, format::kLogRecordSize);
      if (std::all_of(rec.begin(), rec.end(), [](uint8_t b) { return b == 0; })) break;
      end = off + format::kLogRecordSize;
      auto r = format::DecodeLogRecord(*auth_, rec);
      if (!r.ok()) {
        log::Warn("dirty log: record {} does not verify, skipped", off / format::kLogRecordSize);
        continue;
      }
      previous_.push_back(*r);
    }
    next_offset_ = format::kLogRecordsOffset + end;
    recovered_ = previous_.empty();
    log::Warn("volume was not closed cleanly: {} dirty-chunk records", previous_.size());
  }
  if (read_only) return Status::Ok();
  // Block nonces of this run (chunks.md 2.4); the unclean run's is kept
  // in the header too, for a recovery interrupted by another crash.
  run_salt_ = format::NewSalt();
  carried_salt_ = previous_salts_[0];
  if (!unclean_) CFS_RETURN_IF_ERROR(backing_->Ftruncate(fd_, format::kLogRecordsOffset));
  CFS_RETURN_IF_ERROR(WriteHeader(fd_, format::LogState::kOpen));
  CFS_RETURN_IF_ERROR(backing_->Fsync(fd_, true));
  CFS_RETURN_IF_ERROR(backing_->Fsync(dirfd_, false));
  header_open_ = true;
  return Status::Ok();
}

Status DirtyLog::WriteHeader(int fd, format::LogState state) {
  uint8_t hdr[format::kLogHeaderSize];
  format::EncodeLogHeader({state, run_salt_, carried_salt_}, hdr);
  return backing_->PWrite(fd, hdr, sizeof hdr, 0);
}

std::vector<format::LogRecord> DirtyLog::PreviousRecords() const {
  std::lock_guard<std::mutex> l(mu_);
  return previous_;
}

void DirtyLog::MarkRecovered() {
  std::lock_guard<std::mutex> l(mu_);
  recovered_ = true;
}

Status DirtyLog::WriteBatch(const Bytes& records, uint64_t offset, bool write_header) {
  if (write_header) CFS_RETURN_IF_ERROR(WriteHeader(fd_, format::LogState::kOpen));
  CFS_RETURN_IF_ERROR(backing_->PWrite(fd_, records.data(), records.size(), offset));
  return backing_->Fsync(fd_, true);
}

Status DirtyLog::WaitDurable(std::unique_lock<std::mutex>& l, const std::shared_ptr<Batch>& b) {
  while (!b->done) {
    if (leader_active_) {
      cv_.wait(l);
      continue;
    }
    leader_active_ = true;
    std::shared_ptr<Batch> batch = std::move(pending_);
    pending_ = std::make_shared<Batch>();
    uint64_t offset = next_offset_;
    next_offset_ += batch->records.size();
    bool write_header = !header_open_;
    l.unlock();
    Status s = WriteBatch(batch->records, offset, write_header);
    l.lock();
    if (s.ok()) {
      header_open_ = true;
      if (commits_) commits_->fetch_add(1, std::memory_order_relaxed);
    } else {
      next_offset_ = offset;  // the only leader: nothing was appended after it
      log::Error("dirty log write failed: {}", s.ToString());
    }
    batch->done = true;
    batch->status = s;
    leader_active_ = false;
    cv_.notify_all();
  }
  return b->status;
}

void DirtyLog::AppendRecord(const FileId& id, uint64_t chunk) {
  format::LogRecord r{id, chunk, kWindow};
  size_t off = pending_->records.size();
  pending_->records.resize(off + format::kLogRecordSize);
  format::EncodeLogRecord(*auth_, r, pending_->records.data() + off);
  appended_.fetch_add(1, std::memory_order_relaxed);
  for (uint64_t c = chunk; c < chunk + kWindow; ++c) {
    auto [e, inserted] = entries_.try_emplace(Key{id, c});
    if (inserted) e->second = Entry{std::make_shared<ChunkSyncState>(), pending_};
  }
}

Result<std::shared_ptr<ChunkSyncState>> DirtyLog::Ensure(const FileId& id, uint64_t chunk) {
  if (fd_ < 0) return FailedPrecondition("dirty log is not open for writing");
  std::unique_lock<std::mutex> l(mu_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto it = entries_.find(Key{id, chunk});
    if (it == entries_.end()) {
      AppendRecord(id, chunk);
      it = entries_.find(Key{id, chunk});
    }
    std::shared_ptr<Batch> batch = it->second.batch;
    std::shared_ptr<ChunkSyncState> state = it->second.state;
    Status s = WaitDurable(l, batch);
    if (s.ok()) return state;
    // The record was not written: forget every entry of that batch, retry once.
    for (auto e = entries_.begin(); e != entries_.end();) {
      e = e->second.batch == batch ? entries_.erase(e) : std::next(e);
    }
    if (attempt == 1) return s;
  }
  return Internal("unreachable");
}

Result<FileId> DirtyLog::NewFileId() {
  if (fd_ < 0) return FailedPrecondition("dirty log is not open for writing");
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    if (reserve_batch_ && reserve_batch_->done) {
      if (reserve_batch_->status.ok() && !reserved_.empty()) {
        FileId id = reserved_.back();
        reserved_.pop_back();
        return id;
      }
      Status failed = reserve_batch_->status;
      reserve_batch_.reset();
      reserved_.clear();  // their entries were dropped with the failed batch (or handed out)
      if (!failed.ok()) {
        for (auto e = entries_.begin(); e != entries_.end();) {
          e = e->second.batch->done && !e->second.batch->status.ok() ? entries_.erase(e) : std::next(e);
        }
        return failed;
      }
    }
    if (!reserve_batch_) {
      for (size_t i = 0; i < kReserve; ++i) {
        FileId id = crypto::RandomArray<16>();
        AppendRecord(id, 0);
        reserved_.push_back(id);
      }
      reserve_batch_ = pending_;
    }
    std::shared_ptr<Batch> batch = reserve_batch_;
    (void)WaitDurable(l, batch);  // the status is read from the batch above
  }
}

std::vector<std::pair<format::LogRecord, std::shared_ptr<ChunkSyncState>>> DirtyLog::DirtyEntries() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::pair<format::LogRecord, std::shared_ptr<ChunkSyncState>>> out;
  for (auto& [k, e] : entries_) {
    if (e.state->Dirty()) out.push_back({format::LogRecord{k.id, k.chunk, 1}, e.state});
  }
  return out;
}

Bytes DirtyLog::EncodeRecords(std::vector<format::LogRecord> records) const {
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return a.id != b.id ? a.id < b.id : a.first < b.first;
  });
  std::vector<format::LogRecord> merged;
  for (const auto& r : records) {
    if (!merged.empty() && merged.back().id == r.id && merged.back().first + merged.back().count >= r.first &&
        merged.back().count + r.count <= 65536) {
      uint64_t end = std::max(merged.back().first + merged.back().count, r.first + r.count);
      merged.back().count = uint32_t(end - merged.back().first);
    } else {
      merged.push_back(r);
    }
  }
  Bytes out(merged.size() * format::kLogRecordSize);
  for (size_t i = 0; i < merged.size(); ++i) {
    format::EncodeLogRecord(*auth_, merged[i], out.data() + i * format::kLogRecordSize);
  }
  return out;
}

Status DirtyLog::Compact() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !leader_active_; });
  std::vector<format::LogRecord> keep = recovered_ ? std::vector<format::LogRecord>{} : previous_;
  // The reserve leaves with the clean chunks: the next NewFileId logs a new
  // one (one commit per compaction, which comes every compact_after_ records).
  reserved_.clear();
  reserve_batch_.reset();
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.state->Dirty() || !it->second.batch->done) {
      keep.push_back({it->first.id, it->first.chunk, 1});
      ++it;
    } else {
      it->second.state->live.store(false);
      it = entries_.erase(it);
    }
  }
  Bytes records = EncodeRecords(keep);
  CFS_ASSIGN_OR_RETURN(int tmp, backing_->OpenAt(dirfd_, kLogTmpName, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  Status s = WriteHeader(tmp, format::LogState::kOpen);
  if (s.ok()) s = backing_->PWrite(tmp, records.data(), records.size(), format::kLogRecordsOffset);
  if (s.ok()) s = backing_->Fsync(tmp, true);
  if (s.ok()) s = backing_->RenameAt(dirfd_, kLogTmpName, dirfd_, kLogName, 0);
  if (s.ok()) s = backing_->Fsync(dirfd_, false);
  if (!s.ok()) {
    (void)backing_->Close(tmp);
    return s.WithContext("compacting the dirty log");
  }
  (void)backing_->Close(fd_);
  fd_ = tmp;
  next_offset_ = format::kLogRecordsOffset + records.size();
  header_open_ = true;
  appended_.store(records.size() / format::kLogRecordSize);
  return Status::Ok();
}

Status DirtyLog::MarkClean() {
  if (fd_ < 0) return Status::Ok();
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !leader_active_; });
  if (!recovered_) return Status::Ok();  // keep the previous run's chunks for recovery
  for (auto& [k, e] : entries_) e.state->live.store(false);
  entries_.clear();
  reserved_.clear();
  reserve_batch_.reset();
  CFS_RETURN_IF_ERROR(backing_->Ftruncate(fd_, format::kLogRecordsOffset));
  CFS_RETURN_IF_ERROR(WriteHeader(fd_, format::LogState::kClean));
  CFS_RETURN_IF_ERROR(backing_->Fsync(fd_, true));
  header_open_ = false;
  next_offset_ = format::kLogRecordsOffset;
  appended_.store(0);
  return Status::Ok();
}

}  // namespace cfs::store
