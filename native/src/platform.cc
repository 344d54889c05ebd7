// The OS side of @nomyo/native: page size, locking, mapping, dump exclusion,
// zeroing and the lock limit, for Linux, macOS, the BSDs and Windows. No Node-API here.

// memset_s is declared only when this is set before <string.h> (macOS).
#define __STDC_WANT_LIB_EXT1__ 1
#include <string.h>

#include <cmath>

#include "platform.h"

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

namespace nomyo {

#if defined(_WIN32)
const char* const kLockMechanism = "VirtualLock";
const char* const kZeroMechanism = "SecureZeroMemory";
#else
const char* const kLockMechanism = "mlock";
#if defined(__APPLE__)
const char* const kZeroMechanism = "memset_s";
#elif defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__)
const char* const kZeroMechanism = "explicit_bzero";
#else
const char* const kZeroMechanism = "memset+barrier";
#endif
#endif

// Linux has MADV_DONTDUMP, FreeBSD MADV_NOCORE; macOS and Windows have no
// per-range core dump exclusion, so they report none.
#if defined(MADV_DONTDUMP)
#define NOMYO_DUMP_ADVICE MADV_DONTDUMP
const char* const kDumpMechanism = "MADV_DONTDUMP";
#elif defined(MADV_NOCORE)
#define NOMYO_DUMP_ADVICE MADV_NOCORE
const char* const kDumpMechanism = "MADV_NOCORE";
#else
const char* const kDumpMechanism = nullptr;
#endif

// A zeroing the optimizer may not drop as a dead store.
void SecureZero(void* p, size_t n) {
  if (p == nullptr || n == 0) return;
#if defined(_WIN32)
  SecureZeroMemory(p, n);
#elif defined(__APPLE__)
  memset_s(p, n, 0, n);
#elif defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__)
  explicit_bzero(p, n);
#else
  memset(p, 0, n);
  __asm__ __volatile__("" : : "r"(p) : "memory");
#endif
}

// Immutable for the life of the process, so a function-local constant is not
// per-environment state.
size_t PageSize() {
  static const size_t size = [] {
#ifdef _WIN32
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return static_cast<size_t>(si.dwPageSize);
#else
    long ps = sysconf(_SC_PAGESIZE);
    return static_cast<size_t>(ps > 0 ? ps : 4096);
#endif
  }();
  return size;
}

PageRange CoveringPages(const void* p, size_t n) {
  const uintptr_t mask = static_cast<uintptr_t>(PageSize()) - 1;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) & ~mask;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n + mask) & ~mask;
  return {reinterpret_cast<void*>(begin), static_cast<size_t>(end - begin)};
}

bool LockPages(void* start, size_t length) {
#ifdef _WIN32
  return VirtualLock(start, length) != 0;
#else
  return mlock(start, length) == 0;
#endif
}

bool UnlockPages(void* start, size_t length) {
#ifdef _WIN32
  return VirtualUnlock(start, length) != 0;
#else
  return munlock(start, length) == 0;
#endif
}

void* MapPages(size_t length) {
#ifdef _WIN32
  return VirtualAlloc(nullptr, length, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
#else
  void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
#endif
}

void UnmapPages(void* start, size_t length) {
#ifdef _WIN32
  (void)length;
  VirtualFree(start, 0, MEM_RELEASE);
#else
  munmap(start, length);
#endif
}

bool ExcludeFromDumps(void* start, size_t length) {
#ifdef NOMYO_DUMP_ADVICE
  return madvise(start, length, NOMYO_DUMP_ADVICE) == 0;
#else
  (void)start;
  (void)length;
  return false;
#endif
}

bool LockLimitBytes(double* bytes) {
#ifdef _WIN32
  // VirtualLock is bounded by the minimum working set size.
  SIZE_T min_ws = 0, max_ws = 0;
  if (!GetProcessWorkingSetSize(GetCurrentProcess(), &min_ws, &max_ws)) return false;
  *bytes = static_cast<double>(min_ws);
#else
  struct rlimit rl;
  if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) return false;
  *bytes = rl.rlim_cur == RLIM_INFINITY ? INFINITY : static_cast<double>(rl.rlim_cur);
#endif
  return true;
}

}  // namespace nomyo
