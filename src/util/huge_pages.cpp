#include "util/huge_pages.h"

#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace edgellm {

void FreeHugePages::operator()(uint8_t* p) const { std::free(p); }

HugePageBuffer allocate_huge_pages(size_t bytes) {
  const size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  if (rounded == 0) return {};
  HugePageBuffer buffer(static_cast<uint8_t*>(std::aligned_alloc(kHugePageBytes, rounded)));
#if defined(__linux__)
  if (buffer) ::madvise(buffer.get(), rounded, MADV_HUGEPAGE);  // a hint; failure leaves 4 KiB pages
#endif
  return buffer;
}

}  // namespace edgellm
