// The commands that go through the plaintext (DESIGN.md section 2 rule 5;
// snapshot/volume_transcode.h): `cluster export` (an encrypted cluster's
// plaintext copied out to a plain directory) and the restore of an
// unencrypted snapshot into an encrypted cluster. Both build their result
// in a staging folder next to the target and rename it into place at the
// end, show progress on stderr (a bar on a terminal, else a line every few
// seconds) and stop cleanly on SIGINT/SIGTERM: on any failure or
// interruption nothing is left behind.
// Thread safety: one command per process (they install signal handlers).
#pragma once

#include <string>

#include "cli/context.h"
#include "config/volume_yaml.h"

namespace cfs::cli {

struct ExportArgs {
  std::string id;  // cluster
  std::string to;  // a new or empty directory
};
Status ClusterExport(Context& ctx, const ExportArgs& args);

// Restores the unencrypted snapshot `s` as the new encrypted cluster `id`
// under `key` (any identifier form): a new data key from the KMS (which
// checks the key exists and is usable before anything is made), every
// block encrypted on the way. Prints the new cluster.
Status RestoreEncrypting(Context& ctx, const config::VolumeDescriptor& s, const std::string& id,
                         const std::string& key);

}  // namespace cfs::cli
