// Copies of a volume that go through the plaintext (DESIGN.md section 2
// rule 5), the only two ways encryption changes: every name, symlink target,
// xattr and block is read from the source volume (decrypted and
// authenticated when it is encrypted) and written either
//   - into a new volume under another data key (an unencrypted snapshot
//     restored with --kms-key-id: every block encrypted on the way), or
//   - into a plain host directory (`cluster export`).
// Modes, times, xattrs, symlinks, fifos, hard links and holes are kept;
// owners too when running as root. Nothing is written to the source.
// Thread safety: one call works alone on its destination; the caller keeps
// writers off the source (an unmounted volume under its writer lock, or a
// snapshot, which nobody writes).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "common/secret_bytes.h"
#include "common/status.h"
#include "store/backing.h"

namespace cfs::snapshot {

struct TranscodeOptions {
  uint32_t chunk_blocks = 256;  // of both volumes (from volume.yaml)
  // Called after each piece of file data with bytes copied so far and the
  // total plaintext size of the source's files (hard links counted once).
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Set (e.g. by a SIGINT handler) to stop early: kCancelled is returned.
  const std::atomic<bool>* cancel = nullptr;
};

struct TranscodeStats {
  uint64_t dirs = 0, files = 0, symlinks = 0, others = 0, bytes = 0;
};

// Writes the plaintext contents of the volume in `src_dir` (data key
// `src_key`, null when unencrypted) into `dst_dir`, an existing empty
// directory. `dst_key` null: `dst_dir` receives plain files; else it
// becomes a volume (tree/, objects/) encrypted under `dst_key`, fsynced.
// On failure `dst_dir` holds a partial copy that the caller removes (it is a
// staging folder); DataLoss if the source fails authentication.
Status TranscodeVolume(store::Backing* backing, const std::string& src_dir, const SecretBytes* src_key,
                       const std::string& dst_dir, const SecretBytes* dst_key, const TranscodeOptions& options,
                       TranscodeStats* stats);

}  // namespace cfs::snapshot
