#include "store/range_lock.h"

#include <chrono>

namespace cfs::store {

RangeLock::Guard& RangeLock::Guard::operator=(Guard&& o) noexcept {
  if (this != &o) {
    Release();
    lock_ = o.lock_;
    it_ = o.it_;
    o.lock_ = nullptr;
  }
  return *this;
}

void RangeLock::Guard::Release() {
  if (!lock_) return;
  {
    std::lock_guard<std::mutex> l(lock_->mu_);
    lock_->held_.erase(it_);
  }
  lock_->cv_.notify_all();
  lock_ = nullptr;
}

bool RangeLock::Conflicts(const Range& r) const {
  for (const Range& h : held_) {
    if (h.last < r.first || r.last < h.first) continue;
    if (h.exclusive || r.exclusive) return true;
  }
  return false;
}

RangeLock::Guard RangeLock::Lock(uint64_t first, uint64_t last, bool exclusive) {
  Range r{first, last, exclusive};
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !Conflicts(r); });
  held_.push_back(r);
  return Guard(this, std::prev(held_.end()));
}

void WriteGate::EnterWriter() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !closed_; });
  ++writers_;
}

void WriteGate::LeaveWriter() {
  std::lock_guard<std::mutex> l(mu_);
  if (--writers_ == 0) cv_.notify_all();
}

void WriteGate::Close() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !closed_; });
  closed_ = true;
  cv_.wait(l, [&] { return writers_ == 0; });
}

bool WriteGate::TryClose(int timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  if (closed_) return false;
  closed_ = true;
  if (!cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return writers_ == 0; })) {
    closed_ = false;
    cv_.notify_all();
    return false;
  }
  return true;
}

void WriteGate::Open() {
  std::lock_guard<std::mutex> l(mu_);
  closed_ = false;
  cv_.notify_all();
}

}  // namespace cfs::store
