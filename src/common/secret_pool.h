// SecretPool: the process-wide allocator behind small SecretBytes (<= 256
// bytes). Locked (mlock), MADV_DONTDUMP pages carved into fixed-size slots
// of four size classes (32, 64, 128, 256 bytes); a slot is wiped
// (explicit_bzero) when released, so an issued slot always reads as zeros.
// Pages are never returned to the OS: the pool's footprint is the peak
// number of live small secrets, rounded up to whole refills per class. This
// keeps Release() a wipe and a push (no munmap of a page with live
// neighbours, no lock held across a syscall on the release path).
// Thread safety: all functions may be called concurrently; each size class
// has its own mutex (a leaf lock) guarding its free list.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace cfs::secret_pool {

inline constexpr size_t kMaxPooled = 256;
inline constexpr std::array<size_t, 4> kClassSizes = {32, 64, 128, 256};

// Slot size used for a secret of `size` bytes (1..kMaxPooled).
size_t SlotSizeFor(size_t size);

// A zero-filled slot of SlotSizeFor(size) bytes. Throws std::bad_alloc
// when the OS refuses memory (as the unpooled path does).
uint8_t* Acquire(size_t size);
// Wipes the slot (all `slot_size` bytes) and puts it back on its free list.
// `slot` must come from Acquire() with SlotSizeFor(size) == slot_size.
void Release(uint8_t* slot, size_t slot_size) noexcept;

// Test hooks: counts per class, and a copy of the bytes of any pool slot
// (live or free) so tests can observe wipe-on-release without reading freed
// memory through a dangling object.
struct Stats {
  std::array<size_t, 4> total_slots{};
  std::array<size_t, 4> free_slots{};
};
Stats StatsForTest();
// True and `out` filled when [slot, slot+n) lies inside one pool slot.
bool CopySlotForTest(const uint8_t* slot, size_t n, uint8_t* out);

}  // namespace cfs::secret_pool
