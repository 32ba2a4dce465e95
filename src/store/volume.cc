// CreateVolumeLayout: a new, empty volume (tree/ with its root directory id,
// objects/), durable when this returns.
#include "store/volume.h"

#include "store/names.h"
#include "store/tree.h"
#include "store/tree_fd.h"

namespace cfs::store {

Status CreateVolumeLayout(Backing* backing, const std::string& volume_dir, const SecretBytes* data_key,
                          const VolumeOptions& options) {
  if (options.read_only) return InvalidArgument("cannot create a read-only volume");
  CFS_ASSIGN_OR_RETURN(int vfd, backing->OpenAt(AT_FDCWD, volume_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ScopedFd volume(backing, vfd);
  CFS_RETURN_IF_ERROR(backing->MkdirAt(vfd, "tree", 0755).WithContext("creating tree/"));
  CFS_RETURN_IF_ERROR(backing->MkdirAt(vfd, "objects", 0700).WithContext("creating objects/"));
  if (data_key != nullptr) {
    CFS_ASSIGN_OR_RETURN(int tfd, backing->OpenAt(vfd, "tree", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    ScopedFd tree_dir(backing, tfd);
    Tree tree(backing, NameCodec::CreatePlain());
    CFS_RETURN_IF_ERROR(tree.WriteNewDirId(tfd).WithContext("writing the root directory id"));
  }
  return backing->Fsync(vfd, false);
}

}  // namespace cfs::store
