// Volume: one cluster's or snapshot's on-disk volume (docs/format/): tree/
// (the namespace, names AES-SIV encrypted for encrypted volumes), objects/
// (chunk files, see data_store.h). The fs/ layer serves a Volume over FUSE.
// volume.yaml is read and written by config/ (yaml-cpp lives there), not here.
// Thread safety: see the class comment of each method group below.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "common/secret_bytes.h"
#include "store/backing.h"
#include "store/data_store.h"

namespace cfs::store {

struct VolumeOptions {
  uint32_t chunk_blocks = kDefaultChunkBlocks;
  bool read_only = false;
};

// Creates tree/ (with the root directory's id) and objects/ in the existing,
// empty directory `volume_dir`, durably. `data_key` null: unencrypted.
Status CreateVolumeLayout(Backing* backing, const std::string& volume_dir, const SecretBytes* data_key,
                          const VolumeOptions& options);

}  // namespace cfs::store
