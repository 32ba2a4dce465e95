// The crash-sweep oracle: see crash_model.h.
#include "crash_model.h"

#include <gtest/gtest.h>
#include <linux/falloc.h>

#include <algorithm>
#include <random>

#include "support/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kBlk = 4096;
constexpr uint64_t kSec = 512;

void MarkBlocks(uint64_t begin, uint64_t end, std::set<uint64_t>* out) {
  if (end <= begin) return;
  for (uint64_t b = begin / kBlk; b <= (end - 1) / kBlk; ++b) out->insert(b);
}

// Blocks whose bytes on disk `op` may rewrite, given the size before it.
std::set<uint64_t> TouchedBlocks(const Op& op, uint64_t old_size) {
  std::set<uint64_t> t;
  switch (op.type) {
    case Op::Type::kWrite:
    case Op::Type::kFallocate:
      MarkBlocks(op.offset, op.offset + op.length, &t);
      break;
    case Op::Type::kTruncate:
      MarkBlocks(std::min(old_size, op.length), std::max(old_size, op.length), &t);
      if (op.length % kBlk != 0) t.insert(op.length / kBlk);
      break;
    case Op::Type::kSync:
    case Op::Type::kSnapshot:
      break;
  }
  return t;
}

Bytes Padded(const Bytes& b, size_t n) {
  Bytes out = b;
  out.resize(std::max(n, b.size()), 0);
  return out;
}

bool RangeEqual(const uint8_t* got, const Bytes& padded, uint64_t off, uint64_t n) {
  return std::equal(got, got + n, padded.begin() + off);
}

}  // namespace

std::string Describe(const Op& op) {
  std::string f = " f" + std::to_string(op.file);
  switch (op.type) {
    case Op::Type::kWrite:
      return "write" + f + " [" + std::to_string(op.offset) + ", +" + std::to_string(op.length) + ")";
    case Op::Type::kTruncate: return "truncate" + f + " to " + std::to_string(op.length);
    case Op::Type::kFallocate:
      return "fallocate" + f + " mode " + std::to_string(op.mode) + " [" + std::to_string(op.offset) + ", +" +
             std::to_string(op.length) + ")";
    case Op::Type::kSync: return std::string(op.mode ? "fdatasync" : "fsync") + f;
    case Op::Type::kSnapshot: return "snapshot" + f;
  }
  return "?";
}

Op Write(int file, uint64_t offset, uint64_t length, uint64_t tag) {
  return Op{Op::Type::kWrite, file, offset, length, 0, tag};
}
Op Truncate(int file, uint64_t size) { return Op{Op::Type::kTruncate, file, 0, size, 0, 0}; }
Op Fallocate(int file, int mode, uint64_t offset, uint64_t length) {
  return Op{Op::Type::kFallocate, file, offset, length, mode, 0};
}
Op Sync(int file, bool datasync) { return Op{Op::Type::kSync, file, 0, 0, datasync ? 1 : 0, 0}; }
Op Snapshot(int file) { return Op{Op::Type::kSnapshot, file, 0, 0, 0, 0}; }

void ApplyToModel(const Op& op, Bytes* data) {
  uint64_t end = op.offset + op.length;
  switch (op.type) {
    case Op::Type::kWrite: {
      if (data->size() < end) data->resize(end, 0);
      Bytes p = Pattern(op.length, op.tag);
      std::copy(p.begin(), p.end(), data->begin() + long(op.offset));
      break;
    }
    case Op::Type::kTruncate:
      data->resize(op.length, 0);
      break;
    case Op::Type::kFallocate:
      if ((op.mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) != 0) {
        for (uint64_t i = op.offset; i < std::min<uint64_t>(end, data->size()); ++i) (*data)[i] = 0;
      }
      if ((op.mode & FALLOC_FL_KEEP_SIZE) == 0 && data->size() < end) data->resize(end, 0);
      break;
    case Op::Type::kSync:
    case Op::Type::kSnapshot:
      break;
  }
}

Status ApplyToStore(const Op& op, store::FileData* file) {
  switch (op.type) {
    case Op::Type::kWrite: {
      Bytes p = Pattern(op.length, op.tag);
      auto n = file->Write(op.offset, ByteView(p.data(), p.size()));
      if (!n.ok()) return n.status();
      if (*n != op.length) return Internal("short write: " + std::to_string(*n));
      return Status::Ok();
    }
    case Op::Type::kTruncate: return file->Truncate(op.length);
    case Op::Type::kFallocate: return file->Fallocate(op.mode, op.offset, op.length);
    case Op::Type::kSync: return file->Sync(op.mode != 0);
    case Op::Type::kSnapshot: break;
  }
  return Internal("op not run by ApplyToStore");
}

const char* ExpectName(Expect e) {
  switch (e) {
    case Expect::kKeep: return "keep";
    case Expect::kDrop: return "drop";
    case Expect::kTearPlain: return "tear(plain)";
    case Expect::kTearEncrypted: return "tear(encrypted)";
  }
  return "?";
}

Tracker::Tracker(int files) : files_(size_t(files)) {
  for (auto& f : files_) f.states.push_back(Bytes());
}

void Tracker::Begin(const Op& op) {
  pending_op_ = op;
  FileTrack& t = files_[size_t(op.file)];
  t.pending = t.states.back();
  ApplyToModel(op, &t.pending);
  t.has_pending = true;
}

void Tracker::Succeeded() {
  FileTrack& t = files_[size_t(pending_op_.file)];
  t.has_pending = false;
  if (pending_op_.type == Op::Type::kSync) {
    t.states = {t.states.back()};
    t.touched.clear();
    return;
  }
  std::set<uint64_t> touched = TouchedBlocks(pending_op_, t.states.back().size());
  t.touched.insert(touched.begin(), touched.end());
  t.states.push_back(std::move(t.pending));
  t.pending.clear();
}

void Tracker::Failed() {
  FileTrack& t = files_[size_t(pending_op_.file)];
  std::set<uint64_t> touched = TouchedBlocks(pending_op_, t.states.back().size());
  t.touched.insert(touched.begin(), touched.end());
}

std::vector<Bytes> Tracker::Candidates(const FileTrack& t, Expect expect) const {
  std::vector<Bytes> c;
  if (expect == Expect::kKeep) {
    c.push_back(t.states.back());
  } else {
    c = t.states;
  }
  if (t.has_pending) c.push_back(t.pending);
  return c;
}

std::string Tracker::Check(int index, store::FileData* file, Expect expect) const {
  const FileTrack& t = files_[size_t(index)];
  std::string where = "f" + std::to_string(index) + " (" + ExpectName(expect) + ")";
  std::vector<Bytes> cands = Candidates(t, expect);
  uint64_t size = file->size();
  if (std::none_of(cands.begin(), cands.end(), [&](const Bytes& c) { return c.size() == size; })) {
    return "[size] " + where + ": size " + std::to_string(size) + " is no allowed state";
  }
  size_t max_len = size;
  for (const auto& c : cands) max_len = std::max(max_len, c.size());
  for (auto& c : cands) c = Padded(c, max_len);
  Bytes synced = Padded(t.states.front(), max_len);
  const bool tear = expect == Expect::kTearPlain || expect == Expect::kTearEncrypted;
  Bytes buf(kBlk);
  for (uint64_t off = 0; off < size; off += kBlk) {
    uint64_t n = std::min(kBlk, size - off);
    std::string block = where + " block " + std::to_string(off / kBlk);
    auto r = file->Read(off, n, buf.data());
    if (!r.ok()) return "[eio] " + block + ": " + r.status().ToString();
    if (*r != n) return "[short-read] " + block + ": " + std::to_string(*r) + " of " + std::to_string(n);
    if (tear && t.touched.count(off / kBlk) == 0) {
      if (!RangeEqual(buf.data(), synced, off, n)) return "[synced-lost] " + block + " differs from its synced content";
      continue;
    }
    if (expect == Expect::kTearEncrypted) {
      // A torn block may be noise only where some unsynced write changed a
      // sector: a sector every allowed state agrees on (fsynced bytes no
      // write since the sync changed) is exact (chunks.md 4.1). Not checked
      // where the synced sector is zeros (a hole at the sync: the chunk may
      // be new, and its salt's header write lost with the tag page).
      for (uint64_t s = 0; s < n; s += kSec) {
        uint64_t m = std::min(kSec, n - s);
        const uint8_t* was = synced.data() + off + s;
        bool stable = std::any_of(was, was + m, [](uint8_t x) { return x != 0; }) &&
                      std::all_of(cands.begin(), cands.end(),
                                  [&](const Bytes& c) { return RangeEqual(c.data() + off + s, synced, off + s, m); });
        if (stable && !RangeEqual(buf.data() + s, synced, off + s, m)) {
          return "[synced-lost] " + block + " sector " + std::to_string(s / kSec) +
                 ": fsynced bytes no write changed are gone";
        }
      }
      continue;
    }
    uint64_t step = expect == Expect::kTearPlain ? kSec : kBlk;
    for (uint64_t s = 0; s < n; s += step) {
      uint64_t m = std::min(step, n - s);
      if (std::none_of(cands.begin(), cands.end(),
                       [&](const Bytes& c) { return RangeEqual(buf.data() + s, c, off + s, m); })) {
        return "[content] " + block + (step == kSec ? " sector " + std::to_string(s / kSec) : "") +
               " matches no allowed state";
      }
    }
  }
  return "";
}

std::vector<Op> ScriptedWorkload() {
  const int p = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  return {
      Write(0, 0, 10000, 1),                 // multi-block, partial last block
      Write(0, 3 * kBlk + 512, 512, 2),      // 512-byte sub-block write
      Sync(0),
      Write(1, 60000, 80000, 3),             // extends, crosses chunk 0 -> 1, hole in front
      Write(0, 70000, 100, 4),               // extends into chunk 1, sub-block
      Truncate(0, 5000),                     // shrink: drops chunk 1, re-encrypts partial block
      Sync(1, true),
      Fallocate(1, p, 65536 + kBlk, 2 * kBlk),  // punch two blocks
      Write(0, 4608, 512, 5),
      Truncate(1, 300000),                   // grow: holes
      Sync(0),
      Fallocate(0, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 1000, 2000),
      Write(1, 200000, kBlk, 6),             // aligned block in the grown range
      Write(1, 65536 + kBlk + 100, 300, 7),  // sub-block into a punched block
      Sync(1),
      Snapshot(1),
      Write(1, 65536, 512, 11),            // copy-on-write break of chunk 1
      Write(0, 0, 20000, 8),                 // overwrite, extend
      Write(0, 2048, 512, 9),
      Fallocate(0, 0, 20000, 3 * kBlk),      // allocate, extends the size
      Sync(0, true),
      Snapshot(0),
      Write(1, 0, 3 * kBlk, 10),          // copy-on-write break of chunk 0
      Write(0, kBlk, kBlk, 12),
      Truncate(1, 2 * kBlk + 17),
      Sync(1),
  };
}

std::vector<Op> RandomWorkload(uint64_t seed, int files, int ops, uint32_t chunk_blocks) {
  std::mt19937_64 rng(seed);
  const uint64_t span = 3ull * chunk_blocks * kBlk;
  auto pick = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  std::vector<Op> out;
  for (int i = 0; i < ops; ++i) {
    int f = int(pick(uint64_t(files)));
    switch (pick(10)) {
      case 0: out.push_back(Sync(f, pick(2) == 0)); break;
      case 1: out.push_back(Truncate(f, pick(span))); break;
      case 2:
        out.push_back(Fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pick(span), 1 + pick(3 * kBlk)));
        break;
      case 3: out.push_back(Write(f, pick(span / kSec) * kSec, kSec, 1000 + uint64_t(i))); break;
      case 4: out.push_back(Write(f, pick(span / kBlk) * kBlk, kBlk * (1 + pick(4)), 1000 + uint64_t(i))); break;
      default: out.push_back(Write(f, pick(span), 1 + pick(3 * kBlk), 1000 + uint64_t(i))); break;
    }
  }
  return out;
}

}  // namespace cfs::test
