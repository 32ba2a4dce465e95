// ScopedFd: closes a backing fd through its Backing when it goes out of
// scope (errors on that close are ignored: it only runs on paths that do
// not need the close to succeed; a close whose error matters is explicit).
// Thread safety: a value owned by one thread.
#pragma once

#include <utility>

#include "store/backing.h"

namespace cfs::store {

class ScopedFd {
 public:
  ScopedFd() = default;
  ScopedFd(Backing* backing, int fd) : backing_(backing), fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(ScopedFd&& o) noexcept : backing_(o.backing_), fd_(std::exchange(o.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& o) noexcept {
    if (this != &o) {
      Reset();
      backing_ = o.backing_;
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) static_cast<void>(backing_->Close(fd_));
    fd_ = -1;
  }

 private:
  Backing* backing_ = nullptr;
  int fd_ = -1;
};

}  // namespace cfs::store
