// CLI11 registration of the snapshot commands (snapshot_commands.h):
// `snapshot create|list|describe|delete` and `cluster restore-from-snapshot|
// clone|delete`. app.cc calls RegisterSnapshotCommands.
#include "cli/snapshot_cli.h"

#include <memory>

#include "cli/snapshot_commands.h"

namespace cfs::cli {
namespace {

struct Args {
  SnapshotCreateArgs create;
  RestoreArgs restore;
  ClusterDeleteArgs del;
  std::string id, source;
};

CLI::App* Leaf(CLI::App* parent, const SnapshotCliHooks& h, const std::string& name, const std::string& what,
               const std::string& examples) {
  CLI::App* sub = parent->add_subcommand(name, what);
  sub->footer("Examples:\n" + examples);
  h.add_common(sub);
  return sub;
}

}  // namespace

void RegisterSnapshotCommands(CLI::App& app, CLI::App* cluster, const SnapshotCliHooks& h) {
  auto a = std::make_shared<Args>();
  auto on = [h, a](CLI::App* sub, std::function<Status(Context&, Args&)> f) {
    sub->callback([h, a, f] { h.set_action([a, f](Context& c) { return f(c, *a); }); });
  };
  CLI::App* snap = app.add_subcommand("snapshot", "Cluster snapshots: point-in-time, copy-on-write, read-only");
  snap->require_subcommand(1);
  CLI::App* create = Leaf(snap, h, "create",
                          "Snapshot a cluster, mounted (its daemon holds writes behind a short barrier) or not.\n"
                          "The snapshot has the cluster's encryption and key (DESIGN rule 3).",
                          "  cipherfs snapshot create --cluster orders --id orders-before-upgrade\n");
  create->add_option("--cluster", a->create.cluster, "cluster identifier")->required();
  create->add_option("--id", a->create.id, "snapshot identifier")->required();
  create->add_option("--kms-key-id", a->create.kms_key_id, "refused: a snapshot has its cluster's key");
  on(create, [](Context& c, Args& x) { return SnapshotCreate(c, x.create); });
  CLI::App* list = Leaf(snap, h, "list", "List the snapshots of the region", "  cipherfs snapshot list\n");
  on(list, [](Context& c, Args&) { return SnapshotList(c); });
  CLI::App* describe = Leaf(snap, h, "describe", "Describe a snapshot (lineage, key, shared/exclusive bytes)",
                            "  cipherfs snapshot describe --id s1 --output json\n");
  describe->add_option("--id", a->id, "snapshot identifier")->required();
  on(describe, [](Context& c, Args& x) { return SnapshotDescribe(c, x.id); });
  CLI::App* del = Leaf(snap, h, "delete", "Delete a snapshot", "  cipherfs snapshot delete --id s1\n");
  del->add_option("--id", a->id, "snapshot identifier")->required();
  on(del, [](Context& c, Args& x) { return SnapshotDelete(c, x.id); });

  CLI::App* restore = Leaf(cluster, h, "restore-from-snapshot",
                           "A new cluster from a snapshot, by copy-on-write (instant). --kms-key-id re-wraps an\n"
                           "encrypted snapshot's data key under another key.",
                           "  cipherfs cluster restore-from-snapshot --snapshot s1 --id orders-restored\n");
  restore->add_option("--snapshot", a->restore.snapshot, "snapshot identifier")->required();
  restore->add_option("--id", a->restore.id, "new cluster identifier")->required();
  restore->add_option("--kms-key-id", a->restore.kms_key_id, "key for the new cluster's data key");
  on(restore, [](Context& c, Args& x) { return ClusterRestoreFromSnapshot(c, x.restore); });
  CLI::App* clone = Leaf(cluster, h, "clone", "A new cluster as a copy-on-write clone of a cluster (same key)",
                         "  cipherfs cluster clone --source orders --id orders-test\n");
  clone->add_option("--source", a->source, "source cluster identifier")->required();
  clone->add_option("--id", a->id, "new cluster identifier")->required();
  on(clone, [](Context& c, Args& x) { return ClusterClone(c, x.source, x.id); });
  CLI::App* cdel = Leaf(cluster, h, "delete",
                        "Delete an unmounted cluster: a final snapshot or an explicit skip is required;\n"
                        "its automated backups go too unless --keep-automated-backups.",
                        "  cipherfs cluster delete --id scratch --skip-final-snapshot\n"
                        "  cipherfs cluster delete --id orders --final-snapshot-id orders-final\n");
  cdel->add_option("--id", a->del.id, "cluster identifier")->required();
  cdel->add_option("--final-snapshot-id", a->del.final_snapshot_id, "snapshot taken before deleting");
  cdel->add_flag("--skip-final-snapshot", a->del.skip_final_snapshot, "delete without a final snapshot");
  cdel->add_flag("--keep-automated-backups", a->del.keep_automated_backups, "keep automated snapshots");
  on(cdel, [](Context& c, Args& x) { return ClusterDelete(c, x.del); });
}

}  // namespace cfs::cli
