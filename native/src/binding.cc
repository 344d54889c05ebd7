// @nomyo/native: page locking, zeroing and locked allocations for secrets.
// The native layer is thin on purpose: index.js checks every argument, so these
// functions trust their argument types and only report what the OS said.
// Every OS call lives in platform.cc; this file is the Node-API side.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include <napi.h>

#include "platform.h"

namespace {

using namespace nomyo;

// ---- process-wide lock accounting ----------------------------------------

// Everything else in this addon is per call or per allocation. This is the one
// justified exception to "instance data, not statics": page locks belong to the
// process (mlock/VirtualLock work on the address space, not a thread), and the main
// thread and every worker share the same pages, so the counts that decide when a
// page may really be unlocked must be process-wide too. The registry has static
// storage duration through a pointer that is never deleted, so a worker still
// running while the process exits never touches a destroyed mutex or map.
struct LockRegistry {
  std::mutex mutex;
  // Page address -> number of live lock() calls covering that page. A page is
  // locked with the OS when its count goes 0 -> 1 and unlocked at 1 -> 0.
  std::unordered_map<uintptr_t, uint32_t> pages;
  // (view address, byte length) -> number of live lock() calls on exactly those
  // bytes, so that unlock() gives back only what lock() took: unlocking a view
  // that was never locked, or unlocking one twice, only zeroes it.
  std::map<std::pair<uintptr_t, size_t>, uint32_t> views;
  // Bytes this addon holds locked in the process: locked secure allocations plus
  // every page with a nonzero count, each page once.
  size_t locked_bytes = 0;
};

LockRegistry& Registry() {
  static LockRegistry* const registry = new LockRegistry();
  return *registry;
}

void CountLocked(size_t n) {
  LockRegistry& reg = Registry();
  std::lock_guard<std::mutex> guard(reg.mutex);
  reg.locked_bytes += n;
}

void CountUnlocked(size_t n) {
  LockRegistry& reg = Registry();
  std::lock_guard<std::mutex> guard(reg.mutex);
  reg.locked_bytes -= n < reg.locked_bytes ? n : reg.locked_bytes;
}

// ---- secure allocations ---------------------------------------------------

// One secure allocation, attached to its ArrayBuffer with napi_wrap so that
// napi_remove_wrap (explicit free) cancels the GC finalizer. It owns whole pages
// of its own mapping, so it locks them directly, outside the per-page counts.
struct Allocation {
  void* base;
  size_t mapped;  // page-rounded length of the mapping
  bool locked;
};

void Release(napi_env env, Allocation* a) {
  SecureZero(a->base, a->mapped);
  if (a->locked) {
    UnlockPages(a->base, a->mapped);
    CountUnlocked(a->mapped);
  }
  UnmapPages(a->base, a->mapped);
  int64_t ignored;
  napi_adjust_external_memory(env, -static_cast<int64_t>(a->mapped), &ignored);
  delete a;
}

void FinalizeAllocation(napi_env env, void* data, void* /*hint*/) {
  Release(env, static_cast<Allocation*>(data));
}

// ---- view helpers ---------------------------------------------------------

size_t ElementSize(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return 1;
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
      return 8;
    default:
      // A kind newer than this build (e.g. Float16Array): refuse rather than guess a size.
      return 0;
  }
}

// The bytes a TypedArray or DataView covers (index.js guarantees one of them).
void ViewBytes(const Napi::Value& value, uint8_t** data, size_t* length) {
  napi_env env = value.Env();
  void* p = nullptr;
  napi_status status;
  if (value.IsTypedArray()) {
    napi_typedarray_type type;
    size_t count = 0;
    status = napi_get_typedarray_info(env, value, &type, &count, &p, nullptr, nullptr);
    if (status == napi_ok && ElementSize(type) == 0) {
      throw Napi::TypeError::New(env, "unsupported typed array kind");
    }
    *length = count * ElementSize(type);
  } else {
    status = napi_get_dataview_info(env, value, length, &p, nullptr, nullptr);
  }
  NAPI_THROW_IF_FAILED_VOID(env, status);
  *data = static_cast<uint8_t*>(p);
  if (*data == nullptr) *length = 0;  // detached
}

// A view's bytes and the page-aligned range [begin, end) that covers them.
struct ViewPages {
  uint8_t* data;
  size_t length;
  size_t page;
  uintptr_t begin;
  uintptr_t end;
};

ViewPages ViewPagesOf(const Napi::Value& value) {
  ViewPages v{};
  ViewBytes(value, &v.data, &v.length);
  if (v.length == 0) return v;
  v.page = PageSize();
  const PageRange r = CoveringPages(v.data, v.length);
  v.begin = reinterpret_cast<uintptr_t>(r.start);
  v.end = v.begin + r.length;
  return v;
}

Allocation* Unwrap(napi_env env, napi_value arraybuffer) {
  void* data = nullptr;
  if (napi_unwrap(env, arraybuffer, &data) != napi_ok) return nullptr;
  return static_cast<Allocation*>(data);
}

// ---- exported functions ---------------------------------------------------

// lock(view): take one reference on each page covering the view; pages whose
// count goes 0 -> 1 are locked with the OS, in contiguous runs. When the OS
// refuses a run, the runs this call locked are unlocked again and no count
// changes, so a failed lock() leaves nothing behind.
Napi::Value Lock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ViewPages v = ViewPagesOf(info[0]);
  if (v.length == 0) return Napi::Boolean::New(env, true);
  uint8_t* const data = v.data;
  const size_t length = v.length;
  const size_t page = v.page;
  const uintptr_t begin = v.begin;
  const uintptr_t end = v.end;

  LockRegistry& reg = Registry();
  std::lock_guard<std::mutex> guard(reg.mutex);
  std::vector<PageRange> taken;
  bool ok = true;
  for (uintptr_t p = begin; p < end && ok;) {
    auto held = reg.pages.find(p);
    if (held != reg.pages.end()) {
      ok = held->second < std::numeric_limits<uint32_t>::max();
      p += page;
      continue;
    }
    uintptr_t run_end = p + page;
    while (run_end < end && reg.pages.find(run_end) == reg.pages.end()) run_end += page;
    PageRange run{reinterpret_cast<void*>(p), static_cast<size_t>(run_end - p)};
    ok = LockPages(run.start, run.length);
    if (ok) taken.push_back(run);
    p = run_end;
  }
  if (!ok) {
    for (const PageRange& run : taken) UnlockPages(run.start, run.length);
    return Napi::Boolean::New(env, false);
  }
  for (const PageRange& run : taken) reg.locked_bytes += run.length;
  for (uintptr_t p = begin; p < end; p += page) ++reg.pages[p];
  ++reg.views[{reinterpret_cast<uintptr_t>(data), length}];
  return Napi::Boolean::New(env, true);
}

// unlock(view): zero, then give back one earlier lock() of exactly these bytes:
// each covering page loses one reference, and only pages no other lock() still
// holds are unlocked with the OS. A view with no live lock() is only zeroed.
// Returns whether a lock() was given back and the OS unlocked what it should.
Napi::Value Unlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ViewPages v = ViewPagesOf(info[0]);
  if (v.length == 0) return Napi::Boolean::New(env, true);
  uint8_t* const data = v.data;
  const size_t length = v.length;
  SecureZero(data, length);
  const size_t page = v.page;
  const uintptr_t begin = v.begin;
  const uintptr_t end = v.end;

  LockRegistry& reg = Registry();
  std::lock_guard<std::mutex> guard(reg.mutex);
  auto view = reg.views.find({reinterpret_cast<uintptr_t>(data), length});
  if (view == reg.views.end()) return Napi::Boolean::New(env, false);
  if (--view->second == 0) reg.views.erase(view);

  bool ok = true;
  uintptr_t run_start = 0;
  size_t run_length = 0;
  auto flush = [&] {
    if (run_length == 0) return;
    ok = UnlockPages(reinterpret_cast<void*>(run_start), run_length) && ok;
    reg.locked_bytes -= run_length < reg.locked_bytes ? run_length : reg.locked_bytes;
    run_length = 0;
  };
  for (uintptr_t p = begin; p < end; p += page) {
    auto held = reg.pages.find(p);
    // Every page of a recorded view holds a reference; never count below zero.
    if (held != reg.pages.end() && --held->second == 0) {
      reg.pages.erase(held);
      if (run_length == 0) run_start = p;
      run_length += page;
    } else {
      flush();
    }
  }
  flush();
  return Napi::Boolean::New(env, ok);
}

void Zero(const Napi::CallbackInfo& info) {
  uint8_t* data;
  size_t length;
  ViewBytes(info[0], &data, &length);
  SecureZero(data, length);
}

// alloc(size) -> ArrayBuffer of `size` bytes in its own locked mapping.
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t size = static_cast<size_t>(info[0].As<Napi::Number>().Int64Value());
  const size_t page = PageSize();
  const size_t mapped = (size + page - 1) / page * page;

  void* base = MapPages(mapped);
  if (base == nullptr) {
    NAPI_THROW(Napi::Error::New(env, "allocSecure: the OS refused to map memory"), env.Undefined());
  }
  ExcludeFromDumps(base, mapped);
  // Fresh anonymous pages are already zero; a refused lock leaves a usable,
  // unlocked allocation, which the caller can see through isLocked().
  auto* a = new Allocation{base, mapped, LockPages(base, mapped)};

  napi_value ab = nullptr;
  napi_status status = napi_create_external_arraybuffer(env, base, size, nullptr, nullptr, &ab);
  if (status == napi_ok) {
    status = napi_wrap(env, ab, a, FinalizeAllocation, nullptr, nullptr);
    // Never leave a JS object pointing at memory we are about to unmap.
    if (status != napi_ok) napi_detach_arraybuffer(env, ab);
  }
  if (status != napi_ok) {
    // Electron (V8 sandbox) refuses external buffers: release the mapping here
    // and let the caller fall back to a JS-owned buffer.
    if (a->locked) UnlockPages(base, mapped);
    UnmapPages(base, mapped);
    delete a;
    NAPI_THROW_IF_FAILED(env, status, env.Undefined());
    return env.Undefined();
  }
  if (a->locked) CountLocked(mapped);
  int64_t ignored;
  napi_adjust_external_memory(env, static_cast<int64_t>(mapped), &ignored);
  return Napi::Value(env, ab);
}

// free(arraybuffer) -> true when it was a live secure allocation.
// Detach first so no JS view can reach the mapping, then zero, unlock, unmap.
Napi::Value Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_value ab = info[0];
  if (Unwrap(env, ab) == nullptr) return Napi::Boolean::New(env, false);
  NAPI_THROW_IF_FAILED(env, napi_detach_arraybuffer(env, ab), env.Undefined());
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_remove_wrap(env, ab, &data), env.Undefined());
  Release(env, static_cast<Allocation*>(data));
  return Napi::Boolean::New(env, true);
}

// allocation(arraybuffer) -> undefined if not ours, else whether it is locked.
Napi::Value AllocationLocked(const Napi::CallbackInfo& info) {
  Allocation* a = Unwrap(info.Env(), info[0]);
  if (a == nullptr) return info.Env().Undefined();
  return Napi::Boolean::New(info.Env(), a->locked);
}

// Locking "works" when a probe page can be locked now (limits, capabilities
// and current usage all count), which no static check captures.
bool ProbeLocking() {
  const size_t page = PageSize();
  void* p = MapPages(page);
  if (p == nullptr) return false;
  bool ok = LockPages(p, page);
  if (ok) UnlockPages(p, page);
  UnmapPages(p, page);
  return ok;
}

Napi::Value LockLimit(Napi::Env env) {
  double bytes = 0;
  if (!nomyo::LockLimitBytes(&bytes)) return env.Undefined();
  return Napi::Number::New(env, bytes);
}

Napi::Value ProtectionInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("locking", ProbeLocking());
  out.Set("lockLimit", LockLimit(env));
  size_t locked_bytes;
  {
    LockRegistry& reg = Registry();
    std::lock_guard<std::mutex> guard(reg.mutex);
    locked_bytes = reg.locked_bytes;
  }
  out.Set("lockedBytes", static_cast<double>(locked_bytes));
  out.Set("dumpExclusion", kDumpMechanism != nullptr);
  out.Set("lockMechanism", kLockMechanism);
  out.Set("dumpMechanism", kDumpMechanism != nullptr ? Napi::Value(Napi::String::New(env, kDumpMechanism))
                                                     : env.Null());
  out.Set("zeroMechanism", kZeroMechanism);
  out.Set("pageSize", static_cast<double>(PageSize()));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("lock", Napi::Function::New(env, Lock, "lock"));
  exports.Set("unlock", Napi::Function::New(env, Unlock, "unlock"));
  exports.Set("zero", Napi::Function::New(env, Zero, "zero"));
  exports.Set("alloc", Napi::Function::New(env, Alloc, "alloc"));
  exports.Set("free", Napi::Function::New(env, Free, "free"));
  exports.Set("allocationLocked", Napi::Function::New(env, AllocationLocked, "allocationLocked"));
  exports.Set("protectionInfo", Napi::Function::New(env, ProtectionInfo, "protectionInfo"));
  return exports;
}

}  // namespace

NODE_API_MODULE(nomyo_native, Init)
