// Small helpers shared by tests: a temporary directory removed at scope
// exit, the seed of randomized tests (printed, settable with CIPHERFS_SEED),
// the CIPHERFS_LONG switch, and a deterministic byte pattern.
// Thread safety: TempDir is a value owned by one test; the functions are
// safe to call from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cfs::test {

// A fresh directory under $CIPHERFS_TEST_TMPDIR, else /dev/shm (tmpfs: fast
// fsync), else $TMPDIR or /tmp. Removed recursively by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "cfs_test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // An O_RDONLY|O_DIRECTORY fd of path(), owned by this object.
  int fd() const { return fd_; }
  // Creates (or recreates empty) the subdirectory `name`; returns its path.
  std::string Sub(const std::string& name) const;

 private:
  std::string path_;
  int fd_ = -1;
};

// The seed of a randomized test: $CIPHERFS_SEED if set, else `fallback`
// (tests pass a fixed default, so CI runs are reproducible). Printed to
// stderr with `test_name` so that a failure can be replayed.
uint64_t TestSeed(const std::string& test_name, uint64_t fallback);

// True when $CIPHERFS_LONG=1: run the long versions of the sweeps.
bool LongTests();

// Deterministic bytes: Pattern(n, tag)[i] depends on tag and i, and two
// different tags differ in (almost) every byte.
std::vector<uint8_t> Pattern(size_t n, uint64_t tag);

}  // namespace cfs::test
