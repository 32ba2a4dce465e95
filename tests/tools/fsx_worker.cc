// fsx worker: the random operations and their model (see fsx_worker.h).
#include "fsx_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>

namespace fsx {
namespace {

constexpr const char* kOpNames[kOpCount] = {
    "write", "read", "truncate", "fallocate", "punch", "mmap_read", "mmap_write",
    "rename", "rename_over", "link", "unlink_link", "fsync", "fdatasync", "reopen",
    "stat", "direct_write", "direct_read", "shared_write", "shared_read", "shared_punch"};
constexpr unsigned kOpWeights[kOpCount] = {22, 18, 5, 5, 4, 5, 5, 2, 2, 3, 2, 2, 2, 4,
                                           3, 3, 3, 6, 5, 1};
constexpr size_t kLogTail = 40;
constexpr uint64_t kMaxDirect = 64 * 1024;

std::mutex g_fail_mu;  // serializes failure reports

std::string Hex(const uint8_t* p, size_t n) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < n; ++i) {
    snprintf(b, sizeof b, "%02x", p[i]);
    s += b;
  }
  return s;
}

std::string Fmt(const char* op, const std::string& name, uint64_t off, uint64_t len) {
  return std::string(op) + " " + name + " off=" + std::to_string(off) + " len=" + std::to_string(len);
}

}  // namespace

std::string OpCounts::Summary() const {
  std::string s;
  for (int i = 0; i < kOpCount; ++i) {
    if (!s.empty()) s += ' ';
    s += std::string(kOpNames[i]) + "=" + std::to_string(n[i].load());
  }
  return s;
}

Worker::Worker(const Options& opt, unsigned id, OpCounts* counts)
    : opt_(opt), id_(id), counts_(counts), rng_(Mix64(opt.seed) ^ Mix64(id + 1)) {
  buf_.resize(opt_.max_size + 4096);
  if (posix_memalign(reinterpret_cast<void**>(&abuf_), 4096, kMaxDirect) != 0) Fail("posix_memalign");
  for (unsigned i = 0; i < opt_.files_per_thread; ++i) {
    File f;
    f.names.push_back(Fresh("f"));
    f.fd = open(Path(f.names[0]).c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    Check(f.fd >= 0, "create " + f.names[0]);
    files_.push_back(std::move(f));
  }
  if (opt_.shared) {
    shared_fd_ = open(Path("fsx.shared").c_str(), O_RDWR);
    Check(shared_fd_ >= 0, "open fsx.shared");
    shared_base_ = id_ * opt_.shared_region;
    shared_model_.assign(opt_.shared_region, 0);
  }
}

Worker::~Worker() { free(abuf_); }

std::string Worker::Fresh(const char* kind) {
  return "fsx." + std::to_string(opt_.seed) + ".t" + std::to_string(id_) + "." + kind +
         std::to_string(next_name_++);
}

void Worker::Log(const std::string& entry) {
  log_.push_back("#" + std::to_string(opno_) + " " + entry);
  if (log_.size() > kLogTail) log_.pop_front();
}

void Worker::Fail(const std::string& msg) {
  std::lock_guard<std::mutex> lock(g_fail_mu);
  fflush(stdout);
  fprintf(stderr, "fsx: FAILED in thread %u at op #%llu (seed %llu, dir %s): %s\n", id_,
          static_cast<unsigned long long>(opno_), static_cast<unsigned long long>(opt_.seed),
          opt_.dir.c_str(), msg.c_str());
  fprintf(stderr, "fsx: last %zu operations of thread %u (newest last):\n", log_.size(), id_);
  for (const auto& e : log_) fprintf(stderr, "  %s\n", e.c_str());
  fflush(stderr);
  _exit(1);
}

void Worker::Check(bool ok, const std::string& what) {
  if (!ok) Fail(what + ": " + ErrnoName(errno));
}

void Worker::Compare(const std::string& what, uint64_t off, const uint8_t* got, size_t got_len,
                     const uint8_t* want, size_t want_len) {
  size_t n = std::min(got_len, want_len);
  size_t i = 0;
  while (i < n && got[i] == want[i]) ++i;
  if (i == n && got_len == want_len) return;
  std::string msg = what + ": ";
  if (i < n) {
    size_t last = n;
    while (last > i && got[last - 1] == want[last - 1]) --last;
    size_t k = std::min<size_t>(16, n - i);
    msg += "first differing byte at file offset " + std::to_string(off + i) +
           " (last at " + std::to_string(off + last - 1) + ")\n  expected " +
           Hex(want + i, k) + "\n  got      " + Hex(got + i, k);
  } else {
    msg += "length differs at file offset " + std::to_string(off + n) + ": got " +
           std::to_string(got_len) + " bytes, expected " + std::to_string(want_len);
  }
  Fail(msg);
}

uint64_t Worker::PickLen() {
  switch (rng_.Below(10)) {
    case 0: case 1: return 1 + rng_.Below(512);
    case 2: return 512 * (1 + rng_.Below(8));
    case 3: case 4: return 4096 * (1 + rng_.Below(4));
    case 5: case 6: return 1 + rng_.Below(65536);
    case 7: case 8: return 4096 * (1 + rng_.Below(64));
    default: return 1 + rng_.Below(512 * 1024);
  }
}

uint64_t Worker::PickOff(uint64_t size) {
  const uint64_t m = opt_.max_size;
  uint64_t off;
  switch (rng_.Below(6)) {
    case 0: off = rng_.Below(m); break;
    case 1: off = rng_.Below(m / 512) * 512; break;
    case 2: off = rng_.Below(m / 4096) * 4096; break;
    case 3: {  // near end of file
      uint64_t d = rng_.Below(8192);
      off = rng_.Percent(50) ? (size > d ? size - d : 0) : size + d;
      break;
    }
    case 4: {  // near a 1 MiB chunk boundary
      uint64_t b = (1 + rng_.Below(std::max<uint64_t>(1, m >> 20))) << 20;
      uint64_t d = rng_.Below(8192);
      off = rng_.Percent(50) ? b - d : b + d;
      break;
    }
    default: off = size == 0 ? 0 : rng_.Below(size); break;
  }
  return std::min(off, m - 1);
}

Op Worker::PickOp() {
  for (;;) {
    unsigned total = 0;
    for (unsigned w : kOpWeights) total += w;
    uint64_t r = rng_.Below(total);
    int op = 0;
    while (r >= kOpWeights[op]) r -= kOpWeights[op++];
    switch (op) {
      case kFallocate: if (!opt_.fallocate) continue; break;
      case kPunch: case kSharedPunch: if (!opt_.punch) continue; break;
      case kMmapRead: case kMmapWrite: if (!opt_.mmap) continue; break;
      case kRename: case kRenameOver: if (!opt_.rename) continue; break;
      case kLink: case kUnlinkLink: if (!opt_.link) continue; break;
      case kDirectRead: case kDirectWrite: if (!opt_.direct) continue; break;
      case kSharedWrite: case kSharedRead: if (!opt_.shared) continue; break;
      default: break;
    }
    return static_cast<Op>(op);
  }
}

void Worker::Run(uint64_t ops) {
  for (opno_ = 1; opno_ <= ops; ++opno_) {
    Op op = PickOp();
    counts_->n[op].fetch_add(1, std::memory_order_relaxed);
    DoOp(op);
  }
  VerifyAll();
}

void Worker::DoOp(Op op) {
  File& f = files_[rng_.Below(files_.size())];
  switch (op) {
    case kWrite: DoWrite(f); break;
    case kRead: DoRead(f); break;
    case kTruncate: DoTruncate(f); break;
    case kFallocate: DoFallocate(f, false); break;
    case kPunch: DoFallocate(f, true); break;
    case kMmapRead: DoMmapRead(f); break;
    case kMmapWrite: DoMmapWrite(f); break;
    case kRename: DoRename(f, false); break;
    case kRenameOver: DoRename(f, true); break;
    case kLink: DoLink(f); break;
    case kUnlinkLink: DoUnlinkLink(f); break;
    case kFsync: case kFdatasync:
      Log(std::string(op == kFsync ? "fsync " : "fdatasync ") + f.names[0]);
      Check((op == kFsync ? fsync(f.fd) : fdatasync(f.fd)) == 0, "fsync " + f.names[0]);
      break;
    case kReopen: DoReopen(f); break;
    case kStat: DoStat(f); break;
    case kDirectWrite: DoDirect(f, true); break;
    case kDirectRead: DoDirect(f, false); break;
    default: DoShared(op); break;
  }
}

void Worker::DoWrite(File& f) {
  uint64_t off = PickOff(f.data.size());
  uint64_t len = std::min(PickLen(), opt_.max_size - off);
  Log(Fmt("write", f.names[0], off, len));
  rng_.Fill(buf_.data(), len);
  errno = PWriteFull(f.fd, buf_.data(), len, off);
  Check(errno == 0, "pwrite");
  if (off + len > f.data.size()) f.data.resize(off + len, 0);
  std::memcpy(f.data.data() + off, buf_.data(), len);
}

void Worker::DoRead(File& f) {
  uint64_t off = PickOff(f.data.size());
  uint64_t len = std::min<uint64_t>(PickLen(), buf_.size());
  Log(Fmt("read", f.names[0], off, len));
  size_t got = 0;
  errno = PReadFull(f.fd, buf_.data(), len, off, &got);
  Check(errno == 0, "pread");
  uint64_t size = f.data.size();
  size_t want = off >= size ? 0 : std::min(len, size - off);
  Compare("read " + f.names[0], off, buf_.data(), got, f.data.data() + std::min(off, size), want);
}

void Worker::DoTruncate(File& f) {
  const uint64_t m = opt_.max_size, size = f.data.size();
  uint64_t n;
  switch (rng_.Below(4)) {
    case 0: n = rng_.Below(8192); break;
    case 1: n = rng_.Below(m / 4096 + 1) * 4096; break;
    case 2: n = rng_.Below(m + 1); break;
    default: n = size + rng_.Below(16384); n = n > 8192 ? n - 8192 : 0; break;
  }
  n = std::min(n, m);
  bool by_path = rng_.Percent(30);
  Log(Fmt(by_path ? "truncate(path)" : "ftruncate", f.names[0], n, 0));
  int rc = by_path ? truncate(Path(f.names[rng_.Below(f.names.size())]).c_str(), static_cast<off_t>(n))
                   : ftruncate(f.fd, static_cast<off_t>(n));
  Check(rc == 0, "truncate");
  f.data.resize(n, 0);
}

void Worker::DoFallocate(File& f, bool punch) {
  uint64_t off = PickOff(f.data.size());
  uint64_t len = std::min(PickLen(), opt_.max_size - off);
  int mode;
  if (punch) {
    mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  } else {
    static constexpr int kModes[] = {0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE,
                                     FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};
    mode = kModes[rng_.Below(opt_.zero_range ? 4 : 2)];
  }
  Log(Fmt(("fallocate(mode=" + std::to_string(mode) + ")").c_str(), f.names[0], off, len));
  Check(fallocate(f.fd, mode, static_cast<off_t>(off), static_cast<off_t>(len)) == 0, "fallocate");
  uint64_t size = f.data.size();
  if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) && off < size)
    std::fill(f.data.begin() + off, f.data.begin() + std::min(size, off + len), 0);
  if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > size) f.data.resize(off + len, 0);
}

void Worker::DoMmapRead(File& f) {
  uint64_t size = f.data.size();
  if (size == 0) return DoWrite(f);
  uint64_t off = rng_.Below(size), len = std::min(PickLen(), size - off);
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t start = off / page * page, mlen = off + len - start;
  Log(Fmt("mmap_read", f.names[0], off, len));
  void* p = mmap(nullptr, mlen, PROT_READ, MAP_SHARED, f.fd, static_cast<off_t>(start));
  Check(p != MAP_FAILED, "mmap(PROT_READ)");
  std::memcpy(buf_.data(), static_cast<uint8_t*>(p) + (off - start), len);
  munmap(p, mlen);
  Compare("mmap read " + f.names[0], off, buf_.data(), len, f.data.data() + off, len);
}

void Worker::DoMmapWrite(File& f) {
  uint64_t size = f.data.size();
  if (size == 0) return DoWrite(f);
  uint64_t off = rng_.Below(size), len = std::min(PickLen(), size - off);
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t start = off / page * page, mlen = off + len - start;
  Log(Fmt("mmap_write", f.names[0], off, len));
  void* p = mmap(nullptr, mlen, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, static_cast<off_t>(start));
  Check(p != MAP_FAILED, "mmap(PROT_WRITE, MAP_SHARED)");
  rng_.Fill(f.data.data() + off, len);
  std::memcpy(static_cast<uint8_t*>(p) + (off - start), f.data.data() + off, len);
  Check(msync(p, mlen, MS_SYNC) == 0, "msync");
  munmap(p, mlen);
}

void Worker::DoRename(File& f, bool over) {
  size_t idx = rng_.Below(f.names.size());
  std::string to = Fresh(over ? "junk" : "n");
  if (over) {  // rename over an existing file that is not ours
    int fd = open(Path(to).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    Check(fd >= 0, "create " + to);
    Check(write(fd, "junk", 4) == 4, "write " + to);
    close(fd);
  }
  Log("rename " + f.names[idx] + " -> " + to);
  Check(rename(Path(f.names[idx]).c_str(), Path(to).c_str()) == 0, "rename");
  f.names[idx] = to;
  struct stat a, b;
  Check(stat(Path(to).c_str(), &a) == 0 && fstat(f.fd, &b) == 0, "stat after rename");
  if (a.st_ino != b.st_ino) Fail("after rename, " + to + " is not the renamed file");
}

void Worker::DoLink(File& f) {
  if (f.names.size() >= 4) return DoUnlinkLink(f);
  std::string from = f.names[rng_.Below(f.names.size())], to = Fresh("l");
  Log("link " + from + " -> " + to);
  Check(link(Path(from).c_str(), Path(to).c_str()) == 0, "link");
  f.names.push_back(to);
  int fd = open(Path(to).c_str(), O_RDONLY);
  Check(fd >= 0, "open link " + to);
  struct stat st;
  Check(fstat(fd, &st) == 0, "fstat link");
  if (st.st_nlink != f.names.size())
    Fail("link count of " + to + " is " + std::to_string(st.st_nlink) + ", expected " +
         std::to_string(f.names.size()));
  uint64_t size = f.data.size(), off = size ? rng_.Below(size) : 0;
  uint64_t len = std::min(PickLen(), size - off);
  size_t got = 0;
  errno = PReadFull(fd, buf_.data(), len, off, &got);
  Check(errno == 0, "pread via link");
  close(fd);
  Compare("read via link " + to, off, buf_.data(), got, f.data.data() + off, len);
}

void Worker::DoUnlinkLink(File& f) {
  if (f.names.size() < 2) return DoLink(f);
  size_t idx = rng_.Below(f.names.size());
  Log("unlink " + f.names[idx]);
  Check(unlink(Path(f.names[idx]).c_str()) == 0, "unlink");
  f.names.erase(f.names.begin() + static_cast<long>(idx));
  DoStat(f);
}

void Worker::DoReopen(File& f) {
  close(f.fd);
  if (f.dfd >= 0) close(f.dfd), f.dfd = -1;
  const std::string& name = f.names[rng_.Below(f.names.size())];
  Log("reopen " + name);
  f.fd = open(Path(name).c_str(), O_RDWR);
  Check(f.fd >= 0, "reopen " + name);
  DoStat(f);
}

void Worker::DoStat(File& f) {
  struct stat st;
  Check(fstat(f.fd, &st) == 0, "fstat");
  if (static_cast<uint64_t>(st.st_size) != f.data.size())
    Fail("size of " + f.names[0] + " is " + std::to_string(st.st_size) + ", expected " +
         std::to_string(f.data.size()));
  if (st.st_nlink != f.names.size())
    Fail("link count of " + f.names[0] + " is " + std::to_string(st.st_nlink) + ", expected " +
         std::to_string(f.names.size()));
}

void Worker::DoDirect(File& f, bool write) {
  const uint64_t align = rng_.Percent(50) ? 512 : 4096, size = f.data.size();
  uint64_t limit = std::min(opt_.max_size, size + 65536);
  uint64_t off = rng_.Below(limit / align) * align;
  uint64_t len = std::min(align * (1 + rng_.Below(kMaxDirect / align)), (opt_.max_size - off) / align * align);
  if (len == 0) return;
  if (f.dfd < 0) {
    f.dfd = open(Path(f.names[0]).c_str(), O_RDWR | O_DIRECT);
    Check(f.dfd >= 0, "open O_DIRECT " + f.names[0]);
  }
  Log(Fmt(write ? "direct_write" : "direct_read", f.names[0], off, len));
  if (write) {
    rng_.Fill(abuf_, len);
    errno = PWriteFull(f.dfd, abuf_, len, off);
    Check(errno == 0, "pwrite(O_DIRECT)");
    if (off + len > size) f.data.resize(off + len, 0);
    std::memcpy(f.data.data() + off, abuf_, len);
    return;
  }
  size_t got = 0;
  errno = PReadFull(f.dfd, abuf_, len, off, &got);
  Check(errno == 0, "pread(O_DIRECT)");
  size_t want = off >= size ? 0 : std::min(len, size - off);
  Compare("O_DIRECT read " + f.names[0], off, abuf_, got, f.data.data() + std::min(off, size), want);
}

void Worker::DoShared(Op op) {
  const uint64_t r = opt_.shared_region;
  uint64_t rel = rng_.Below(r), len = std::min(PickLen(), r - rel), off = shared_base_ + rel;
  if (op == kSharedWrite) {
    Log(Fmt("write", "fsx.shared", off, len));
    rng_.Fill(shared_model_.data() + rel, len);
    errno = PWriteFull(shared_fd_, shared_model_.data() + rel, len, off);
    Check(errno == 0, "pwrite fsx.shared");
  } else if (op == kSharedPunch) {
    Log(Fmt("punch", "fsx.shared", off, len));
    Check(fallocate(shared_fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                    static_cast<off_t>(len)) == 0, "punch fsx.shared");
    std::fill(shared_model_.begin() + rel, shared_model_.begin() + rel + len, 0);
  } else {
    Log(Fmt("read", "fsx.shared", off, len));
    size_t got = 0;
    errno = PReadFull(shared_fd_, buf_.data(), len, off, &got);
    Check(errno == 0, "pread fsx.shared");
    Compare("read fsx.shared", off, buf_.data(), got, shared_model_.data() + rel, len);
  }
}

void Worker::VerifyAll() {
  ++opno_;
  for (File& f : files_) {
    Log("verify " + f.names[0]);
    DoStat(f);
    size_t got = 0;
    errno = PReadFull(f.fd, buf_.data(), f.data.size() + 1, 0, &got);
    Check(errno == 0, "final read " + f.names[0]);
    Compare("final read " + f.names[0], 0, buf_.data(), got, f.data.data(), f.data.size());
    close(f.fd);
    if (f.dfd >= 0) close(f.dfd);
    for (const auto& n : f.names)
      if (!opt_.keep) Check(unlink(Path(n).c_str()) == 0, "unlink " + n);
  }
  if (shared_fd_ >= 0) {
    Log("verify fsx.shared");
    size_t got = 0;
    errno = PReadFull(shared_fd_, buf_.data(), opt_.shared_region, shared_base_, &got);
    Check(errno == 0, "final read fsx.shared");
    Compare("final read fsx.shared", shared_base_, buf_.data(), got, shared_model_.data(),
            shared_model_.size());
    close(shared_fd_);
  }
}

}  // namespace fsx
