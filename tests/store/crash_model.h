// The oracle of the crash sweeps: scripted FileData operations, a byte model
// of each file, what each file may legitimately look like after a fault or
// a power cut, and the check of a reopened file against that.
//
// Per file the Tracker keeps the state at the last successful Sync, every
// state since (one per completed operation), the state the interrupted
// operation would have produced, and the blocks touched since the Sync.
// Allowed outcomes (Expect):
//   kKeep  (no power loss: injected error, daemon kill, Keep cut): size and
//          every 4 KiB block equal the last completed state or, for the
//          interrupted operation, its result;
//   kDrop  (Drop cut): size and every block equal some state since the Sync;
//   kTearPlain (Tear cut, unencrypted): size as kDrop; untouched blocks
//          exact; every 512-byte sector of a touched block equals that
//          sector in some state since the Sync;
//   kTearEncrypted: size as kDrop; untouched blocks exact; touched blocks
//          only need to read without error (a torn ciphertext decrypts to
//          noise, see docs/format/chunks.md section 4).
// In every mode every block must read without error.
// Thread safety: single-threaded test helpers.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "store/data_store.h"

namespace cfs::test {

using Bytes = std::vector<uint8_t>;

struct Op {
  // kSnapshot: hard-link the file's chunk files elsewhere and bump the cow
  // epoch, as a snapshot does (run by SweepRun): the next writes break
  // copy-on-write (copy, fsync, rename). No change to the contents.
  enum class Type { kWrite, kTruncate, kFallocate, kSync, kSnapshot };
  Type type = Type::kWrite;
  int file = 0;
  uint64_t offset = 0;  // kWrite, kFallocate
  uint64_t length = 0;  // kWrite, kFallocate; kTruncate: the new size
  int mode = 0;         // kFallocate mode; kSync: 1 = datasync
  uint64_t tag = 0;     // kWrite: Pattern(length, tag)
};
std::string Describe(const Op& op);
Op Write(int file, uint64_t offset, uint64_t length, uint64_t tag);
Op Truncate(int file, uint64_t size);
Op Fallocate(int file, int mode, uint64_t offset, uint64_t length);
Op Sync(int file, bool datasync = false);
Op Snapshot(int file);

// The operation's effect on the model, and on the store (not kSnapshot).
void ApplyToModel(const Op& op, Bytes* data);
Status ApplyToStore(const Op& op, store::FileData* file);

enum class Expect { kKeep, kDrop, kTearPlain, kTearEncrypted };
const char* ExpectName(Expect e);

class Tracker {
 public:
  explicit Tracker(int files);
  // Before running `op`: remembers its would-be result as pending.
  void Begin(const Op& op);
  // `op` (the pending one) returned OK.
  void Succeeded();
  // `op` failed or was cut off: its result stays possible, nothing after it.
  void Failed();
  const Bytes& current(int file) const { return files_[size_t(file)].states.back(); }
  int files() const { return int(files_.size()); }

  // Checks the reopened `file` number `index` against the allowed
  // outcomes. Returns the first problem, "[category] detail", or "".
  std::string Check(int index, store::FileData* file, Expect expect) const;

 private:
  struct FileTrack {
    std::vector<Bytes> states;   // states[0]: at the last Sync; back(): now
    std::set<uint64_t> touched;  // blocks changed since the last Sync
    bool has_pending = false;
    Bytes pending;
  };
  std::vector<Bytes> Candidates(const FileTrack& t, Expect expect) const;

  std::vector<FileTrack> files_;
  Op pending_op_;
};

// A reproducible workload over `files` files exercising what the data path
// must survive: multi-block, sub-block (512 B) and unaligned writes,
// extending writes across chunks, truncate shrink and grow, punch hole,
// zero range, allocation, fsync and fdatasync, copy-on-write breaks. Block numbers are chosen for
// `chunk_blocks` = 16.
std::vector<Op> ScriptedWorkload();
// A random workload (sizes and offsets within a few chunks) from `seed`.
std::vector<Op> RandomWorkload(uint64_t seed, int files, int ops, uint32_t chunk_blocks);

}  // namespace cfs::test
