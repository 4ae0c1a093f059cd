/* myriad — the stable C ABI.
 *
 * Conventions
 *  - Every function returns a myriad_status (0 = MYRIAD_OK) unless documented otherwise.
 *  - Handles are opaque 64-bit values checked on every call: a handle that was never valid, was
 *    destroyed or was already joined gives MYRIAD_EBADHANDLE, never a crash. (A handle that is
 *    destroyed by one thread while another thread is still using it is a race in the caller.)
 *  - Config structs start with a `size` field set to sizeof(the struct) by the caller, so the
 *    struct can grow without breaking old binaries; myriad_config_init() fills the defaults.
 *  - No C++ exception crosses this boundary: an exception escaping a task is reported by the
 *    runtime and turns into MYRIAD_ETASKFAILED for whoever joins the task.
 */
#ifndef MYRIAD_H
#define MYRIAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define MYRIAD_API __declspec(dllexport)
#else
#define MYRIAD_API __attribute__((visibility("default")))
#endif

#define MYRIAD_ABI_VERSION 1
#define MYRIAD_VERSION_MAJOR 0
#define MYRIAD_VERSION_MINOR 1
#define MYRIAD_VERSION_PATCH 0

typedef enum myriad_status {
  MYRIAD_OK = 0,
  MYRIAD_EINVAL = 1,          /* null pointer, bad size field, bad enum value */
  MYRIAD_EBADHANDLE = 2,      /* never valid, destroyed, or already joined */
  MYRIAD_ECLOSED = 3,         /* the runtime is shutting down */
  MYRIAD_ENOMEM = 4,          /* out of memory for a stack, or past config.max_stacks */
  MYRIAD_ENOTINTASK = 5,      /* the call needs to run inside a task */
  MYRIAD_EBUSY = 6,           /* no host proc free for myriad_step, or step re-entered */
  MYRIAD_ENEGATIVE = 7,       /* wait group counter would go below zero */
  MYRIAD_ETASKFAILED = 8,     /* the joined task ended with a C++ exception */
  MYRIAD_EABANDONED = 9,      /* the joined task was parked when its runtime was destroyed */
  MYRIAD_EWRONGRUNTIME = 10,  /* a handle of another runtime */
  MYRIAD_EDEADLOCK = 11       /* a task tried to join itself */
} myriad_status;

typedef struct myriad_runtime { uint64_t bits; } myriad_runtime;
typedef struct myriad_task { uint64_t bits; } myriad_task;     /* a join handle */
typedef struct myriad_wait_group { uint64_t bits; } myriad_wait_group;

typedef enum myriad_guard_pages {
  MYRIAD_GUARD_AUTO = 0, /* guard pages while the process-wide budget allows, canary always */
  MYRIAD_GUARD_OFF = 1   /* canary only */
} myriad_guard_pages;

typedef enum myriad_on_exception {
  MYRIAD_EXC_LOG = 0,    /* log the failing task's identity to stderr and continue (default) */
  MYRIAD_EXC_ABORT = 1,  /* log, then abort the process */
  MYRIAD_EXC_SILENT = 2  /* only the joiner learns of it */
} myriad_on_exception;

typedef struct myriad_config {
  size_t size;               /* sizeof(myriad_config) */
  uint32_t procs;            /* 0 = MYRIAD_PROCS env, else hardware threads (hwloc) */
  uint32_t host_procs;       /* procs reserved for hosts driving them with myriad_step */
  size_t stack_size;         /* default task stack, bytes; 0 = 64 KiB */
  int32_t guard_pages;       /* myriad_guard_pages */
  int32_t on_exception;      /* myriad_on_exception */
  int32_t report_abandoned;  /* nonzero: list tasks abandoned at destroy on stderr */
  uint64_t max_stacks;       /* at most this many live tasks (stack slots); 0 = unlimited.
                                myriad_spawn past it returns MYRIAD_ENOMEM */
} myriad_config;

typedef struct myriad_spawn_options {
  size_t size;           /* sizeof(myriad_spawn_options) */
  const char* label;     /* copied (first 63 bytes); may be NULL */
  size_t stack_size;     /* 0 = the runtime's default */
  const char* file;      /* creation site; MYRIAD_SPAWN_OPTIONS fills it */
  uint32_t line;
  const char* function;
} myriad_spawn_options;

#define MYRIAD_SPAWN_OPTIONS(label_) \
  { sizeof(myriad_spawn_options), (label_), 0, __FILE__, __LINE__, __func__ }

typedef struct myriad_stats {
  size_t size; /* sizeof(myriad_stats) */
  uint64_t tasks_spawned, tasks_exited, tasks_failed;
  uint64_t tasks_stolen, steal_operations;
  uint64_t global_queue_takes, global_queue_spills;
  uint64_t yields, parks, thread_parks;
  uint64_t stacks_reserved, guarded_stacks;
} myriad_stats;

typedef void (*myriad_task_fn)(void* arg);

/* Versions. myriad_abi_version() == MYRIAD_ABI_VERSION for a compatible library. */
MYRIAD_API uint32_t myriad_abi_version(void);
MYRIAD_API const char* myriad_version(void); /* "0.1.0" */
/* Text for a status; never NULL ("unknown status" for values outside the enum). */
MYRIAD_API const char* myriad_strerror(int status);

MYRIAD_API void myriad_config_init(myriad_config* config);
/* config may be NULL for the defaults. */
MYRIAD_API myriad_status myriad_runtime_create(const myriad_config* config, myriad_runtime* out);
/* Drains runnable tasks (they may still spawn through this handle while it drains), stops the
 * threads, abandons still-parked tasks (see README), then invalidates the handle. Must not be
 * called from one of the runtime's own tasks (MYRIAD_EDEADLOCK); from a task of another
 * runtime it blocks that task's thread for the drain. */
MYRIAD_API myriad_status myriad_runtime_destroy(myriad_runtime rt);
MYRIAD_API myriad_status myriad_runtime_procs(myriad_runtime rt, uint32_t* procs_out);
MYRIAD_API myriad_status myriad_runtime_stats(myriad_runtime rt, myriad_stats* out);

/* Spawns fn(arg). options may be NULL. handle_out may be NULL: the task is then detached.
 * A handle must be joined or detached exactly once. */
MYRIAD_API myriad_status myriad_spawn(myriad_runtime rt, myriad_task_fn fn, void* arg,
                                      const myriad_spawn_options* options,
                                      myriad_task* handle_out);
/* Waits for the task and releases the handle. From a task it parks; from any other thread it
 * blocks that thread. MYRIAD_ETASKFAILED: the task threw; MYRIAD_EABANDONED: its runtime was
 * destroyed while it was parked; MYRIAD_EDEADLOCK: a task joining itself (handle kept). */
MYRIAD_API myriad_status myriad_join(myriad_task handle);
MYRIAD_API myriad_status myriad_detach(myriad_task handle);
MYRIAD_API myriad_status myriad_task_handle_id(myriad_task handle, uint64_t* id_out);

/* Called from a task. */
MYRIAD_API myriad_status myriad_yield(void);
/* The current task's id, 0 outside a task. */
MYRIAD_API uint64_t myriad_current_task_id(void);

/* Host-driven procs: the calling thread runs one of the runtime's host procs for at most
 * budget_ns nanoseconds (0 = until nothing is runnable). *idle_out (may be NULL) is set to 1
 * when it returned because nothing was runnable. */
MYRIAD_API myriad_status myriad_step(myriad_runtime rt, uint64_t budget_ns, int* idle_out);

MYRIAD_API myriad_status myriad_wait_group_create(myriad_wait_group* out);
MYRIAD_API myriad_status myriad_wait_group_destroy(myriad_wait_group wg);
/* delta must satisfy |delta| < 2^31 (MYRIAD_EINVAL otherwise); an add that would take the
 * counter below zero is refused with MYRIAD_ENEGATIVE and changes nothing. */
MYRIAD_API myriad_status myriad_wait_group_add(myriad_wait_group wg, int64_t delta);
MYRIAD_API myriad_status myriad_wait_group_done(myriad_wait_group wg);
MYRIAD_API myriad_status myriad_wait_group_wait(myriad_wait_group wg);

#ifdef __cplusplus
}
#endif

#endif /* MYRIAD_H */
