// InodeTable implementation; see inode_table.h.
#include "fs/inode_table.h"

namespace cfs::fs {

Inode::Inode(store::Backing* b, int f, const struct stat& st)
    : backing(b), fd(f), dev(st.st_dev), ino(st.st_ino), type(st.st_mode & S_IFMT) {}

Inode::~Inode() {
  if (fd >= 0) static_cast<void>(backing->Close(fd));
}

std::shared_ptr<Inode> InodeTable::Intern(int fd, const struct stat& st) {
  std::shared_ptr<Inode> inode;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = inodes_[{st.st_dev, st.st_ino}];
    known = slot != nullptr;
    if (!known) slot = std::make_shared<Inode>(backing_, fd, st);
    ++slot->nlookup;
    inode = slot;
  }
  if (known) static_cast<void>(backing_->Close(fd));
  return inode;
}

std::shared_ptr<Inode> InodeTable::Find(dev_t dev, ino_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = inodes_.find({dev, ino});
  return it == inodes_.end() ? nullptr : it->second;
}

void InodeTable::Forget(Inode* inode, uint64_t n) {
  std::shared_ptr<Inode> dropped;  // destroyed (fd closed) after the lock is released
  std::lock_guard<std::mutex> lock(mu_);
  inode->nlookup = n >= inode->nlookup ? 0 : inode->nlookup - n;
  if (inode->nlookup == 0) {
    auto it = inodes_.find({inode->dev, inode->ino});
    if (it != inodes_.end() && it->second.get() == inode) {
      dropped = std::move(it->second);
      inodes_.erase(it);
    }
  }
  // `dropped` must die after `lock`: declared before it, so it does.
}

size_t InodeTable::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return inodes_.size();
}

std::vector<std::shared_ptr<Inode>> InodeTable::Snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Inode>> out;
  out.reserve(inodes_.size());
  for (auto& [key, inode] : inodes_) out.push_back(inode);
  return out;
}

}  // namespace cfs::fs
