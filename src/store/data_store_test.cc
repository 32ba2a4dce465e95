// Round trips of FileData against an in-memory model, tamper detection of
// inode files and blocks, holes, truncate, fallocate, seek.
#include "store/data_store.h"

#include <linux/falloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "store/data_store_test_util.h"

namespace cfs::store {
namespace {

using testing::RandomData;
using testing::ReadAll;
using testing::StoreFixture;
using testing::TestSeed;

class DataStoreTest : public StoreFixture {};
INSTANTIATE_TEST_SUITE_P(Encryption, DataStoreTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

void ExpectSame(FileData& f, const Bytes& model) {
  ASSERT_EQ(f.size(), model.size());
  Bytes got = ReadAll(f);
  ASSERT_EQ(got.size(), model.size());
  for (size_t i = 0; i < model.size(); ++i) {
    ASSERT_EQ(got[i], model[i]) << "first difference at byte " << i;
  }
}

void ModelWrite(Bytes& model, uint64_t off, const Bytes& data) {
  if (model.size() < off + data.size()) model.resize(off + data.size(), 0);
  std::copy(data.begin(), data.end(), model.begin() + off);
}

TEST_P(DataStoreTest, NewFileIsEmpty) {
  auto f = NewFile("a");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->size(), 0u);
  uint8_t buf[16];
  auto n = f->Read(0, sizeof buf, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

// CreateFile: the creator's descriptor becomes the file's own (no reopen):
// what is written through it is there after a reopen, under the same id.
TEST_P(DataStoreTest, CreateFileKeepsTheCreatorsDescriptor) {
  int fd = open((dir_ + "/tree/c").c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  auto made = store_->CreateFile(fd);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  std::shared_ptr<FileData> f = std::move(*made);
  EXPECT_EQ(f->size(), 0u);
  EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);  // still open: the file's now
  std::mt19937_64 rng(11);
  Bytes data = RandomData(rng, 20000);
  ASSERT_TRUE(f->Write(0, data).ok());
  ASSERT_TRUE(f->Sync(false).ok());
  const FileId id = f->id();
  // An open of the same inode file meanwhile shares the FileData.
  auto again = store_->OpenFile(InodeFd("c", false));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), f.get());
  again->reset();
  f.reset();
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);  // closed with the FileData
  Reopen();
  auto back = OpenFile("c");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id(), id);
  Bytes model;
  ModelWrite(model, 0, data);
  ExpectSame(*back, model);
  // The descriptor must be writable: an O_PATH one is refused (and closed),
  // never kept for a file whose size could then not be written.
  int opath = open((dir_ + "/tree/p").c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(opath, 0);
  close(opath);
  opath = open((dir_ + "/tree/p").c_str(), O_PATH | O_CLOEXEC);
  ASSERT_GE(opath, 0);
  auto refused = store_->CreateFile(opath);
  EXPECT_EQ(refused.status().sys_errno(), EBADF);
  EXPECT_EQ(fcntl(opath, F_GETFD), -1);
}

TEST_P(DataStoreTest, WriteReadAcrossChunksAndReopen) {
  std::mt19937_64 rng(7);
  auto f = NewFile("a");
  Bytes data = RandomData(rng, 3 * 16 * 4096 + 1234);  // 3+ chunks of 16 blocks
  auto w = f->Write(1000, data);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Bytes model;
  ModelWrite(model, 1000, data);
  ExpectSame(*f, model);
  Reopen();
  f = OpenFile("a");
  ExpectSame(*f, model);
  auto size = store_->ReadSize(InodeFd("a", false));
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, model.size());
}

TEST_P(DataStoreTest, RandomOperationsMatchModel) {
  std::mt19937_64 rng(TestSeed());
  auto f = NewFile("a");
  Bytes model;
  const uint64_t kSpan = 5 * 16 * 4096;  // 5 chunks
  for (int op = 0; op < 400; ++op) {
    int kind = int(rng() % 100);
    if (kind < 45) {  // write: sub-block (512 B aligned) or arbitrary
      bool sector = rng() % 3 == 0;
      uint64_t off = sector ? (rng() % (kSpan / 512)) * 512 : rng() % kSpan;
      size_t len = sector ? 512 * (1 + rng() % 4) : 1 + rng() % (40 * 1024);
      Bytes data = RandomData(rng, len);
      auto w = f->Write(off, data);
      ASSERT_TRUE(w.ok()) << w.status().ToString();
      ASSERT_EQ(*w, len);
      ModelWrite(model, off, data);
    } else if (kind < 75) {  // read
      uint64_t off = rng() % (kSpan + 8192);
      size_t len = 1 + rng() % (70 * 1024);
      Bytes got(len);
      auto n = f->Read(off, len, got.data());
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      size_t want = off >= model.size() ? 0 : std::min<size_t>(len, model.size() - off);
      ASSERT_EQ(*n, want);
      ASSERT_TRUE(std::equal(got.begin(), got.begin() + want, model.begin() + off)) << "op " << op;
    } else if (kind < 83) {  // truncate
      uint64_t size = rng() % kSpan;
      ASSERT_TRUE(f->Truncate(size).ok());
      model.resize(size, 0);
    } else if (kind < 93) {  // punch hole / zero range
      uint64_t off = rng() % kSpan, len = 1 + rng() % (64 * 1024);
      bool zero = rng() % 2;
      int mode = zero ? FALLOC_FL_ZERO_RANGE : (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
      Status s = f->Fallocate(mode, off, len);
      ASSERT_TRUE(s.ok()) << s.ToString();
      uint64_t end = zero ? off + len : std::min<uint64_t>(off + len, model.size());
      if (model.size() < end) model.resize(end, 0);
      if (off < end) std::fill(model.begin() + off, model.begin() + end, 0);
    } else {  // seek
      if (model.empty()) continue;
      uint64_t off = rng() % model.size();
      auto d = f->Seek(off, SEEK_DATA);
      auto h = f->Seek(off, SEEK_HOLE);
      ASSERT_TRUE(h.ok());
      ASSERT_GE(*h, off);
      ASSERT_LE(*h, model.size());
      // Data may only be skipped where the model is zero, and a hole is all zeros.
      uint64_t data_at = d.ok() ? *d : model.size();
      ASSERT_TRUE(std::all_of(model.begin() + off, model.begin() + data_at, [](uint8_t b) { return !b; }));
      uint64_t hole_end = std::min<uint64_t>(model.size(), (*h / 4096 + 1) * 4096);
      if (*h < model.size()) {
        ASSERT_TRUE(std::all_of(model.begin() + *h, model.begin() + hole_end, [](uint8_t b) { return !b; }));
      }
    }
    if (op % 50 == 0) {
      ASSERT_TRUE(f->Sync(op % 100 == 0).ok());
    }
  }
  ExpectSame(*f, model);
  Reopen();
  f = OpenFile("a");
  ExpectSame(*f, model);
}

TEST_P(DataStoreTest, ExtendingWriteLeavesHoleAndSparseHost) {
  auto f = NewFile("a");
  Bytes one(4096, 0x11);
  ASSERT_TRUE(f->Write(10 * 16 * 4096, one).ok());
  EXPECT_EQ(f->size(), 10 * 16 * 4096 + 4096u);
  Bytes model(10 * 16 * 4096 + 4096, 0);
  std::fill(model.end() - 4096, model.end(), 0x11);
  ExpectSame(*f, model);
  EXPECT_EQ(f->AllocatedBytes(), 4096u);
  auto d = f->Seek(0, SEEK_DATA);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, 10 * 16 * 4096u);
  struct stat st;
  ASSERT_EQ(stat(ChunkPath(f->id(), 0).c_str(), &st), -1);  // no chunk file for the hole
  ASSERT_EQ(stat(ChunkPath(f->id(), 10).c_str(), &st), 0);
  EXPECT_LT(uint64_t(st.st_blocks) * 512, 64 * 1024u);  // sparse on the host
}

TEST_P(DataStoreTest, TamperedInodeFileIsDataLoss) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(100, 1)).ok());
  files_.clear();
  f.reset();
  int fd = InodeFd("a", false);
  uint8_t b;
  ASSERT_EQ(pread(fd, &b, 1, 32), 1);  // the size field
  b ^= 1;
  ASSERT_EQ(pwrite(fd, &b, 1, 32), 1);
  auto size = store_->ReadSize(fd);
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.status().code(), Code::kDataLoss);
  auto open = store_->OpenFile(fd);
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.status().sys_errno(), EIO);
}

TEST_P(DataStoreTest, FlippedDataByteIsEioAndCounted) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(3 * 4096, 0x42)).ok());
  FileId id = f->id();
  Reopen();
  {
    std::fstream chunk(ChunkPath(id, 0), std::ios::in | std::ios::out | std::ios::binary);
    chunk.seekp(std::streamoff(DataOffset() + 4096 + 100));
    chunk.put(encrypted() ? 0x00 : 0x43);
  }
  f = OpenFile("a");
  Bytes buf(3 * 4096);
  auto n = f->Read(0, buf.size(), buf.data());
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), Code::kDataLoss);
  EXPECT_EQ(n.status().sys_errno(), EIO);
  EXPECT_EQ(store_->counters().auth_failures.load(), 1u);
  // Blocks 0 and 2 are intact.
  ASSERT_TRUE(f->Read(0, 4096, buf.data()).ok());
  ASSERT_TRUE(f->Read(2 * 4096, 4096, buf.data()).ok());
}

TEST_P(DataStoreTest, ZeroedWrittenBlockIsEioNotZeros) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(2 * 4096, 0x42)).ok());
  FileId id = f->id();
  Reopen();
  {  // zero block 1's slots and data: looks like a hole, but the map says written
    std::fstream chunk(ChunkPath(id, 0), std::ios::in | std::ios::out | std::ios::binary);
    chunk.seekp(4096 + 256);  // block 1's slot pair (2 x 128 bytes, chunks.md 2.2)
    chunk.write(std::string(256, '\0').data(), 256);
    chunk.seekp(std::streamoff(DataOffset() + 4096));
    chunk.write(std::string(4096, '\0').data(), 4096);
  }
  f = OpenFile("a");
  Bytes buf(4096);
  auto n = f->Read(4096, 4096, buf.data());
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().sys_errno(), EIO);
}

TEST_P(DataStoreTest, BlockMovedWithinChunkFailsAuthentication) {
  auto f = NewFile("a");
  std::mt19937_64 rng(3);
  ASSERT_TRUE(f->Write(0, RandomData(rng, 2 * 4096)).ok());
  FileId id = f->id();
  Reopen();
  {  // copy block 0 (slots + data) over block 1
    std::fstream chunk(ChunkPath(id, 0), std::ios::in | std::ios::out | std::ios::binary);
    std::string slots(256, '\0'), data(4096, '\0');  // a slot pair: 2 x 128 bytes
    chunk.seekg(4096);
    chunk.read(slots.data(), 256);
    chunk.seekg(std::streamoff(DataOffset()));
    chunk.read(data.data(), 4096);
    chunk.seekp(4096 + 256);
    chunk.write(slots.data(), 256);
    chunk.seekp(std::streamoff(DataOffset() + 4096));
    chunk.write(data.data(), 4096);
  }
  f = OpenFile("a");
  Bytes buf(4096);
  EXPECT_FALSE(f->Read(4096, 4096, buf.data()).ok());
}

TEST_P(DataStoreTest, TruncateShrinkZeroesTailAndDeletesChunks) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(3 * 16 * 4096, 0x77)).ok());
  ASSERT_TRUE(f->Truncate(16 * 4096 + 100).ok());
  struct stat st;
  EXPECT_EQ(stat(ChunkPath(f->id(), 2).c_str(), &st), -1);
  EXPECT_EQ(stat(ChunkPath(f->id(), 1).c_str(), &st), 0);
  ASSERT_TRUE(f->Truncate(3 * 16 * 4096).ok());
  Bytes model(3 * 16 * 4096, 0);
  std::fill(model.begin(), model.begin() + 16 * 4096 + 100, 0x77);
  ExpectSame(*f, model);
  EXPECT_EQ(f->AllocatedBytes(), 17 * 4096u);
}

TEST_P(DataStoreTest, FallocateModeZeroExtendsAndReadsZeros) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Fallocate(0, 0, 100000).ok());
  EXPECT_EQ(f->size(), 100000u);
  ExpectSame(*f, Bytes(100000, 0));
  ASSERT_TRUE(f->Fallocate(FALLOC_FL_KEEP_SIZE, 100000, 100000).ok());
  EXPECT_EQ(f->size(), 100000u);
  EXPECT_EQ(f->Fallocate(FALLOC_FL_COLLAPSE_RANGE, 0, 4096).sys_errno(), EOPNOTSUPP);
}

TEST_P(DataStoreTest, SeekPastEndIsEnxio) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(10, 1)).ok());
  auto r = f->Seek(10, SEEK_DATA);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().sys_errno(), ENXIO);
  auto h = f->Seek(0, SEEK_HOLE);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, 10u);
}

TEST_P(DataStoreTest, HardLinkedOpensShareOneFileData) {
  auto f = NewFile("a");
  ASSERT_EQ(link((dir_ + "/tree/a").c_str(), (dir_ + "/tree/b").c_str()), 0);
  auto g = OpenFile("b");
  EXPECT_EQ(f.get(), g.get());
}

TEST_P(DataStoreTest, DeleteFileDataRemovesChunks) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(40 * 4096, 1)).ok());
  FileId id = f->id();
  files_.clear();
  f.reset();
  ASSERT_TRUE(store_->DeleteFileData(id).ok());
  std::string hex = HexEncode(id);
  struct stat st;
  EXPECT_EQ(stat((dir_ + "/objects/" + hex.substr(0, 2) + "/" + hex).c_str(), &st), -1);
}

// Unencrypted volumes store plaintext by design: there the marker must be
// found, which shows the search itself works.
TEST_P(DataStoreTest, NoPlaintextOnBackingWhenEncrypted) {
  auto f = NewFile("a");
  std::string secret = "SECRET-PLAINTEXT-MARKER-";
  Bytes data;
  for (int i = 0; i < 500; ++i) data.insert(data.end(), secret.begin(), secret.end());
  ASSERT_TRUE(f->Write(0, data).ok());
  ASSERT_TRUE(f->Sync(true).ok());
  std::ifstream chunk(ChunkPath(f->id(), 0), std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(chunk)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all.find("SECRET-PLAINTEXT") == std::string::npos, encrypted());
}

}  // namespace
}  // namespace cfs::store

namespace cfs::store {
namespace {

class DataStoreOptionsTest : public testing::StoreFixture {};
INSTANTIATE_TEST_SUITE_P(Encryption, DataStoreOptionsTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

TEST_P(DataStoreOptionsTest, FewChunkFdsStillServeManyChunks) {
  files_.clear();
  store_.reset();
  options_.max_open_chunk_fds = 3;
  OpenStore();
  std::mt19937_64 rng(11);
  auto f = NewFile("a");
  Bytes data = testing::RandomData(rng, 20 * 16 * 4096);  // 20 chunks
  ASSERT_TRUE(f->Write(0, data).ok());
  ASSERT_TRUE(f->Sync(true).ok());
  EXPECT_EQ(testing::ReadAll(*f), data);
}

TEST_P(DataStoreOptionsTest, ReadOnlyStoreReadsAndRefusesWrites) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(5000, 9)).ok());
  Reopen();
  files_.clear();
  ASSERT_TRUE(store_->CloseClean().ok());
  store_.reset();
  options_.read_only = true;
  OpenStore();
  f = OpenFile("a");
  EXPECT_EQ(testing::ReadAll(*f), Bytes(5000, 9));
  auto w = f->Write(0, Bytes(1, 1));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().sys_errno(), EROFS);
  EXPECT_EQ(f->Truncate(0).sys_errno(), EROFS);
  EXPECT_TRUE(f->Sync(true).ok());
}

TEST_P(DataStoreOptionsTest, RejectsBadOptions) {
  DataStoreOptions bad = options_;
  bad.chunk_blocks = 4096;
  EXPECT_FALSE(DataStore::Open(&backing_, vol_fd_, keys_.get(), bad).ok());
  bad = options_;
  bad.generation_shift = 0;
  EXPECT_FALSE(DataStore::Open(&backing_, vol_fd_, keys_.get(), bad).ok());
  bad.generation_shift = 33;  // the nonce's 32-bit write counter would wrap within a key
  EXPECT_FALSE(DataStore::Open(&backing_, vol_fd_, keys_.get(), bad).ok());
}

TEST_P(DataStoreOptionsTest, ChunkWrittenWithOtherChunkBlocksIsEio) {
  auto f = NewFile("a");
  ASSERT_TRUE(f->Write(0, Bytes(4096, 1)).ok());
  Reopen();
  files_.clear();
  ASSERT_TRUE(store_->CloseClean().ok());
  store_.reset();
  options_.chunk_blocks = 32;
  OpenStore();
  f = OpenFile("a");
  Bytes buf(4096);
  auto n = f->Read(0, 4096, buf.data());
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().sys_errno(), EIO);
}

}  // namespace
}  // namespace cfs::store
