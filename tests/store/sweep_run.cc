// SweepRun: see sweep_run.h.
#include "sweep_run.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace cfs::test {

Expect ExpectFor(PowerCutMode mode, bool encrypted) {
  switch (mode) {
    case PowerCutMode::kKeep: return Expect::kKeep;
    case PowerCutMode::kDrop: return Expect::kDrop;
    case PowerCutMode::kTear: return encrypted ? Expect::kTearEncrypted : Expect::kTearPlain;
  }
  return Expect::kKeep;
}

SweepRun::SweepRun(const SweepConfig& config)
    : config_(config), volume_(config.encrypted, config.chunk_blocks),
      fault_(&posix_, config.fault_options),
      tracker_(config.files) {}

SweepRun::~SweepRun() {
  files_.clear();
  store_.reset();
}

bool SweepRun::Setup() {
  auto ds = volume_.Open(&fault_);
  EXPECT_TRUE(ds.ok()) << "DataStore::Open of a new volume: " << ds.status().ToString();
  if (!ds.ok()) return false;
  store_ = std::move(ds).value();
  for (int i = 0; i < config_.files; ++i) {
    auto f = volume_.CreateFile(&fault_, store_.get(), i);
    EXPECT_TRUE(f.ok()) << "create f" << i << ": " << f.status().ToString();
    if (!f.ok()) return false;
    files_.push_back(std::move(f).value());
  }
  fault_.ResetCounts();
  return true;
}

int SweepRun::Run(const std::vector<Op>& ops, bool check_sync_errors, int retries) {
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    tracker_.Begin(op);
    Status s;
    for (int attempt = 0; attempt <= retries; ++attempt) {
      uint64_t faults_before = fault_.faults_injected();
      s = op.type == Op::Type::kSnapshot ? TakeSnapshot(op.file) : ApplyToStore(op, files_[size_t(op.file)].get());
      // (A failed close after a successful fsync loses nothing: exempt.)
      if (s.ok() && check_sync_errors && op.type == Op::Type::kSync && fault_.faults_injected() > faults_before &&
          fault_.last_fault_kind() != OpKind::kClose) {
        sync_problem_ = "[sync-error-dropped] " + Describe(op) +
                        " returned OK although a fault was injected during it (" + fault_.last_fault() + ")";
      }
      if (fault_op_ < 0 && fault_.faults_injected() > faults_before) fault_op_ = int(i);
      if (s.ok()) break;
    }
    if (!s.ok()) {
      tracker_.Failed();
      return int(i);
    }
    tracker_.Succeeded();
  }
  return -1;
}

Status SweepRun::TakeSnapshot(int file) {
  const store::FileId& id = files_[size_t(file)]->id();
  std::string chunks = std::filesystem::path(volume_.ChunkPath(id, 0)).parent_path();
  std::string snap = volume_.path() + "/snap";
  std::error_code ec;
  std::filesystem::create_directories(snap, ec);
  store_->BeginWriteBarrier();
  for (const auto& e : std::filesystem::directory_iterator(chunks, ec)) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::filesystem::create_hard_link(e.path(), snap + "/" + std::to_string(++snapshots_) + "_" + name, ec);
    if (ec) break;
  }
  store_->BumpCowEpoch();
  store_->EndWriteBarrier();
  if (ec) return Internal("snapshot link: " + ec.message());
  return Status::Ok();
}

std::string SweepRun::CheckAll(store::DataStore* ds, Expect expect, const std::string& when) {
  for (int i = 0; i < config_.files; ++i) {
    auto f = volume_.OpenFile(&posix_, ds, i);
    if (!f.ok()) return "[open] f" + std::to_string(i) + " " + when + ": " + f.status().ToString();
    std::string problem = tracker_.Check(i, f->get(), expect);
    if (!problem.empty()) return problem + " " + when;
  }
  return "";
}

std::string SweepRun::ReopenAndCheck(const Verify& verify) {
  files_.clear();
  store_.reset();  // the daemon is gone: no CloseClean
  repaired_ = 0;
  auto ds = volume_.Open(&posix_);
  if (!ds.ok()) return "[reopen] " + ds.status().ToString();
  if (!(*ds)->unclean()) return "[clean-flag] a volume never closed cleanly opened clean";
  if (verify.check_before_recovery) {
    std::string p = CheckAll(ds->get(), verify.expect, "before recovery");
    if (!p.empty()) return p;
  }
  auto repaired = (*ds)->RecoverTornBlocks();
  if (!repaired.ok()) return "[recover] RecoverTornBlocks: " + repaired.status().ToString();
  repaired_ = *repaired;
  std::string p = CheckAll(ds->get(), verify.expect, "after recovery");
  if (!p.empty()) return p;
  if (verify.expect_no_repairs && *repaired != 0) {
    return "[repair-untorn] RecoverTornBlocks re-tagged " + std::to_string(*repaired) +
           " blocks although no power was lost";
  }
  // Recovery's result must be stable across a clean close and reopen.
  std::vector<Bytes> contents;
  for (int i = 0; i < config_.files; ++i) {
    auto f = volume_.OpenFile(&posix_, ds->get(), i);
    if (!f.ok()) return "[open] f" + std::to_string(i) + ": " + f.status().ToString();
    Bytes b((*f)->size());
    auto n = (*f)->Read(0, b.size(), b.data());
    if (!n.ok() || *n != b.size()) return "[eio] whole read of f" + std::to_string(i);
    contents.push_back(std::move(b));
  }
  Status closed = (*ds)->CloseClean();
  if (!closed.ok()) return "[close] CloseClean: " + closed.ToString();
  ds->reset();
  auto again = volume_.Open(&posix_);
  if (!again.ok()) return "[reopen] after CloseClean: " + again.status().ToString();
  if ((*again)->unclean()) return "[clean-flag] unclean after CloseClean";
  for (int i = 0; i < config_.files; ++i) {
    std::string fi = "f" + std::to_string(i);
    auto f = volume_.OpenFile(&posix_, again->get(), i);
    if (!f.ok()) return "[open] " + fi + " after a clean reopen: " + f.status().ToString();
    Bytes b((*f)->size());
    auto n = (*f)->Read(0, b.size(), b.data());
    if (!n.ok() || b != contents[size_t(i)]) return "[unstable] " + fi + " changed across a clean reopen";
    if (verify.check_past_eof) {
      p = CheckGrowReadsZeros(f->get());
      if (!p.empty()) return p + " (" + fi + ")";
    }
  }
  return "";
}

// Growing a file must expose zeros, never bytes left past the end of file
// by an interrupted operation (POSIX; databases extend files so).
std::string SweepRun::CheckGrowReadsZeros(store::FileData* file) {
  uint64_t size = file->size();
  uint64_t grown = size + 3ull * config_.chunk_blocks * 4096;
  Status s = file->Truncate(grown);
  if (!s.ok()) return "[grow] " + s.ToString();
  Bytes b(grown - size);
  auto n = file->Read(size, b.size(), b.data());
  if (!n.ok()) return "[eio] read of the grown range: " + n.status().ToString();
  auto nonzero = std::find_if(b.begin(), b.end(), [](uint8_t x) { return x != 0; });
  if (nonzero == b.end()) return "";
  uint64_t at = size + uint64_t(nonzero - b.begin());
  return "[stale-past-eof] growing from " + std::to_string(size) + " exposed old bytes at " + std::to_string(at) +
         " (block " + std::to_string(at / 4096) + ")";
}

SweepReport::~SweepReport() {
  std::fprintf(stderr, "[sweep] %s: %llu runs, %llu failed\n", name_.c_str(), static_cast<unsigned long long>(runs_),
               static_cast<unsigned long long>(failed_));
  if (failed_ == 0) return;
  std::string msg = name_ + ": " + std::to_string(failed_) + " of " + std::to_string(runs_) + " runs failed";
  for (const auto& [category, examples] : by_category_) {
    msg += "\n  " + category + " x" + std::to_string(counts_[category]) + ", e.g.";
    for (const auto& e : examples) msg += "\n    " + e;
  }
  ADD_FAILURE() << msg;
}

void SweepReport::Add(const std::string& context, const std::string& problem) {
  ++runs_;
  if (problem.empty()) return;
  ++failed_;
  std::string category = problem.substr(0, problem.find(']') + 1);
  ++counts_[category];
  auto& examples = by_category_[category];
  if (examples.size() < 3) examples.push_back(context + ": " + problem);
}

}  // namespace cfs::test
