// FuseMount: a test fixture that creates a volume with devmount in a fresh
// temporary directory, mounts it, and always unmounts and removes it (also
// when a test fails). No /dev/fuse is a test failure, never a skip.
// Thread safety: one fixture per test; helpers may be called from threads.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <string>

namespace cfs::fstest {

struct MountSpec {
  bool encrypted = true;
  bool read_only = false;
  bool allow_other = false;
  bool key_check = false;  // the daemon polls a file standing for the KMS key
};

class FuseMount {
 public:
  FuseMount() = default;
  ~FuseMount();  // unmounts (fusermount3 -u, lazily if busy) and removes the temp dir

  // Creates the volume and mounts it. Returns false (with a gtest failure
  // naming the cause) if that fails.
  bool Start(const MountSpec& spec);
  // Unmounts and waits for the daemon to exit.
  bool Stop();
  // Mounts the same volume again (after Stop), possibly read-only.
  bool Remount(bool read_only = false);

  // Makes the key unusable (key_check mounts): the daemon must notice.
  void RevokeKey();

  const std::string& mnt() const { return mnt_; }
  const std::string& vol() const { return vol_; }
  std::string Path(const std::string& rel) const { return mnt_ + "/" + rel; }

 private:
  bool Serve(bool read_only);

  MountSpec spec_;
  std::string root_, vol_, mnt_, key_, pidfile_;
  bool mounted_ = false;
};

// A gtest fixture with a mounted encrypted volume.
class FuseTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(m_.Start(Spec())); }
  virtual MountSpec Spec() { return MountSpec{}; }
  std::string P(const std::string& rel) const { return m_.Path(rel); }
  FuseMount m_;
};

// Small file helpers (abort the test on failure through gtest asserts in callers).
bool WriteFile(const std::string& path, const std::string& data, int flags = 0);
std::string ReadFile(const std::string& path);
// True if any file under `dir` (recursively) contains `needle` in its name or bytes.
bool TreeContains(const std::string& dir, const std::string& needle);
// Runs a shell command, returns its exit status.
int Run(const std::string& cmd);

}  // namespace cfs::fstest
