// RangeLock: shared/exclusive locks over ranges [first, last] of block
// numbers of one file. Overlapping exclusive ranges, and exclusive with
// shared, exclude each other; disjoint ranges never wait.
// Thread safety: all methods may be called concurrently. Waiters are woken
// on every release; the number of held ranges is small (one per in-flight
// request), so a linear scan is cheaper than a tree.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <list>
#include <mutex>

namespace cfs::store {

class RangeLock {
 public:
  struct Range {
    uint64_t first, last;  // inclusive
    bool exclusive;
  };
  class Guard {
   public:
    Guard() = default;
    Guard(RangeLock* lock, std::list<Range>::iterator it) : lock_(lock), it_(it) {}
    Guard(Guard&& o) noexcept : lock_(o.lock_), it_(o.it_) { o.lock_ = nullptr; }
    Guard& operator=(Guard&& o) noexcept;
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { Release(); }
    void Release();

   private:
    RangeLock* lock_ = nullptr;
    std::list<Range>::iterator it_;
  };

  // Blocks until [first, last] can be held in the given mode.
  Guard Lock(uint64_t first, uint64_t last, bool exclusive);

 private:
  bool Conflicts(const Range& r) const;  // mu_ held
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<Range> held_;  // guarded by mu_
};

// WriteGate: the DataStore's write barrier. Writers enter shared; a
// barrier (snapshot, log compaction) closes the gate to new writers at once
// and waits for the writers inside to leave, so it cannot be starved.
// Thread safety: all methods may be called concurrently; not reentrant.
class WriteGate {
 public:
  void EnterWriter();
  void LeaveWriter();
  void Close();  // blocks until no writer is inside
  // Like Close, but gives up (false) after `timeout_ms` or if another
  // barrier holds the gate.
  bool TryClose(int timeout_ms);
  void Open();

  class Writer {
   public:
    explicit Writer(WriteGate* g) : g_(g) { g_->EnterWriter(); }
    ~Writer() { g_->LeaveWriter(); }
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

   private:
    WriteGate* g_;
  };

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t writers_ = 0;  // inside; guarded by mu_
  bool closed_ = false;   // a barrier holds or waits for the gate; guarded by mu_
};

}  // namespace cfs::store
