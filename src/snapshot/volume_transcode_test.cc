#include "snapshot/volume_transcode.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "crypto/random.h"
#include "store/data_store.h"
#include "store/volume.h"

namespace cfs::snapshot {
namespace {

namespace fsys = std::filesystem;
constexpr char kMarker[] = "PLAINTEXT-MARKER-0123456789";

class TranscodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fsys::temp_directory_path() / "cfs-transcode-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    src_ = root_ + "/src";
    ASSERT_EQ(::mkdir(src_.c_str(), 0700), 0);
    store::VolumeOptions vo;
    vo.chunk_blocks = 16;
    ASSERT_TRUE(store::CreateVolumeLayout(&posix_, src_, nullptr, vo).ok());
    data_.assign(150000, 0);
    for (size_t i = 0; i < data_.size(); ++i) data_[i] = static_cast<uint8_t>(i * 7 + 1);
    std::copy(kMarker, kMarker + sizeof kMarker - 1, data_.begin() + 5000);
  }
  void TearDown() override { fsys::remove_all(root_); }

  // A plain volume: tree/a (data, a hole, then data at 1 MiB), tree/d/a2 a
  // hard link of it, tree/d/e an empty file, tree/l -> "a", tree/f a fifo.
  void FillPlainSource() {
    int vfd = ::open(src_.c_str(), O_RDONLY | O_DIRECTORY);
    store::DataStoreOptions o;
    o.chunk_blocks = 16;
    auto ds = std::move(store::DataStore::Open(&posix_, vfd, nullptr, o)).value();
    ASSERT_EQ(::mkdir((src_ + "/tree/d").c_str(), 0750), 0);
    for (const char* name : {"a", "d/e"}) {
      int fd = ::open((src_ + "/tree/" + name).c_str(), O_RDWR | O_CREAT, 0640);
      ASSERT_TRUE(ds->InitInodeFile(fd).ok());
      if (std::string(name) == "a") {
        auto f = std::move(ds->OpenFile(fd)).value();
        ASSERT_TRUE(f->Write(0, ByteView(data_.data(), data_.size())).ok());
        ASSERT_TRUE(f->Write(1 << 20, ByteView(data_.data(), 4096)).ok());
      }
      ::close(fd);
    }
    ASSERT_TRUE(ds->CloseClean().ok());
    ds.reset();
    ::close(vfd);
    ASSERT_EQ(::link((src_ + "/tree/a").c_str(), (src_ + "/tree/d/a2").c_str()), 0);
    ASSERT_EQ(::symlink("a", (src_ + "/tree/l").c_str()), 0);
    ASSERT_EQ(::mkfifo((src_ + "/tree/f").c_str(), 0600), 0);
  }

  Bytes Expected() const {
    Bytes want((1 << 20) + 4096, 0);
    std::copy(data_.begin(), data_.end(), want.begin());
    std::copy(data_.begin(), data_.begin() + 4096, want.begin() + (1 << 20));
    return want;
  }

  static Bytes Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  static bool TreeHolds(const std::string& dir, std::string_view needle) {
    for (const auto& e : fsys::recursive_directory_iterator(dir)) {
      if (e.path().filename().string().find(needle) != std::string::npos) return true;
      if (!e.is_regular_file() || e.is_symlink()) continue;
      Bytes b = Slurp(e.path());
      if (std::string_view(reinterpret_cast<const char*>(b.data()), b.size()).find(needle) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  TranscodeOptions Options() {
    TranscodeOptions o;
    o.chunk_blocks = 16;
    return o;
  }

  store::PosixBacking posix_;
  std::string root_, src_;
  Bytes data_;
};

TEST_F(TranscodeTest, PlainVolumeEncryptedOnTheWayAndExportedBack) {
  FillPlainSource();
  SecretBytes key = crypto::RandomSecret(32);
  const std::string enc = root_ + "/enc", out = root_ + "/out";
  ASSERT_EQ(::mkdir(enc.c_str(), 0700), 0);
  TranscodeOptions o = Options();
  uint64_t last_done = 0, last_total = 0;
  o.progress = [&](uint64_t d, uint64_t t) {
    EXPECT_GE(d, last_done);
    last_done = d;
    last_total = t;
  };
  TranscodeStats st;
  ASSERT_TRUE(TranscodeVolume(&posix_, src_, nullptr, enc, &key, o, &st).ok());
  EXPECT_EQ(last_total, Expected().size());  // the hard link counted once
  EXPECT_EQ(st.files, 2u);
  EXPECT_EQ(st.symlinks, 1u);
  EXPECT_EQ(st.others, 1u);
  // Nothing of the plaintext (names or data) reached the encrypted volume.
  EXPECT_FALSE(TreeHolds(enc, kMarker));
  EXPECT_FALSE(fsys::exists(enc + "/tree/a"));
  EXPECT_FALSE(fsys::exists(enc + "/tree/d"));

  ASSERT_EQ(::mkdir(out.c_str(), 0700), 0);
  ASSERT_TRUE(TranscodeVolume(&posix_, enc, &key, out, nullptr, Options(), nullptr).ok());
  EXPECT_EQ(Slurp(out + "/a"), Expected());
  EXPECT_TRUE(Slurp(out + "/d/e").empty());
  struct stat a, a2, d;
  ASSERT_EQ(::stat((out + "/a").c_str(), &a), 0);
  ASSERT_EQ(::stat((out + "/d/a2").c_str(), &a2), 0);
  ASSERT_EQ(::stat((out + "/d").c_str(), &d), 0);
  EXPECT_EQ(a.st_ino, a2.st_ino) << "hard link kept";
  EXPECT_EQ(a.st_mode & 07777, 0640u);
  EXPECT_EQ(d.st_mode & 07777, 0750u);
  EXPECT_LT(static_cast<uint64_t>(a.st_blocks) * 512, uint64_t{1} << 20) << "the hole stayed a hole";
  EXPECT_EQ(fsys::read_symlink(out + "/l"), "a");
  EXPECT_TRUE(fsys::is_fifo(out + "/f"));
}

TEST_F(TranscodeTest, CancelStopsWithUnavailable) {
  FillPlainSource();
  SecretBytes key = crypto::RandomSecret(32);
  const std::string enc = root_ + "/enc";
  ASSERT_EQ(::mkdir(enc.c_str(), 0700), 0);
  std::atomic<bool> cancel{true};
  TranscodeOptions o = Options();
  o.cancel = &cancel;
  Status s = TranscodeVolume(&posix_, src_, nullptr, enc, &key, o, nullptr);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(s.sys_errno(), EINTR);
}

TEST_F(TranscodeTest, ExportOfTamperedVolumeIsDataLoss) {
  FillPlainSource();
  SecretBytes key = crypto::RandomSecret(32);
  const std::string enc = root_ + "/enc", out = root_ + "/out";
  ASSERT_EQ(::mkdir(enc.c_str(), 0700), 0);
  ASSERT_TRUE(TranscodeVolume(&posix_, src_, nullptr, enc, &key, Options(), nullptr).ok());
  // Flip one byte of the first data block of every chunk file.
  int flipped = 0;
  for (const auto& e : fsys::recursive_directory_iterator(enc + "/objects")) {
    if (!e.is_regular_file()) continue;
    int fd = ::open(e.path().c_str(), O_RDWR);
    uint8_t c = 0;
    off_t at = static_cast<off_t>(e.file_size()) - 4096 * 15 - 100;  // inside block 0 of a 16-block chunk
    if (at > 8192 && ::pread(fd, &c, 1, at) == 1) {
      c ^= 0x40;
      ASSERT_EQ(::pwrite(fd, &c, 1, at), 1);
      ++flipped;
    }
    ::close(fd);
  }
  ASSERT_GT(flipped, 0);
  ASSERT_EQ(::mkdir(out.c_str(), 0700), 0);
  Status s = TranscodeVolume(&posix_, enc, &key, out, nullptr, Options(), nullptr);
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
}

TEST_F(TranscodeTest, WrongKeyIsRefused) {
  FillPlainSource();
  SecretBytes key = crypto::RandomSecret(32), other = crypto::RandomSecret(32);
  const std::string enc = root_ + "/enc", out = root_ + "/out";
  ASSERT_EQ(::mkdir(enc.c_str(), 0700), 0);
  ASSERT_TRUE(TranscodeVolume(&posix_, src_, nullptr, enc, &key, Options(), nullptr).ok());
  ASSERT_EQ(::mkdir(out.c_str(), 0700), 0);
  EXPECT_FALSE(TranscodeVolume(&posix_, enc, &other, out, nullptr, Options(), nullptr).ok());
  EXPECT_FALSE(TreeHolds(out, kMarker));
}

}  // namespace
}  // namespace cfs::snapshot
