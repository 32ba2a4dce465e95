// Copy-on-write break of one chunk file (docs/format/chunks.md section 5):
// copies `name` (open as `src_fd`) to `<name>.cow` in the same directory,
// data ranges only (holes stay holes), syncs it, renames it over `name` and
// syncs the directory. On failure the original is untouched.
// Thread safety: the caller excludes every writer of the chunk.
#pragma once

#include <string>

#include "common/status.h"
#include "store/backing.h"

namespace cfs::store {

Status BreakChunkCow(Backing* backing, int dirfd, const std::string& name, int src_fd);

}  // namespace cfs::store
