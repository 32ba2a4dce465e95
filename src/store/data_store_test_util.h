// Test fixture for DataStore/FileData unit tests: a temporary volume
// directory on the host, PosixBacking, encrypted or unencrypted.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "crypto/random.h"
#include "store/data_store.h"

namespace cfs::store::testing {

inline uint64_t TestSeed() {
  const char* env = std::getenv("CIPHERFS_SEED");
  uint64_t seed = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::printf("seed: CIPHERFS_SEED=%llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

class StoreFixture : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cfs-data-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(mkdir((dir_ + "/tree").c_str(), 0700), 0);
    vol_fd_ = open(dir_.c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(vol_fd_, 0);
    if (encrypted()) {
      auto keys = VolumeKeys::Derive(crypto::RandomSecret(32));
      ASSERT_TRUE(keys.ok()) << keys.status().ToString();
      keys_ = std::move(keys).value();
    }
    options_.chunk_blocks = 16;
    OpenStore();
  }
  void TearDown() override {
    files_.clear();
    store_.reset();
    for (int fd : inode_fds_) close(fd);
    close(vol_fd_);
    std::filesystem::remove_all(dir_);
  }
  bool encrypted() const { return GetParam(); }

  void OpenStore() {
    auto s = DataStore::Open(&backing_, vol_fd_, keys_.get(), options_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  // Drops the store without a clean close (like a killed daemon).
  void Crash() {
    files_.clear();
    store_.reset();
  }
  void Reopen() {
    files_.clear();
    ASSERT_TRUE(store_->CloseClean().ok());
    store_.reset();
    OpenStore();
  }
  int InodeFd(const std::string& name, bool create) {
    int fd = open((dir_ + "/tree/" + name).c_str(), O_RDWR | (create ? O_CREAT | O_EXCL : 0), 0600);
    EXPECT_GE(fd, 0) << name;
    inode_fds_.push_back(fd);
    return fd;
  }
  std::shared_ptr<FileData> NewFile(const std::string& name) {
    int fd = InodeFd(name, true);
    EXPECT_TRUE(store_->InitInodeFile(fd).ok());
    return OpenFile(name);
  }
  std::shared_ptr<FileData> OpenFile(const std::string& name) {
    auto f = store_->OpenFile(InodeFd(name, false));
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (!f.ok()) return nullptr;
    files_.push_back(*f);
    return *f;
  }
  std::string ChunkPath(const FileId& id, uint64_t c) const {
    std::string hex = HexEncode(id);
    return dir_ + "/objects/" + hex.substr(0, 2) + "/" + hex + "/" + std::to_string(c);
  }
  // Raw access to a host file of the volume (chunk files), for crash tests.
  Bytes ReadAt(const std::string& path, uint64_t off, size_t n) {
    Bytes b(n);
    int fd = open(path.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(pread(fd, b.data(), n, off_t(off)), ssize_t(n));
    close(fd);
    return b;
  }
  void WriteAt(const std::string& path, uint64_t off, const Bytes& b) {
    int fd = open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, b.data(), b.size(), off_t(off)), ssize_t(b.size()));
    close(fd);
  }
  uint64_t DataOffset() const {
    return 4096 + ((uint64_t{options_.chunk_blocks} * 256 + 4095) / 4096) * 4096;
  }

  std::string dir_;
  int vol_fd_ = -1;
  PosixBacking backing_;
  std::unique_ptr<VolumeKeys> keys_;
  DataStoreOptions options_;
  std::unique_ptr<DataStore> store_;
  std::vector<std::shared_ptr<FileData>> files_;
  std::vector<int> inode_fds_;
};

inline Bytes RandomData(std::mt19937_64& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

inline Bytes ReadAll(FileData& f) {
  Bytes out(f.size());
  auto n = f.Read(0, out.size(), out.data());
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  if (n.ok()) out.resize(*n);
  return out;
}

}  // namespace cfs::store::testing
