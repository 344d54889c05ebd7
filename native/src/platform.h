// The OS calls @nomyo/native needs, one function each, behind a plain C++ interface
// (platform.cc has the Linux, macOS, BSD and Windows versions).
#ifndef NOMYO_PLATFORM_H_
#define NOMYO_PLATFORM_H_

#include <cstddef>
#include <cstdint>

namespace nomyo {

// What protectionInfo() reports; kDumpMechanism is null where no range can be
// excluded from core dumps (macOS, Windows).
extern const char* const kLockMechanism;
extern const char* const kZeroMechanism;
extern const char* const kDumpMechanism;

// A zeroing the optimizer may not drop as a dead store.
void SecureZero(void* p, size_t n);

size_t PageSize();

// Locking works on whole pages: [p, p+n) widened to the pages that cover it.
struct PageRange {
  void* start;
  size_t length;
};
PageRange CoveringPages(const void* p, size_t n);

bool LockPages(void* start, size_t length);
bool UnlockPages(void* start, size_t length);
// Fresh zeroed pages outside any heap (mmap / VirtualAlloc); null on failure.
void* MapPages(size_t length);
void UnmapPages(void* start, size_t length);
bool ExcludeFromDumps(void* start, size_t length);
// RLIMIT_MEMLOCK (Infinity when unlimited), or the minimum working set on Windows.
bool LockLimitBytes(double* bytes);

}  // namespace nomyo

#endif  // NOMYO_PLATFORM_H_
