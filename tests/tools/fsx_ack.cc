// fsx kill-test modes.
//
// Writer (--ack-log FILE): each thread writes to its own files (random
// offsets and sizes, 512-byte and unaligned included), and for every write
// appends to the log an intent line before the pwrite and an ack line after
// its fdatasync returned:
//   S <seed>                      header
//   I <file> <write-id> <off> <len>
//   A <file> <write-id>
// The data of a write is a pure function of (seed, write id, offset), so the
// verifier can regenerate it. When the daemon is killed, the writer's calls
// fail (ENOTCONN) and it exits with code 3.
//
// Verifier (--verify-ack FILE): for every file, every acknowledged write
// (in log order) must be there; the range of the one write per file that
// was in flight (intent without ack) may hold old or new bytes; every byte
// of every file must read without error (no EIO).
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fsx_common.h"

namespace fsx {
namespace {

uint8_t PatternByte(uint64_t seed, uint64_t wid, uint64_t off) {
  uint64_t v = Mix64(seed ^ Mix64(wid) ^ ((off >> 3) * 0x9E3779B97F4A7C15ull));
  return static_cast<uint8_t>(v >> ((off & 7) * 8));
}

void FillPattern(uint64_t seed, uint64_t wid, uint64_t off, uint8_t* buf, size_t len) {
  for (size_t i = 0; i < len; ++i) buf[i] = PatternByte(seed, wid, off + i);
}

bool AppendLine(int fd, const std::string& line) {
  return write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
}

// One writer thread. Returns 0 when done, 3 when the target failed.
int AckWriterThread(const Options& opt, unsigned t, uint64_t ops, int logfd) {
  Rng rng(Mix64(opt.seed) ^ Mix64(1000 + t));
  std::vector<std::string> names;
  std::vector<int> fds;
  for (unsigned i = 0; i < opt.files_per_thread; ++i) {
    names.push_back("ack.t" + std::to_string(t) + ".f" + std::to_string(i));
    int fd = open((opt.dir + "/" + names.back()).c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || fsync(fd) != 0) {
      fprintf(stderr, "fsx: ack writer: create %s: %s\n", names.back().c_str(), ErrnoName(errno).c_str());
      return 3;
    }
    fds.push_back(fd);
  }
  int dirfd = open(opt.dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dirfd < 0 || fsync(dirfd) != 0) {
    fprintf(stderr, "fsx: ack writer: fsync dir: %s\n", ErrnoName(errno).c_str());
    return 3;
  }
  close(dirfd);
  std::vector<uint8_t> buf;
  for (uint64_t n = 0; n < ops; ++n) {
    size_t fi = rng.Below(names.size());
    uint64_t wid = (static_cast<uint64_t>(t) << 40) | n;
    uint64_t len = rng.Percent(30) ? 512 * (1 + rng.Below(8)) : 1 + rng.Below(rng.Percent(50) ? 4096 : 65536);
    uint64_t off = rng.Percent(50) ? rng.Below(opt.max_size / 512) * 512 : rng.Below(opt.max_size);
    len = std::min(len, opt.max_size - off);
    buf.resize(len);
    FillPattern(opt.seed, wid, off, buf.data(), len);
    std::string id = names[fi] + " " + std::to_string(wid);
    if (!AppendLine(logfd, "I " + id + " " + std::to_string(off) + " " + std::to_string(len) + "\n"))
      return 2;
    int err = PWriteFull(fds[fi], buf.data(), len, off);
    if (err == 0 && fdatasync(fds[fi]) != 0) err = errno;
    if (err != 0) {
      fprintf(stderr, "fsx: ack writer thread %u: write/fdatasync: %s (expected when the daemon is killed)\n",
              t, ErrnoName(err).c_str());
      return 3;
    }
    if (!AppendLine(logfd, "A " + id + "\n")) return 2;
  }
  for (int fd : fds) close(fd);
  return 0;
}

struct Rec {
  uint64_t wid, off, len;
  bool acked;
};

// Checks one file against its log records. Returns the number of problems.
int VerifyFile(const Options& opt, uint64_t seed, const std::string& name, const std::vector<Rec>& recs) {
  std::vector<uint8_t> model;
  const Rec* pending = nullptr;
  size_t acked = 0;
  for (const Rec& r : recs) {
    if (!r.acked) {  // in flight; nothing after it on this file can be acked
      pending = &r;
      continue;
    }
    pending = nullptr;
    ++acked;
    if (r.off + r.len > model.size()) model.resize(r.off + r.len, 0);
    FillPattern(seed, r.wid, r.off, model.data() + r.off, r.len);
  }
  std::string path = opt.dir + "/" + name;
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    fprintf(stderr, "fsx: verify: open %s: %s\n", name.c_str(), ErrnoName(errno).c_str());
    return 1;
  }
  uint64_t lo = model.size(), hi = pending ? std::max(lo, pending->off + pending->len) : lo;
  std::vector<uint8_t> got(hi + 1);
  size_t n = 0;
  int problems = 0;
  // Read block by block so an EIO names its block; every block must read.
  for (uint64_t off = 0; off < got.size(); off += 4096) {
    size_t piece = 0;
    int err = PReadFull(fd, got.data() + off, std::min<uint64_t>(4096, got.size() - off), off, &piece);
    if (err != 0) {
      fprintf(stderr, "fsx: verify: %s: read of block at offset %llu failed: %s\n", name.c_str(),
              static_cast<unsigned long long>(off), ErrnoName(err).c_str());
      ++problems;
      continue;
    }
    n = off + piece;
    if (piece < 4096) break;
  }
  close(fd);
  if (n < lo || n > hi) {
    fprintf(stderr, "fsx: verify: %s: size %zu, expected %llu..%llu\n", name.c_str(), n,
            static_cast<unsigned long long>(lo), static_cast<unsigned long long>(hi));
    return problems + 1;
  }
  for (uint64_t o = 0; o < n; ++o) {
    uint8_t old = o < model.size() ? model[o] : 0;
    if (got[o] == old) continue;
    if (pending && o >= pending->off && o < pending->off + pending->len &&
        got[o] == PatternByte(seed, pending->wid, o))
      continue;
    fprintf(stderr, "fsx: verify: %s: byte at offset %llu is %02x, expected %02x (acknowledged write lost?)\n",
            name.c_str(), static_cast<unsigned long long>(o), got[o], old);
    return problems + 1;
  }
  printf("fsx: verify: %s: %zu acknowledged writes intact, size %zu%s\n", name.c_str(), acked, n,
         pending ? " (one write was in flight)" : "");
  return problems;
}

}  // namespace

int RunAckWriter(const Options& opt) {
  int logfd = open(opt.ack_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (logfd < 0) {
    fprintf(stderr, "fsx: cannot create %s: %s\n", opt.ack_log.c_str(), ErrnoName(errno).c_str());
    return 2;
  }
  AppendLine(logfd, "S " + std::to_string(opt.seed) + "\n");
  printf("fsx: ack writer: seed %llu, %u threads, log %s\n", static_cast<unsigned long long>(opt.seed),
         opt.threads, opt.ack_log.c_str());
  fflush(stdout);
  std::atomic<int> worst{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < opt.threads; ++t) {
    threads.emplace_back([&, t] {
      int rc = AckWriterThread(opt, t, opt.ops / opt.threads, logfd);
      int cur = worst.load();
      while (rc > cur && !worst.compare_exchange_weak(cur, rc)) {
      }
    });
  }
  for (auto& th : threads) th.join();
  close(logfd);
  return worst.load();
}

int RunAckVerify(const Options& opt) {
  std::ifstream in(opt.verify_ack);
  if (!in) {
    fprintf(stderr, "fsx: cannot read %s\n", opt.verify_ack.c_str());
    return 2;
  }
  uint64_t seed = 0;
  bool have_seed = false;
  std::map<std::string, std::vector<Rec>> files;
  std::map<std::pair<std::string, uint64_t>, size_t> index;  // (file, wid) -> record
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind, name;
    uint64_t wid = 0, off = 0, len = 0;
    ls >> kind;
    if (kind == "S" && (ls >> seed)) {
      have_seed = true;
    } else if (kind == "I" && (ls >> name >> wid >> off >> len)) {
      index[{name, wid}] = files[name].size();
      files[name].push_back({wid, off, len, false});
    } else if (kind == "A" && (ls >> name >> wid) && index.count({name, wid})) {
      files[name][index[{name, wid}]].acked = true;
    }  // anything else: a line cut short by a kill; ignored
  }
  if (!have_seed) {
    fprintf(stderr, "fsx: %s has no seed header\n", opt.verify_ack.c_str());
    return 2;
  }
  int problems = 0;
  for (const auto& [name, recs] : files) problems += VerifyFile(opt, seed, name, recs);
  if (problems) {
    fprintf(stderr, "fsx: verify: %d problem(s) in %zu files\n", problems, files.size());
    return 1;
  }
  printf("fsx: verify: all %zu files intact\n", files.size());
  return 0;
}

}  // namespace fsx
