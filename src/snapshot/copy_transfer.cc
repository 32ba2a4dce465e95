#include "snapshot/copy_transfer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "common/log.h"
#include "snapshot/volume_copy.h"
#include "store/tree_fd.h"

namespace cfs::snapshot {
namespace {

constexpr size_t kPage = 4096;

bool IsChunkName(const std::string& name) {
  if (name.empty() || name.size() > 10) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<store::ScopedFd> OpenDirAt(store::Backing* b, int dirfd, const std::string& name) {
  CFS_ASSIGN_OR_RETURN(int fd, b->OpenAt(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  return store::ScopedFd(b, fd);
}

bool AllZero(const uint8_t* p, size_t n) {
  // memcmp against itself shifted by 16 runs at memory speed; the first
  // 16 bytes are checked directly (ciphertext pages fail there at once).
  constexpr size_t kHead = 16;
  size_t head = std::min(n, kHead);
  for (size_t i = 0; i < head; ++i) {
    if (p[i] != 0) return false;
  }
  return n <= kHead || std::memcmp(p, p + kHead, n - kHead) == 0;
}

// Writes `data` to fd, leaving all-zero pages as holes (chunk files are
// sparse: unwritten blocks of a chunk are holes on the source too). Each
// run of non-zero pages is one pwrite.
Status WriteSparse(store::Backing* b, int fd, ByteView data) {
  size_t run = 0;  // start of the pending run of non-zero pages
  size_t off = 0;
  for (; off < data.size(); off += kPage) {
    size_t n = std::min(kPage, data.size() - off);
    if (!AllZero(data.data() + off, n)) continue;
    if (off > run) CFS_RETURN_IF_ERROR(b->PWrite(fd, data.data() + run, off - run, static_cast<off_t>(run)));
    run = off + n;
  }
  if (data.size() > run) {
    CFS_RETURN_IF_ERROR(b->PWrite(fd, data.data() + run, data.size() - run, static_cast<off_t>(run)));
  }
  return b->Ftruncate(fd, static_cast<off_t>(data.size()));
}

// Parses one manifest line "<rel> <size> <hex>"; false if malformed.
bool ParseManifestLine(const std::string& line, std::string* rel, uint64_t* size) {
  size_t a = line.find(' ');
  size_t c = line.rfind(' ');
  if (a == std::string::npos || c == a || line.size() - c - 1 != 64) return false;
  *rel = line.substr(0, a);
  std::string sz = line.substr(a + 1, c - a - 1);
  if (sz.empty() || sz.size() > 12 || !std::all_of(sz.begin(), sz.end(), ::isdigit)) return false;
  *size = std::stoull(sz);
  return rel->find("..") == std::string::npos && !rel->empty() && (*rel)[0] != '/';
}

}  // namespace

Result<std::vector<ChunkFile>> ListChunkFiles(store::Backing* b, const std::string& volume_dir) {
  std::vector<ChunkFile> out;
  CFS_ASSIGN_OR_RETURN(store::ScopedFd objects, OpenDirAt(b, AT_FDCWD, volume_dir + "/objects"));
  CFS_ASSIGN_OR_RETURN(std::vector<std::string> shards, b->ListDir(objects.get()));
  for (const auto& shard : shards) {
    CFS_ASSIGN_OR_RETURN(store::ScopedFd s, OpenDirAt(b, objects.get(), shard));
    CFS_ASSIGN_OR_RETURN(std::vector<std::string> files, b->ListDir(s.get()));
    for (const auto& file : files) {
      CFS_ASSIGN_OR_RETURN(store::ScopedFd f, OpenDirAt(b, s.get(), file));
      CFS_ASSIGN_OR_RETURN(std::vector<std::string> chunks, b->ListDir(f.get()));
      for (const auto& chunk : chunks) {
        if (!IsChunkName(chunk)) continue;
        CFS_ASSIGN_OR_RETURN(struct stat st, b->FstatAt(f.get(), chunk, AT_SYMLINK_NOFOLLOW));
        if (!S_ISREG(st.st_mode)) return DataLoss(fmt::format("objects/{}/{}/{} is not a regular file", shard, file, chunk));
        out.push_back({shard + "/" + file + "/" + chunk, static_cast<uint64_t>(st.st_size),
                       static_cast<uint64_t>(st.st_ino),
                       int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec});
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const ChunkFile& x, const ChunkFile& y) { return x.rel < y.rel; });
  return out;
}

std::vector<ChunkFile> ChunksToSend(std::vector<ChunkFile> all, const std::map<std::string, uint64_t>& done,
                                    uint64_t* skipped) {
  std::vector<ChunkFile> todo;
  for (auto& c : all) {
    auto it = done.find(c.rel);
    if (it != done.end() && it->second == c.size) {
      ++*skipped;
    } else {
      todo.push_back(std::move(c));
    }
  }
  return todo;
}

Status SyncReceivedVolume(store::Backing* b, const std::string& volume_dir) {
  CFS_ASSIGN_OR_RETURN(store::ScopedFd dir, OpenDirAt(b, AT_FDCWD, volume_dir));
  Status s = b->SyncFilesystem(dir.get());
  if (s.code() != Code::kUnimplemented) return s;
  return SyncVolumeCopy(b, volume_dir, true);
}

Status ReadChunkFile(store::Backing* b, int objects_fd, const std::string& rel, Bytes* data) {
  CFS_ASSIGN_OR_RETURN(int fd, b->OpenAt(objects_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  store::ScopedFd in(b, fd);
  CFS_ASSIGN_OR_RETURN(struct stat st, b->Fstat(fd));
  if (static_cast<uint64_t>(st.st_size) > kMaxChunkFileSize) {
    return DataLoss(fmt::format("objects/{} is {} bytes, too big for a chunk file", rel, st.st_size));
  }
  data->resize(static_cast<size_t>(st.st_size));
  for (size_t off = 0; off < data->size();) {
    CFS_ASSIGN_OR_RETURN(size_t got, b->PRead(fd, data->data() + off, data->size() - off, static_cast<off_t>(off)));
    if (got == 0) return DataLoss(fmt::format("objects/{} shrank while being read", rel));  // a source never does
    off += got;
  }
  return Status::Ok();
}

Result<std::unique_ptr<LocalReceiver>> LocalReceiver::Open(store::Backing* b, const std::string& dst,
                                                           const std::string& manifest_path) {
  CFS_ASSIGN_OR_RETURN(int objects, b->OpenAt(AT_FDCWD, dst + "/objects", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  store::ScopedFd objects_fd(b, objects);
  std::map<std::string, uint64_t> done;
  Result<std::string> text = ReadSmallFile(manifest_path, 1ull << 30);
  if (text.ok()) {
    size_t pos = 0;
    while (pos < text->size()) {
      size_t nl = text->find('\n', pos);
      if (nl == std::string::npos) break;  // a torn last line: that chunk is sent again
      std::string rel;
      uint64_t size = 0;
      if (ParseManifestLine(text->substr(pos, nl - pos), &rel, &size)) {
        Result<struct stat> st = b->FstatAt(objects, rel, AT_SYMLINK_NOFOLLOW);
        if (st.ok() && S_ISREG(st->st_mode) && static_cast<uint64_t>(st->st_size) == size) done[rel] = size;
      }
      pos = nl + 1;
    }
  } else if (text.status().code() != Code::kNotFound) {
    return text.status().WithContext("copy manifest");
  }
  CFS_ASSIGN_OR_RETURN(int mfd, b->OpenAt(AT_FDCWD, manifest_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  store::ScopedFd manifest_fd(b, mfd);
  std::unique_ptr<LocalReceiver> r(new LocalReceiver(b, std::move(objects_fd), std::move(manifest_fd)));
  r->done_ = std::move(done);
  return r;
}

Result<int> LocalReceiver::OpenChunkDir(const std::string& rel, bool create) {
  size_t s1 = rel.find('/');
  size_t s2 = rel.rfind('/');
  if (s1 == std::string::npos || s1 == s2) return InvalidArgument("bad chunk name " + rel);
  std::string shard = rel.substr(0, s1), dir = rel.substr(0, s2);
  if (create) {
    for (const std::string& d : {shard, dir}) {
      Status m = b_->MkdirAt(objects_fd_, d, 0700);
      if (!m.ok() && m.sys_errno() != EEXIST) return m;
    }
    std::lock_guard<std::mutex> lock(mu_);
    dirs_.insert(shard);
    dirs_.insert(dir);
  }
  return b_->OpenAt(objects_fd_, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

Status LocalReceiver::FsyncChunksAndDirs(const std::vector<Arrived>& batch) {
  for (const Arrived& a : batch) {
    CFS_ASSIGN_OR_RETURN(int fd, b_->OpenAt(objects_fd_, a.rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    store::ScopedFd f(b_, fd);
    CFS_RETURN_IF_ERROR(b_->Fsync(fd, false));
  }
  std::set<std::string> dirs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirs = dirs_;
  }
  for (const std::string& d : dirs) {
    Result<int> fd = b_->OpenAt(objects_fd_, d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (!fd.ok() && fd.status().sys_errno() == ENOENT) continue;
    CFS_RETURN_IF_ERROR(fd.status());
    store::ScopedFd dir(b_, *fd);
    CFS_RETURN_IF_ERROR(b_->Fsync(*fd, false));
  }
  return b_->Fsync(objects_fd_, false);
}

Status LocalReceiver::SyncAndRecord(std::vector<Arrived> batch) {
  // A few chunks (an incremental shipment, the tail of a copy): their own
  // fsyncs cost less than writing back whatever else the filesystem holds.
  Status synced = batch.size() < kSyncFsMinChunks ? Unimplemented("small batch") : b_->SyncFilesystem(objects_fd_);
  if (synced.code() == Code::kUnimplemented) synced = FsyncChunksAndDirs(batch);
  CFS_RETURN_IF_ERROR(synced);
  std::string lines;
  for (const Arrived& a : batch) {
    lines += fmt::format("{} {} {}\n", a.rel, a.size, HexEncode(ByteView(a.digest.data(), a.digest.size())));
  }
  if (lines.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  return b_->PWrite(manifest_fd_, lines.data(), lines.size(), 0);  // O_APPEND
}

Status LocalReceiver::Receive(const std::string& rel, ByteView data, const crypto::Digest& sent) {
  crypto::Digest got = crypto::Sha256(data);
  if (!crypto::ConstantTimeEqual(ByteView(got.data(), got.size()), ByteView(sent.data(), sent.size()))) {
    return DataLoss(fmt::format("chunk objects/{} failed its SHA-256 check on arrival (sent {}, received {}); "
                                "nothing of it was kept",
                                rel, HexEncode(ByteView(sent.data(), 8)), HexEncode(ByteView(got.data(), 8))));
  }
  return Store(rel, data, got);
}

Status LocalReceiver::Deliver(const std::string& rel, ByteView data) { return Store(rel, data, crypto::Sha256(data)); }

Status LocalReceiver::Store(const std::string& rel, ByteView data, const crypto::Digest& got) {
  CFS_ASSIGN_OR_RETURN(int dfd, OpenChunkDir(rel, true));
  store::ScopedFd dir(b_, dfd);
  std::string name = rel.substr(rel.rfind('/') + 1);
  std::string part = name + ".part";
  CFS_ASSIGN_OR_RETURN(int fd, b_->OpenAt(dfd, part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  store::ScopedFd out(b_, fd);
  CFS_RETURN_IF_ERROR(WriteSparse(b_, fd, data));
  // Rename, never write in place: the destination may share the old chunk
  // by hard link with an earlier image (replica shipping). Not yet durable:
  // the batch's SyncAndRecord makes it so before the manifest names it.
  CFS_RETURN_IF_ERROR(b_->RenameAt(dfd, part, dfd, name, 0));
  std::vector<Arrived> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back({rel, data.size(), got});
    pending_bytes_ += data.size();
    if (pending_bytes_ < kSyncBatchBytes) return Status::Ok();
  }
  // This chunk closed a batch: make it durable while the other workers go
  // on writing the next one.
  std::lock_guard<std::mutex> sync_lock(sync_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_bytes_ < kSyncBatchBytes) return Status::Ok();  // another worker took it
    batch.swap(pending_);
    pending_bytes_ = 0;
  }
  return SyncAndRecord(std::move(batch));
}

Status LocalReceiver::Remove(const std::string& rel) {
  Status s = b_->UnlinkAt(objects_fd_, rel, 0);
  if (!s.ok() && s.sys_errno() != ENOENT) return s;
  std::lock_guard<std::mutex> lock(mu_);
  dirs_.insert(rel.substr(0, rel.rfind('/')));
  return Status::Ok();
}

Status LocalReceiver::Finish() {
  std::lock_guard<std::mutex> sync_lock(sync_mu_);
  std::vector<Arrived> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(pending_);
    pending_bytes_ = 0;
  }
  // Directories (new chunk dirs, removals) need their pass even when no
  // chunk is pending: SyncAndRecord with an empty batch still syncs.
  CFS_RETURN_IF_ERROR(SyncAndRecord(std::move(batch)));
  return b_->Fsync(manifest_fd_, false);
}

namespace {

// The shared state of one TransferChunks call.
struct Job {
  store::Backing* b;
  int objects_fd;
  const std::vector<ChunkFile>* chunks;
  ChunkReceiver* receiver;
  const TransferOptions* options;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;  // guards status, progress, arrived
  Status status;
  TransferProgress* progress;
  int64_t arrived = 0;
};

// `data`: the worker's buffer, reused from chunk to chunk.
Status SendOne(Job& job, size_t index, Bytes& data) {
  const ChunkFile& c = (*job.chunks)[index];
  CFS_RETURN_IF_ERROR(ReadChunkFile(job.b, job.objects_fd, c.rel, &data));
  if (static_cast<int64_t>(index) == job.options->corrupt_chunk && !data.empty()) {
    // Test hook: a bit flipped in transit, after the sender hashed it; the
    // receiver's check on arrival (Receive, as over TLS) must refuse it.
    crypto::Digest sent = crypto::Sha256(data);
    data[data.size() / 2] ^= 0x01;
    log::Warn("copy: test hook flipped one bit of chunk {} in transit", c.rel);
    CFS_RETURN_IF_ERROR(job.receiver->Receive(c.rel, data, sent));
  } else {
    CFS_RETURN_IF_ERROR(job.receiver->Deliver(c.rel, data));
  }
  std::lock_guard<std::mutex> lock(job.mu);
  ++job.progress->chunks_done;
  job.progress->bytes_done += data.size();
  ++job.arrived;
  if (job.options->progress) job.options->progress(*job.progress);
  if (job.options->stop_after >= 0 && job.arrived >= job.options->stop_after) {
    return Unavailable("interrupted (test hook CIPHERFS_TEST_COPY_STOP_AFTER)");
  }
  return Status::Ok();
}

void Worker(Job& job) {
  Bytes buffer;
  while (!job.failed.load()) {
    if (job.options->stop != nullptr && job.options->stop->load()) {
      std::lock_guard<std::mutex> lock(job.mu);
      if (job.status.ok()) job.status = Unavailable("interrupted");
      job.failed = true;
      return;
    }
    size_t i = job.next.fetch_add(1);
    if (i >= job.chunks->size()) return;
    Status s = SendOne(job, i, buffer);
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(job.mu);
      if (job.status.ok()) job.status = s;
      job.failed = true;
      return;
    }
  }
}

}  // namespace

Status TransferChunks(store::Backing* b, const std::string& src_volume_dir, const std::vector<ChunkFile>& chunks,
                      ChunkReceiver* receiver, const TransferOptions& options, TransferProgress* progress) {
  TransferProgress local;
  if (progress == nullptr) progress = &local;
  progress->chunks_total = chunks.size();
  for (const auto& c : chunks) progress->bytes_total += c.size;
  CFS_ASSIGN_OR_RETURN(store::ScopedFd objects, OpenDirAt(b, AT_FDCWD, src_volume_dir + "/objects"));
  Job job{b, objects.get(), &chunks, receiver, &options};
  job.progress = progress;
  unsigned n = std::max(1u, std::min(options.threads, 16u));
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < n; ++i) threads.emplace_back([&job] { Worker(job); });
  Worker(job);
  for (auto& t : threads) t.join();
  Status finish = receiver->Finish();
  if (!job.status.ok()) return job.status;
  return finish;
}

}  // namespace cfs::snapshot
