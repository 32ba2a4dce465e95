// FUSE tests of file contents: read/write, truncate, fallocate modes,
// SEEK_DATA/SEEK_HOLE, mmap, O_DIRECT, O_SYNC, O_APPEND, concurrent writers,
// fsync/fdatasync/fsyncdir, persistence across remounts.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fuse_fixture.h"

namespace cfs::fstest {
namespace {

using FuseFiles = FuseTest;

uint32_t Seed() {
  const char* env = getenv("CIPHERFS_SEED");
  uint32_t seed = env ? uint32_t(strtoul(env, nullptr, 10)) : std::random_device{}();
  std::printf("CIPHERFS_SEED=%u\n", seed);
  return seed;
}

std::string Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = char(rng());
  return s;
}

TEST_F(FuseFiles, WriteReadPersistsAcrossRemount) {
  std::string data = Pattern(3 * 1024 * 1024 + 123, Seed());
  ASSERT_TRUE(WriteFile(P("big"), data));
  EXPECT_EQ(ReadFile(P("big")), data);
  struct stat st;
  ASSERT_EQ(stat(P("big").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, off_t(data.size()));
  ASSERT_TRUE(m_.Remount());
  EXPECT_EQ(ReadFile(P("big")), data);
  ASSERT_EQ(stat(P("big").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, off_t(data.size()));
}

TEST_F(FuseFiles, TruncateShrinksAndExtendsWithZeros) {
  ASSERT_TRUE(WriteFile(P("t"), std::string(10000, 'q')));
  ASSERT_EQ(truncate(P("t").c_str(), 5000), 0);
  EXPECT_EQ(ReadFile(P("t")), std::string(5000, 'q'));
  int fd = open(P("t").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 9000), 0);
  close(fd);
  EXPECT_TRUE(ReadFile(P("t")) == std::string(5000, 'q') + std::string(4000, '\0'));
  ASSERT_TRUE(WriteFile(P("t"), "new"));  // O_TRUNC
  EXPECT_EQ(ReadFile(P("t")), "new");
}

TEST_F(FuseFiles, FallocateModes) {
  int fd = open(P("f").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fallocate(fd, 0, 0, 1 << 20), 0) << strerror(errno);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 1 << 20);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20), 0) << strerror(errno);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 1 << 20);
  std::string ones(1 << 20, '\1');
  ASSERT_EQ(pwrite(fd, ones.data(), ones.size(), 0), ssize_t(ones.size()));
  ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192), 0) << strerror(errno);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_ZERO_RANGE, 65536, 1000), 0) << strerror(errno);
  std::string got(1 << 20, 'x');
  ASSERT_EQ(pread(fd, got.data(), got.size(), 0), ssize_t(got.size()));
  std::string want = ones;
  std::fill(want.begin() + 4096, want.begin() + 4096 + 8192, '\0');
  std::fill(want.begin() + 65536, want.begin() + 65536 + 1000, '\0');
  EXPECT_TRUE(got == want);
  close(fd);
  ASSERT_TRUE(m_.Remount());
  EXPECT_TRUE(ReadFile(P("f")) == want);
}

TEST_F(FuseFiles, SeekDataAndHole) {
  int fd = open(P("sparse").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  const off_t far = 8 << 20;
  ASSERT_EQ(pwrite(fd, "head", 4, 0), 4);
  ASSERT_EQ(pwrite(fd, "tail", 4, far), 4);
  EXPECT_EQ(lseek(fd, 0, SEEK_DATA), 0);
  // With the writeback cache the kernel answers SEEK_HOLE itself (the data
  // may still be dirty pages): the end of file, which POSIX allows as the
  // only hole. Without it, cipherfs finds the hole at 4 KiB.
  off_t hole = lseek(fd, 0, SEEK_HOLE);
  EXPECT_GT(hole, 0);
  EXPECT_LE(hole, far + 4);
  if (hole < far) {
    off_t data = lseek(fd, hole, SEEK_DATA);
    EXPECT_GT(data, hole);
    EXPECT_LE(data, far);
  }
  EXPECT_EQ(lseek(fd, far + 4, SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  EXPECT_EQ(lseek(fd, far, SEEK_HOLE), far + 4);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_LT(st.st_blocks * 512, far / 2);  // sparse
  close(fd);
}

TEST_F(FuseFiles, MmapSharedWriteVisibleThroughReadAndPrivateIsNot) {
  const size_t n = 3 * 4096;
  ASSERT_TRUE(WriteFile(P("m"), std::string(n, 'a')));
  int fd = open(P("m").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED) << strerror(errno);
  std::memset(static_cast<char*>(p) + 4096, 'S', 4096);
  ASSERT_EQ(msync(p, n, MS_SYNC), 0);
  munmap(p, n);
  void* q = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ASSERT_NE(q, MAP_FAILED) << strerror(errno);
  std::memset(q, 'P', 4096);
  munmap(q, n);
  close(fd);
  std::string want = std::string(4096, 'a') + std::string(4096, 'S') + std::string(4096, 'a');
  EXPECT_TRUE(ReadFile(P("m")) == want);
  ASSERT_TRUE(m_.Remount());
  EXPECT_TRUE(ReadFile(P("m")) == want);
}

TEST_F(FuseFiles, DirectIoAlignedWritesAndReads) {
  int fd = open(P("direct").c_str(), O_RDWR | O_CREAT | O_DIRECT, 0600);
  ASSERT_GE(fd, 0) << strerror(errno);
  void* buf = nullptr;
  ASSERT_EQ(posix_memalign(&buf, 4096, 65536), 0);
  std::string data = Pattern(65536, 7);
  std::memcpy(buf, data.data(), data.size());
  ASSERT_EQ(pwrite(fd, buf, 65536, 4096), 65536) << strerror(errno);
  std::memset(buf, 0, 65536);
  ASSERT_EQ(pread(fd, buf, 65536, 4096), 65536);
  EXPECT_EQ(std::memcmp(buf, data.data(), data.size()), 0);
  ASSERT_EQ(pwrite(fd, buf, 512, 512), 512);  // sub-block direct write
  close(fd);
  free(buf);
  std::string got = ReadFile(P("direct"));
  ASSERT_EQ(got.size(), 4096u + 65536u);
  EXPECT_EQ(got.substr(4096), data);
}

TEST_F(FuseFiles, SyncFlagsAppendAndFsyncs) {
  int fd = open(P("s").c_str(), O_WRONLY | O_CREAT | O_SYNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "sync", 4), 4);
  close(fd);
  fd = open(P("s").c_str(), O_WRONLY | O_APPEND | O_DSYNC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "+app", 4), 4);
  ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
  ASSERT_EQ(write(fd, "+end", 4), 4);
  EXPECT_EQ(fsync(fd), 0);
  EXPECT_EQ(fdatasync(fd), 0);
  close(fd);
  EXPECT_EQ(ReadFile(P("s")), "sync+app+end");
  int dfd = open(P("").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0);
  EXPECT_EQ(fsync(dfd), 0) << strerror(errno);
  close(dfd);
  sync();
}

TEST_F(FuseFiles, ConcurrentWritersToOneFile) {
  const int kThreads = 8, kBlocks = 64;
  int fd = open(P("c").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([fd, t] {
      std::string block(4096, char('A' + t));
      for (int b = t; b < kThreads * kBlocks; b += kThreads) {
        if (pwrite(fd, block.data(), block.size(), off_t(b) * 4096) != 4096) std::abort();
      }
      std::string small(512, char('a' + t));  // sub-block writes into a shared block row
      for (int i = 0; i < 16; ++i) {
        if (pwrite(fd, small.data(), 512, off_t(kThreads * kBlocks) * 4096 + (t * 16 + i) % 64 * 512) != 512) {
          std::abort();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  close(fd);
  std::string got = ReadFile(P("c"));
  ASSERT_EQ(got.size(), size_t(kThreads * kBlocks) * 4096 + 32768);
  for (int b = 0; b < kThreads * kBlocks; ++b) {
    ASSERT_EQ(got.substr(size_t(b) * 4096, 4096), std::string(4096, char('A' + b % kThreads))) << "block " << b;
  }
  for (int s = 0; s < 64; ++s) {
    char c = got[size_t(kThreads * kBlocks) * 4096 + s * 512];
    EXPECT_EQ(got.substr(size_t(kThreads * kBlocks) * 4096 + s * 512, 512), std::string(512, c));
    EXPECT_TRUE(c >= 'a' && c < 'a' + kThreads);
  }
}

TEST_F(FuseFiles, AttributesChmodChownUtimens) {
  ASSERT_TRUE(WriteFile(P("a"), "x"));
  ASSERT_EQ(chmod(P("a").c_str(), 0640), 0);
  ASSERT_EQ(chown(P("a").c_str(), 1234, 5678), 0) << strerror(errno);
  struct timespec times[2] = {{1000000000, 5}, {1100000000, 7}};
  ASSERT_EQ(utimensat(AT_FDCWD, P("a").c_str(), times, 0), 0);
  struct stat st;
  ASSERT_EQ(stat(P("a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_mtim.tv_sec, 1100000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 7);
  struct timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  ASSERT_EQ(utimensat(AT_FDCWD, P("a").c_str(), omit_now, 0), 0);
  ASSERT_EQ(stat(P("a").c_str(), &st), 0);
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_GT(st.st_mtim.tv_sec, 1100000000);
  // A write moves mtime, and it survives a remount.
  ASSERT_EQ(utimensat(AT_FDCWD, P("a").c_str(), times, 0), 0);
  int fd = open(P("a").c_str(), O_WRONLY);
  ASSERT_EQ(write(fd, "y", 1), 1);
  close(fd);
  ASSERT_TRUE(m_.Remount());
  ASSERT_EQ(stat(P("a").c_str(), &st), 0);
  EXPECT_GT(st.st_mtim.tv_sec, 1100000000);
}

// With the writeback cache the kernel sends its own mtime (naming the open
// handle) before every fsync and fdatasync; the daemon keeps it in memory
// and sets it on the host at close. What stat showed before the close is
// what a remount shows (the daemon's own write time would differ).
TEST_F(FuseFiles, KernelMtimeSentAtFdatasyncSurvivesCloseAndRemount) {
  int fd = open(P("m").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(pwrite(fd, "commit", 6, off_t(i) * 8192), 6);
    ASSERT_EQ(fdatasync(fd), 0) << strerror(errno);
    usleep(20000);  // past a coarse clock tick: the next write moves the mtime
  }
  struct stat before, st;
  ASSERT_EQ(fstat(fd, &before), 0);
  ASSERT_EQ(close(fd), 0);
  ASSERT_TRUE(m_.Remount());
  ASSERT_EQ(stat(P("m").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, before.st_mtim.tv_sec);
  EXPECT_EQ(st.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  EXPECT_EQ(st.st_size, off_t(2 * 8192 + 6));
}

}  // namespace
}  // namespace cfs::fstest
