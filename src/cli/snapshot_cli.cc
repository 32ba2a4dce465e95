// CLI11 registration of the snapshot commands (snapshot_commands.h):
// `snapshot create|list|describe|delete` and `cluster restore-from-snapshot|
// clone|delete`. app.cc calls RegisterSnapshotCommands.
#include "cli/snapshot_cli.h"

#include <memory>

#include "cli/backup_commands.h"
#include "cli/snapshot_commands.h"
#include "cli/transcode_commands.h"

namespace cfs::cli {
namespace {

struct Args {
  SnapshotCreateArgs create;
  RestoreArgs restore;
  ClusterDeleteArgs del;
  BackupRunArgs backup;
  ClusterModifyArgs modify;
  std::optional<bool> delete_automated;
  ExportArgs exp;
  std::string id, source;
};

}  // namespace

CLI::App* Leaf(CLI::App* parent, const SnapshotCliHooks& h, const std::string& name, const std::string& what,
               const std::string& examples) {
  CLI::App* sub = parent->add_subcommand(name, what);
  sub->footer("Examples:\n" + examples);
  h.add_common(sub);
  return sub;
}

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
                           "encrypted snapshot's data key under another key; an unencrypted snapshot restored\n"
                           "with --kms-key-id becomes an encrypted cluster, every block encrypted on the way\n"
                           "(progress on stderr; interrupted or failed: nothing is left).",
                           "  cipherfs cluster restore-from-snapshot --snapshot s1 --id orders-restored\n");
  restore->add_option("--snapshot", a->restore.snapshot, "snapshot identifier")->required();
  restore->add_option("--id", a->restore.id, "new cluster identifier")->required();
  restore->add_option("--kms-key-id", a->restore.kms_key_id,
                      "key for the new cluster's data key (an unencrypted snapshot: encrypt every block)");
  restore->add_option("--storage-encrypted", a->restore.storage_encrypted,
                      "true: encrypt an unencrypted snapshot (default key alias/aws/rds); false: refused if encrypted");
  on(restore, [](Context& c, Args& x) { return ClusterRestoreFromSnapshot(c, x.restore); });
  CLI::App* clone = Leaf(cluster, h, "clone", "A new cluster as a copy-on-write clone of a cluster (same key)",
                         "  cipherfs cluster clone --source orders --id orders-test\n");
  clone->add_option("--source", a->source, "source cluster identifier")->required();
  clone->add_option("--id", a->id, "new cluster identifier")->required();
  on(clone, [](Context& c, Args& x) { return ClusterClone(c, x.source, x.id); });
  CLI::App* cdel = Leaf(cluster, h, "delete",
                        "Delete an unmounted cluster: a final snapshot or an explicit skip is required;\n"
                        "its automated backups go too unless --delete-automated-backups false.",
                        "  cipherfs cluster delete --id scratch --skip-final-snapshot\n"
                        "  cipherfs cluster delete --id orders --final-snapshot-identifier orders-final\n"
                        "  cipherfs cluster delete --id orders --skip-final-snapshot --delete-automated-backups false\n");
  cdel->add_option("--id", a->del.id, "cluster identifier")->required();
  cdel->add_option("--final-snapshot-identifier,--final-snapshot-id", a->del.final_snapshot_id,
                   "manual snapshot taken before deleting");
  cdel->add_flag("--skip-final-snapshot", a->del.skip_final_snapshot, "delete without a final snapshot");
  cdel->add_option("--delete-automated-backups", a->delete_automated,
                   "true (default): delete the cluster's automated snapshots; false: keep them");
  cdel->add_flag("--keep-automated-backups", a->del.keep_automated_backups, "same as --delete-automated-backups false");
  on(cdel, [](Context& c, Args& x) {
    if (x.delete_automated) x.del.keep_automated_backups = x.del.keep_automated_backups || !*x.delete_automated;
    return ClusterDelete(c, x.del);
  });

  CLI::App* modify = Leaf(cluster, h, "modify",
                          "Change a cluster's automated backups: retention period (1-35 days; 0 turns them off,\n"
                          "unencrypted clusters only) and daily backup window (hh:mm-hh:mm UTC, >= 30 min).\n"
                          "Encryption and key are fixed at creation (DESIGN rule 1): changing them is refused.",
                          "  cipherfs cluster modify --id orders --backup-retention-period 7 "
                          "--preferred-backup-window 02:00-02:30\n");
  modify->add_option("--id", a->modify.id, "cluster identifier")->required();
  modify->add_option("--backup-retention-period", a->modify.backup_retention_period, "days to keep automated backups");
  modify->add_option("--preferred-backup-window", a->modify.preferred_backup_window, "hh:mm-hh:mm UTC");
  modify->add_option("--kms-key-id", a->modify.kms_key_id, "refused: the key can't be changed");
  modify->add_option("--storage-encrypted", a->modify.storage_encrypted, "refused when it would change");
  on(modify, [](Context& c, Args& x) { return ClusterModify(c, x.modify); });

  CLI::App* exp = Leaf(cluster, h, "export",
                       "Copy the plaintext of a cluster out to a new or empty plain directory (the only way\n"
                       "out of encryption, DESIGN rule 5). The cluster must be unmounted. Progress on stderr;\n"
                       "built in a hidden folder beside the target and renamed into place at the end.",
                       "  cipherfs cluster export --id orders --to /srv/orders-plain\n");
  exp->add_option("--id", a->exp.id, "cluster identifier")->required();
  exp->add_option("--to", a->exp.to, "target directory (absent or empty)")->required();
  on(exp, [](Context& c, Args& x) { return ClusterExport(c, x.exp); });

  CLI::App* backup = app.add_subcommand("backup", "Automated backups (snapshots of kind automated)");
  backup->require_subcommand(1);
  CLI::App* run = Leaf(backup, h, "run",
                       "Take the automated snapshots that are due (inside a cluster's backup window, or\n"
                       "none in the last day) and delete those past the retention period. Run it from\n"
                       "cron or the cipherfs-backup.timer systemd unit; mount daemons also do it.",
                       "  cipherfs backup run\n  cipherfs backup run --cluster orders --output json\n"
                       "  */15 * * * * root cipherfs backup run     # /etc/cron.d/cipherfs-backup\n");
  run->add_option("--cluster", a->backup.cluster, "only this cluster (default: all of the region)");
  run->add_option("--at", a->backup.at, "act as if it were this RFC 3339 UTC time (testing)")->group("");
  on(run, [](Context& c, Args& x) { return BackupRun(c, x.backup); });
}

}  // namespace cfs::cli
