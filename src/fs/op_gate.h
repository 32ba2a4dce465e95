// OpGate: lets modifying FUSE operations run concurrently, and lets a
// snapshot pause them: Pause() stops new entries and waits until those in
// flight have left; Resume() lets them in again. Entries arriving while a
// pause is pending wait (a pause is not starved by a stream of writers).
// Thread safety: all methods may be called from any thread; Pause/Resume
// pairs must not overlap (one snapshot at a time, serialized by the caller).
#pragma once

#include <condition_variable>
#include <mutex>

namespace cfs::fs {

class OpGate {
 public:
  // One operation inside the gate, from construction to destruction.
  class Pass {
   public:
    explicit Pass(OpGate& g) : g_(g) { g_.Enter(); }
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
    ~Pass() { g_.Leave(); }

   private:
    OpGate& g_;
  };
  void Pause() {
    std::unique_lock<std::mutex> l(mu_);
    paused_ = true;
    cv_.wait(l, [this] { return inside_ == 0; });
  }
  void Resume() {
    std::lock_guard<std::mutex> l(mu_);
    paused_ = false;
    cv_.notify_all();
  }

 private:
  void Enter() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return !paused_; });
    ++inside_;
  }
  void Leave() {
    std::lock_guard<std::mutex> l(mu_);
    if (--inside_ == 0 && paused_) cv_.notify_all();
  }
  std::mutex mu_;  // guards paused_, inside_
  std::condition_variable cv_;
  bool paused_ = false;
  int inside_ = 0;
};

}  // namespace cfs::fs
