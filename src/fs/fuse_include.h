// The one place fs/ includes libfuse, with the API version we build against.
// Thread safety: n/a (includes only).
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
