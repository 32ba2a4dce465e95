#include "common/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace cfs {
namespace {

TEST(AtomicFileTest, ReplacesWholeFileWithModeAndNoTempLeft) {
  std::string dir = std::filesystem::temp_directory_path() / ("atomic-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = dir + "/f";
  ASSERT_TRUE(WriteFileAtomically(path, "first", 0600).ok());
  ASSERT_TRUE(WriteFileAtomically(path, "second", 0600).ok());
  EXPECT_EQ(*ReadSmallFile(path, 100), "second");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
  EXPECT_EQ(ReadSmallFile(path, 3).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadSmallFile(dir + "/missing", 3).status().code(), Code::kNotFound);
  EXPECT_FALSE(WriteFileAtomically(dir + "/no/such/dir/f", "x").ok());
  std::filesystem::remove_all(dir);
}

TEST(AtomicFileTest, TryLockConflictsAcrossOpenFileDescriptions) {
  std::string path = std::filesystem::temp_directory_path() / ("lock-" + std::to_string(::getpid()));
  auto a = FileLock::Acquire(path, FileLock::Mode::kExclusive);
  ASSERT_TRUE(a.ok());
  auto b = FileLock::TryAcquire(path, FileLock::Mode::kShared);
  EXPECT_EQ(b.status().code(), Code::kUnavailable);
  { FileLock released = std::move(*a); }
  EXPECT_TRUE(FileLock::TryAcquire(path, FileLock::Mode::kExclusive).ok());
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace cfs
