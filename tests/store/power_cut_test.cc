// Power-cut sweeps over the data path (DESIGN.md section 4a). The scripted
// workload runs through a FaultBacking; the power goes off at an operation
// boundary or just before the Nth mutating backing call (inside an
// operation), and every change not fsynced is dropped, kept (a killed
// daemon) or torn per 512-byte sector. The reopened volume must open, and
// after RecoverTornBlocks read every block without EIO; what was fsynced
// before the cut must be intact (crash_model.h has the exact rules).
// CIPHERFS_LONG=1: more seeds and random workloads. CIPHERFS_SEED: seed.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "support/test_util.h"
#include "sweep_run.h"

namespace cfs::test {
namespace {

struct Cut {
  PowerCutMode mode;
  uint64_t seed;
};

std::vector<Cut> Cuts(uint64_t base_seed, int tear_seeds) {
  std::vector<Cut> cuts = {{PowerCutMode::kKeep, 0}, {PowerCutMode::kDrop, 0}};
  for (int i = 0; i < tear_seeds; ++i) cuts.push_back({PowerCutMode::kTear, base_seed + uint64_t(i)});
  return cuts;
}

SweepRun::Verify VerifyFor(PowerCutMode mode, bool encrypted) {
  bool torn = mode == PowerCutMode::kTear;
  // Keep is a killed daemon and Drop tears nothing: both must read without
  // EIO even before recovery, and leave nothing to repair.
  return {/*check_before_recovery=*/!torn, ExpectFor(mode, encrypted), /*expect_no_repairs=*/!torn};
}

std::string Ctx(const char* what, uint64_t point, const Cut& cut) {
  return std::string(what) + "=" + std::to_string(point) + " " + PowerCutModeName(cut.mode) + " seed " +
         std::to_string(cut.seed);
}

class PowerCutTest : public ::testing::TestWithParam<bool> {  // param: encrypted
 protected:
  bool encrypted() const { return GetParam(); }
  int TearSeeds() const { return LongTests() ? 12 : 3; }
};

TEST_P(PowerCutTest, CutBetweenOperationsKeepsEverythingFsynced) {
  const uint64_t seed = TestSeed("CutBetweenOperationsKeepsEverythingFsynced", 1000);
  const std::vector<Op> ops = ScriptedWorkload();
  uint64_t repaired = 0;
  SweepReport report(std::string("CutBetweenOperations/") + (encrypted() ? "Encrypted" : "Plain"));
  for (size_t k = 0; k <= ops.size(); ++k) {
    for (const Cut& cut : Cuts(seed + k * 100, TearSeeds())) {
      SweepRun run(SweepConfig{encrypted()});
      ASSERT_TRUE(run.Setup());
      std::vector<Op> prefix(ops.begin(), ops.begin() + long(k));
      ASSERT_EQ(run.Run(prefix, false), -1) << "workload failed without a fault";
      run.fault().SimulatePowerCut(cut.mode, cut.seed);
      report.Add(Ctx("after op", k, cut), run.ReopenAndCheck(VerifyFor(cut.mode, encrypted())));
      repaired += run.repaired();
    }
  }
  std::fprintf(stderr, "[sweep] %llu torn blocks repaired\n", static_cast<unsigned long long>(repaired));
}

TEST_P(PowerCutTest, CutInsideOperationsAtEveryMutatingCall) {
  const uint64_t seed = TestSeed("CutInsideOperationsAtEveryMutatingCall", 2000);
  const std::vector<Op> ops = ScriptedWorkload();
  uint64_t total = 0;
  {
    SweepRun count(SweepConfig{encrypted()});
    ASSERT_TRUE(count.Setup());
    ASSERT_EQ(count.Run(ops, false), -1);
    total = count.fault().calls(OpKind::kMutation);
  }
  ASSERT_GT(total, 0u);
  uint64_t repaired = 0;
  SweepReport report(std::string("CutInsideOperations/") + (encrypted() ? "Encrypted" : "Plain"));
  for (uint64_t n = 1; n <= total; ++n) {
    for (const Cut& cut : Cuts(seed + n * 100, LongTests() ? 4 : 1)) {
      SweepRun run(SweepConfig{encrypted()});
      ASSERT_TRUE(run.Setup());
      run.fault().ArmPowerCut(OpKind::kMutation, n, cut.mode, cut.seed);
      int failed = run.Run(ops, false);
      ASSERT_TRUE(run.fault().powered_off()) << "call " << n << " of " << total << " never came";
      std::string ctx = Ctx("mutating call", n, cut) + " in op " +
                        (failed < 0 ? std::string("none") : std::to_string(failed) + " " + Describe(ops[size_t(failed)]));
      report.Add(ctx, run.ReopenAndCheck(VerifyFor(cut.mode, encrypted())));
      repaired += run.repaired();
    }
  }
  std::fprintf(stderr, "[sweep] %llu mutating calls, %llu torn blocks repaired\n",
               static_cast<unsigned long long>(total), static_cast<unsigned long long>(repaired));
  EXPECT_GT(repaired, 0u) << "no cut tore a block: the tear sweep did not exercise recovery";
}

TEST_P(PowerCutTest, RandomWorkloadsCutAtRandomCalls) {
  const uint64_t seed = TestSeed("RandomWorkloadsCutAtRandomCalls", 3000);
  const int rounds = LongTests() ? 400 : 24;
  std::mt19937_64 rng(seed);
  SweepReport report(std::string("RandomWorkloads/") + (encrypted() ? "Encrypted" : "Plain"));
  for (int r = 0; r < rounds; ++r) {
    uint64_t wseed = rng();
    std::vector<Op> ops = RandomWorkload(wseed, 3, 40, 16);
    PowerCutMode mode = PowerCutMode(rng() % 3);
    uint64_t n = 1 + rng() % 300;
    SweepRun run(SweepConfig{encrypted(), 16, 3});
    ASSERT_TRUE(run.Setup());
    run.fault().ArmPowerCut(OpKind::kMutation, n, mode, wseed);
    int failed = run.Run(ops, false);
    if (!run.fault().powered_off()) run.fault().SimulatePowerCut(mode, wseed);
    std::string ctx = "round " + std::to_string(r) + " workload seed " + std::to_string(wseed) + " call " +
                      std::to_string(n) + " " + PowerCutModeName(mode) + " op " + std::to_string(failed);
    report.Add(ctx, run.ReopenAndCheck(VerifyFor(mode, encrypted())));
  }
}

INSTANTIATE_TEST_SUITE_P(Store, PowerCutTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

}  // namespace
}  // namespace cfs::test
