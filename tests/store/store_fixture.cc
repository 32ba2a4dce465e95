// StoreVolume and host-file helpers: see store_fixture.h.
#include "store_fixture.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

#include "common/encoding.h"
#include "crypto/random.h"

namespace cfs::test {

StoreVolume::StoreVolume(bool encrypted, uint32_t chunk_blocks)
    : dir_(encrypted ? "cfs_vol_enc" : "cfs_vol_plain"), chunk_blocks_(chunk_blocks) {
  if (encrypted) {
    auto keys = store::VolumeKeys::Derive(crypto::RandomSecret(32));
    if (!keys.ok()) throw std::runtime_error("VolumeKeys::Derive: " + keys.status().ToString());
    keys_ = std::move(keys).value();
  }
  if (mkdirat(dir_.fd(), "tree", 0700) != 0) throw std::runtime_error("mkdir tree");
  tree_fd_ = openat(dir_.fd(), "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tree_fd_ < 0) throw std::runtime_error("open tree");
}

StoreVolume::~StoreVolume() {
  if (tree_fd_ >= 0) close(tree_fd_);
}

store::DataStoreOptions StoreVolume::options() const {
  store::DataStoreOptions o;
  o.chunk_blocks = chunk_blocks_;
  return o;
}

Result<std::unique_ptr<store::DataStore>> StoreVolume::Open(store::Backing* backing) const {
  return store::DataStore::Open(backing, dir_.fd(), keys_.get(), options());
}

Result<std::shared_ptr<store::FileData>> StoreVolume::CreateFile(store::Backing* backing, store::DataStore* ds,
                                                                 int index) const {
  CFS_ASSIGN_OR_RETURN(int fd, backing->OpenAt(tree_fd_, "f" + std::to_string(index),
                                               O_RDWR | O_CREAT | O_EXCL, 0600));
  Status s = ds->InitInodeFile(fd);
  Result<std::shared_ptr<store::FileData>> file = s.ok() ? ds->OpenFile(fd) : Result<std::shared_ptr<store::FileData>>(s);
  (void)backing->Close(fd);
  if (!file.ok()) return file.status();
  CFS_RETURN_IF_ERROR((*file)->Sync(false));
  return file;
}

Result<std::shared_ptr<store::FileData>> StoreVolume::OpenFile(store::Backing* backing, store::DataStore* ds,
                                                               int index) const {
  CFS_ASSIGN_OR_RETURN(int fd, backing->OpenAt(tree_fd_, "f" + std::to_string(index), O_RDWR, 0));
  auto file = ds->OpenFile(fd);
  (void)backing->Close(fd);
  return file;
}

std::string StoreVolume::InodePath(int index) const { return path() + "/tree/f" + std::to_string(index); }

std::string StoreVolume::ChunkPath(const store::FileId& id, uint64_t chunk) const {
  std::string hex = HexEncode(ByteView(id.data(), id.size()));
  return path() + "/objects/" + hex.substr(0, 2) + "/" + hex + "/" + std::to_string(chunk);
}

std::vector<uint8_t> ReadHostFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void WriteHostFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

void PatchHostFile(const std::string& path, uint64_t offset, const std::vector<uint8_t>& bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  ssize_t n = pwrite(fd, bytes.data(), bytes.size(), off_t(offset));
  close(fd);
  if (n != ssize_t(bytes.size())) throw std::runtime_error("cannot patch " + path);
}

void FlipHostBit(const std::string& path, uint64_t bit) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  uint8_t b = 0;
  bool ok = pread(fd, &b, 1, off_t(bit / 8)) == 1;
  b ^= uint8_t(1u << (bit % 8));
  ok = ok && pwrite(fd, &b, 1, off_t(bit / 8)) == 1;
  close(fd);
  if (!ok) throw std::runtime_error("cannot flip a bit of " + path);
}

uint64_t HostFileSize(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw std::runtime_error("cannot stat " + path);
  return uint64_t(st.st_size);
}

}  // namespace cfs::test
