#include "snapshot/volume_delete.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include <fmt/format.h>

#include "store/tree_fd.h"

namespace cfs::snapshot {

Status RemoveTreeVia(store::Backing* b, int dirfd, const std::string& name) {
  {
    CFS_ASSIGN_OR_RETURN(int fd, b->OpenAt(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    store::ScopedFd dir(b, fd);
    CFS_ASSIGN_OR_RETURN(std::vector<std::string> names, b->ListDir(fd));
    for (const auto& n : names) {
      CFS_ASSIGN_OR_RETURN(struct stat st, b->FstatAt(fd, n, AT_SYMLINK_NOFOLLOW));
      if (S_ISDIR(st.st_mode)) {
        CFS_RETURN_IF_ERROR(RemoveTreeVia(b, fd, n));
      } else {
        CFS_RETURN_IF_ERROR(b->UnlinkAt(fd, n, 0));
      }
    }
  }
  return b->UnlinkAt(dirfd, name, AT_REMOVEDIR);
}

Status DeleteVolumeVia(store::Backing* b, const std::string& parent_dir, const std::string& id) {
  CFS_ASSIGN_OR_RETURN(int pfd, b->OpenAt(AT_FDCWD, parent_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  store::ScopedFd parent(b, pfd);
  std::random_device rd;
  const std::string doomed = fmt::format(".tmp-delete-{}-{}-{:08x}", id, ::getpid(), rd());
  Status r = b->RenameAt(pfd, id, pfd, doomed, 0);
  if (!r.ok()) {
    if (r.sys_errno() == ENOENT) return NotFound(fmt::format("{} not found in {}", id, parent_dir));
    return r;
  }
  CFS_RETURN_IF_ERROR(b->Fsync(pfd, false));
  return RemoveTreeVia(b, pfd, doomed);
}

}  // namespace cfs::snapshot
