// An inode file of length 0 (created, never made durable before a crash)
// reads as an empty file and becomes writable; any other damage stays EIO.
#include <unistd.h>

#include <cerrno>

#include "store/data_store.h"
#include "store/data_store_test_util.h"

namespace cfs::store {
namespace {

using testing::ReadAll;
using testing::StoreFixture;

class UninitializedInodeTest : public StoreFixture {};
INSTANTIATE_TEST_SUITE_P(Encryption, UninitializedInodeTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

TEST_P(UninitializedInodeTest, EmptyInodeFileOpensAsEmptyFileAndTakesWrites) {
  int fd = InodeFd("lost", true);  // created, never filled: what a power cut can leave
  auto size = store_->ReadSize(fd);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, 0u);
  auto f = OpenFile("lost");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->size(), 0u);
  Bytes data(5000, 0x42);
  ASSERT_TRUE(f->Write(100, data).ok());
  ASSERT_TRUE(f->Sync(false).ok());
  f.reset();
  Reopen();
  f = OpenFile("lost");
  ASSERT_TRUE(f);
  Bytes got = ReadAll(*f);
  ASSERT_EQ(got.size(), 5100u);
  EXPECT_EQ(got[99], 0);
  EXPECT_EQ(got[100], 0x42);
  EXPECT_EQ(got[5099], 0x42);
}

TEST_P(UninitializedInodeTest, OpenFailsWhenInodeFileIsShortButNotEmpty) {
  auto f = NewFile("a");
  ASSERT_TRUE(f);
  f.reset();
  Reopen();
  int fd = InodeFd("a", false);
  ASSERT_EQ(ftruncate(fd, 1), 0);
  auto size = store_->ReadSize(fd);
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.status().sys_errno(), EIO);
  auto opened = store_->OpenFile(fd);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().sys_errno(), EIO);
}

}  // namespace
}  // namespace cfs::store
