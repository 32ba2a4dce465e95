// libFuzzer target for the volume.yaml and config.yaml parsers: any input
// must give a descriptor that validates and round-trips, or a clean error.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config.h"
#include "config/volume_yaml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto d = cfs::config::ParseVolumeYaml(text, "fuzz.yaml");
  if (d.ok()) {
    auto again = cfs::config::FormatVolumeYaml(*d);
    if (!again.ok()) std::abort();
    auto back = cfs::config::ParseVolumeYaml(*again, "fuzz2.yaml");
    if (!back.ok() || !(*back == *d)) std::abort();
  }
  (void)cfs::config::ParseConfig(text, "fuzz-config.yaml");
  return 0;
}
