// A volume's tree/ (inode files, directories, symlinks, fifos: small) as
// one byte string, so a shipment between hosts can send it whole
// (ship_wire.h kTree). Keeps what CopyVolumeTree keeps: modes, owners,
// times, xattrs of directories and files, hard links as hard links.
// Format (little endian): "CFSTREE1", then records, each a kind byte:
//   'D' dir (entered), 'U' leave the current dir (its attributes applied),
//   'F' file + contents, 'H' hard link to the n-th 'F', 'S' symlink,
//   'P' fifo, 'K' socket, 'E' end.
// D, F, S, P, K carry name(u16 len + bytes), mode, uid, gid (u32), atime
// and mtime (i64 s, u32 ns); D and F then xattrs (u16 count; name u16 +
// value u32 each); F its contents (u32 + bytes); S its target (u16 +
// bytes); H name + u32 index. The first record is the 'D' of tree/ itself
// with an empty name.
// Thread safety: pure functions over the backing.
#pragma once

#include <string>

#include "common/encoding.h"
#include "common/result.h"
#include "store/backing.h"

namespace cfs::snapshot {

// Packs `volume_dir`/tree.
Result<Bytes> PackTree(store::Backing* backing, const std::string& volume_dir);

// Recreates `dst_volume_dir`/tree (which must not exist) from `packed`,
// which is hostile input: a name with '/', ".", "..", a link to a file not
// yet unpacked, anything truncated or out of bounds is DataLoss (what was
// unpacked stays, in the caller's staging folder). Nothing is fsynced.
Status UnpackTree(store::Backing* backing, ByteView packed, const std::string& dst_volume_dir);

}  // namespace cfs::snapshot
