// Shared pieces of fsx, our file-system model checker (see fsx.cc): options,
// a seeded random generator, full-length I/O helpers and the kill-test
// (acknowledged write) modes. Standard library and POSIX only.
// Thread safety: Rng is per thread; the helpers are reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace fsx {

struct Options {
  std::string dir;                       // directory the files live in
  uint64_t ops = 100000;                 // total operations over all threads
  unsigned threads = 4;
  uint64_t seed = 0;
  uint64_t max_size = 3 * 1024 * 1024 + 1536;  // per file; crosses 1 MiB chunks
  unsigned files_per_thread = 3;
  uint64_t shared_region = 96 * 1024 + 1536;    // per thread; unaligned on purpose
  bool shared = true;                    // a shared file with per-thread regions
  bool mmap = true;
  bool fallocate = true;
  bool zero_range = true;
  bool punch = true;
  bool direct = true;
  bool link = true;
  bool rename = true;
  bool strict = false;                   // an unsupported operation is a failure
  bool keep = false;                     // leave the files behind
  std::string ack_log;                   // kill-test writer mode
  std::string verify_ack;                // kill-test verifier mode
};

// splitmix64: small, fast, good enough to drive a test; seeded explicitly.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  uint64_t Below(uint64_t n) { return Next() % n; }
  bool Percent(unsigned pct) { return Below(100) < pct; }
  void Fill(uint8_t* buf, size_t len);

 private:
  uint64_t state_;
};

uint64_t Mix64(uint64_t x);

// Writes all of buf at off. Returns 0 or the errno.
int PWriteFull(int fd, const uint8_t* buf, size_t len, uint64_t off);
// Reads up to len bytes at off, stopping only at end of file. Returns 0 or
// the errno; *got is the number of bytes read.
int PReadFull(int fd, uint8_t* buf, size_t len, uint64_t off, size_t* got);

std::string ErrnoName(int err);

// Kill-test modes (fsx_ack.cc). Return the process exit code.
int RunAckWriter(const Options& opt);
int RunAckVerify(const Options& opt);

}  // namespace fsx
