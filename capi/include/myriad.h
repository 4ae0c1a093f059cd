/* myriad — the stable C ABI.
 *
 * Conventions
 *  - Every function returns a myriad_status (0 = MYRIAD_OK) unless documented otherwise. Each
 *    declaration below lists the errors particular to it; in addition, any function taking a
 *    handle returns MYRIAD_EBADHANDLE for one that was never valid or was destroyed, and any
 *    function taking a required pointer returns MYRIAD_EINVAL for NULL.
 *  - Handles are opaque 64-bit values checked on every call: a handle that was never valid, was
 *    destroyed or was already joined gives MYRIAD_EBADHANDLE, never a crash. A zero handle is
 *    never valid, except where documented: the zero myriad_chan is Go's nil channel; a zero
 *    myriad_runtime means "the calling task's runtime, else the oldest one" for the functions
 *    that make timers (time, contexts) and "every runtime" for myriad_dump_tasks.
 *  - Destroying a handle while another thread is inside a call on it:
 *      channels and contexts: allowed — the call keeps the object alive and completes
 *        normally (e.g. a receive blocked on a timer's channel still gets the tick); the object
 *        is freed after the last handle is destroyed and the last call returned.
 *      mutexes, rwmutexes, conds, onces, semaphores, timers, tickers: refused with
 *        MYRIAD_EBUSY while any call on the handle is in progress (a waiter counts) or while
 *        the object is held (a locked mutex, acquired semaphore units).
 *      file descriptors (myriad_fd): myriad_fd_close is allowed — calls waiting on the
 *        descriptor return MYRIAD_EFDCLOSED, and the descriptor is closed once the last call
 *        has left its system call; myriad_fd_release is refused with MYRIAD_EBUSY.
 *      runtimes, tasks, wait groups: a race in the caller.
 *  - Config structs start with a `size` field set to sizeof(the struct) by the caller, so the
 *    struct can grow without breaking old binaries; myriad_config_init() fills the defaults.
 *    Fields are only ever appended; a smaller size from an older caller gets the defaults for
 *    the fields it does not have.
 *  - No C++ exception crosses this boundary: an exception escaping a task is reported by the
 *    runtime and turns into MYRIAD_ETASKFAILED for whoever joins the task.
 *  - Who may call: unless documented otherwise, every function may be called from a task of
 *    any runtime and from any other thread. A blocking call parks a task (its thread runs
 *    other tasks) and blocks a foreign thread.
 *  - Times are int64_t nanoseconds; deadlines are absolute CLOCK_MONOTONIC nanoseconds (the
 *    clock of myriad_now_ns()). A duration <= 0 means "now".
 *  - Go's semantics (nil channels, closed channels, select, timers since Go 1.23, contexts);
 *    where Go panics, a status is returned and nothing changes.
 *
 * Contents, in this order: status codes and handles, versions, runtime, tasks, host-driven
 * procs, wait groups, channels, select, time (sleep, timers, tickers), sync (mutex, rwmutex,
 * cond, once, semaphore), task dump, contexts, file descriptors (I/O), blocking calls and
 * thread locks, batch compute kernels (GEMM, vector operations).
 */
#ifndef MYRIAD_H
#define MYRIAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h> /* struct sockaddr, socklen_t (the fd API) */
#include <sys/uio.h>    /* struct iovec */

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

/* ==== Status codes and handles =============================================================== */

typedef enum myriad_status {
  MYRIAD_OK = 0,
  MYRIAD_EINVAL = 1,          /* null pointer, bad size field, bad enum value, size out of range,
                                 send/close on a receive-only channel */
  MYRIAD_EBADHANDLE = 2,      /* never valid, destroyed, or already joined */
  MYRIAD_ECLOSED = 3,         /* the runtime is shutting down (or gone: timer/ticker reset) */
  MYRIAD_ENOMEM = 4,          /* out of memory for a stack, or past config.max_stacks */
  MYRIAD_ENOTINTASK = 5,      /* the call needs to run inside a task, or needs a runtime for a
                                 timer and none exists */
  MYRIAD_EBUSY = 6,           /* no host proc free for myriad_step, or step re-entered; destroy
                                 of an object in use (wait group count, held lock, waiter) */
  MYRIAD_ENEGATIVE = 7,       /* wait group counter would go below zero */
  MYRIAD_ETASKFAILED = 8,     /* the joined task ended with a C++ exception */
  MYRIAD_EABANDONED = 9,      /* the joined task was parked when its runtime was destroyed */
  MYRIAD_EWRONGRUNTIME = 10,  /* a handle of another runtime */
  MYRIAD_EDEADLOCK = 11,      /* a task tried to join itself */
  MYRIAD_ECHANCLOSED = 12,    /* send on a closed channel, or close of a closed one (Go panics) */
  MYRIAD_EWOULDBLOCK = 13,    /* a try_ operation found nothing ready */
  MYRIAD_ETIMEDOUT = 14,      /* a deadline passed first (also a context's deadline) */
  MYRIAD_ECANCELED = 15,      /* the operation's context was canceled */
  MYRIAD_EALLASLEEP = 16,     /* Go's "all goroutines are asleep - deadlock!": a foreign thread
                                 blocked on a channel/select while every task is parked and
                                 nothing can wake them (see myriad_config.detect_deadlock) */
  MYRIAD_ENOTLOCKED = 17,     /* unlock of a mutex that is not locked (Go: fatal error) */
  MYRIAD_ENILCHAN = 18,       /* close of the nil channel (Go panics) */
  MYRIAD_EIO = 19,            /* the operating system refused an I/O call: the errno comes
                                 back through the call's errno_out parameter (see I/O) */
  MYRIAD_EFDCLOSED = 20,      /* the descriptor was closed before or during the call (Go's
                                 ErrNetClosing) */
  MYRIAD_ETHREADLIMIT = 21,   /* a blocking call or thread lock would need more threads than
                                 myriad_config.max_threads */
  MYRIAD_ENOTSUP = 22         /* not possible here: a thread lock on a host-driven proc, a
                                 forced io_uring poller the kernel refuses */
} myriad_status;

typedef struct myriad_runtime { uint64_t bits; } myriad_runtime;
typedef struct myriad_task { uint64_t bits; } myriad_task;     /* a join handle */
typedef struct myriad_wait_group { uint64_t bits; } myriad_wait_group;
typedef struct myriad_chan { uint64_t bits; } myriad_chan;         /* zero: the nil channel */
typedef struct myriad_timer { uint64_t bits; } myriad_timer;
typedef struct myriad_ticker { uint64_t bits; } myriad_ticker;
typedef struct myriad_mutex { uint64_t bits; } myriad_mutex;
typedef struct myriad_rwmutex { uint64_t bits; } myriad_rwmutex;
typedef struct myriad_cond { uint64_t bits; } myriad_cond;
typedef struct myriad_once { uint64_t bits; } myriad_once;
typedef struct myriad_sem { uint64_t bits; } myriad_sem;
typedef struct myriad_context { uint64_t bits; } myriad_context;
typedef struct myriad_fd { uint64_t bits; } myriad_fd;

typedef enum myriad_guard_pages {
  MYRIAD_GUARD_AUTO = 0, /* guard pages while the process-wide budget allows, canary always */
  MYRIAD_GUARD_OFF = 1   /* canary only */
} myriad_guard_pages;

/* The readiness notifier behind every myriad_fd of a runtime, chosen when the runtime's first
 * descriptor is adopted. */
typedef enum myriad_poller_kind {
  MYRIAD_POLLER_AUTO = 0,     /* the MYRIAD_POLLER environment variable ("epoll", "io_uring",
                                 "auto") if set, else io_uring when the kernel allows it, else
                                 epoll; as a myriad_runtime_poller answer: not started yet */
  MYRIAD_POLLER_EPOLL = 1,
  MYRIAD_POLLER_IO_URING = 2  /* forced: adopting a descriptor fails with MYRIAD_ENOTSUP when
                                 the kernel (or the build) has no io_uring */
} myriad_poller_kind;

/* What myriad_config.on_long_running is told about a task that ran preempt_after_ns without
 * reaching a yield point (the monitor has asked it to yield at the next one). Valid only during
 * the call. The library sets size to the struct it filled: fields may be appended. */
typedef struct myriad_long_running {
  size_t size;
  uint64_t task_id;
  const char* label;      /* NUL-terminated; "" when the task has none */
  const char* file;       /* creation site ("" if none) */
  const char* function;
  uint32_t line;
  int64_t running_for_ns; /* since its last yield point, when noticed (>= preempt_after_ns) */
} myriad_long_running;

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
  /* Go's "all goroutines are asleep - deadlock!" (default 1): when a foreign thread is blocked
   * on a channel or select, every task of every runtime is parked, no timer is pending and no
   * known thread runs (confirmed over 100 ms), the parked tasks are reported and the blocked
   * thread's call returns MYRIAD_EALLASLEEP. Turn it off (0) in programs where plain threads
   * that have not touched myriad yet feed the runtime later (the check cannot see them).
   * Runtimes with host procs are never considered asleep. */
  int32_t detect_deadlock;
  /* Receives the report (a task dump, NUL-terminated, valid during the call) instead of
   * stderr. Called on the thread that detected the deadlock; must not block. NULL = stderr. */
  void (*on_deadlock)(const char* report, void* user);
  void* on_deadlock_user;
  /* ---- Blocking calls, the monitor and I/O (see those sections) ---- */
  /* At most this many threads of the runtime's own: workers, threads whose task is in a
   * blocking call, threads of locked tasks. myriad_blocking_enter and myriad_thread_lock past
   * it fail with MYRIAD_ETHREADLIMIT. 0 = 10,000 (Go's default). */
  uint32_t max_threads;
  int32_t poller;              /* myriad_poller_kind (default MYRIAD_POLLER_AUTO) */
  /* A blocking call (myriad_blocking_enter) lasting longer than this has its proc handed to
   * another thread so the proc's other tasks run. 0 = 20 µs (the default); < 0: MYRIAD_EINVAL. */
  int64_t blocking_handoff_ns;
  /* A task running this long without a yield point is asked to yield at its next one (see
   * myriad_preempt_point) and reported to on_long_running. 0 = 10 ms (the default); < 0: never. */
  int64_t preempt_after_ns;
  /* Called on the runtime's monitor thread for every such request (NULL: only counted in
   * myriad_stats.preempt_requests). Must return quickly and must not block or call functions
   * that wait (channels, locks, joins, sleeps, I/O). */
  void (*on_long_running)(const myriad_long_running* task, void* user);
  void* on_long_running_user;
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

/* Monotonic counters, summed over procs (racy snapshots; exact once quiescent). The caller sets
 * size = sizeof(myriad_stats); an older, smaller struct gets the fields it has. */
typedef struct myriad_stats {
  size_t size; /* sizeof(myriad_stats) */
  uint64_t tasks_spawned, tasks_exited, tasks_failed;
  uint64_t tasks_stolen, steal_operations;
  uint64_t global_queue_takes, global_queue_spills;
  uint64_t yields, parks, thread_parks;
  uint64_t stacks_reserved, guarded_stacks;
  /* appended: */
  uint64_t timers_fired;
  uint64_t preempt_requests; /* tasks the monitor asked to yield (preempt_after_ns) */
  uint64_t preemptions;      /* of those requests, honoured at a yield point */
  uint64_t blocking_calls;   /* myriad_blocking_enter calls by tasks */
  uint64_t proc_handoffs;    /* procs handed from a blocked or locked thread to another */
  uint64_t threads;          /* threads the runtime has now (workers and spares) */
  uint64_t netpoll_ready;    /* I/O waits ended by the poller reporting readiness */
} myriad_stats;

typedef void (*myriad_task_fn)(void* arg);

/* ==== Versions =============================================================================== */

/* myriad_abi_version() == MYRIAD_ABI_VERSION for a compatible library. */
MYRIAD_API uint32_t myriad_abi_version(void);
MYRIAD_API const char* myriad_version(void); /* "0.1.0" */
/* Text for a status; never NULL ("unknown status" for values outside the enum). */
MYRIAD_API const char* myriad_strerror(int status);

/* ==== Runtime ================================================================================ */

/* Fills every field with its default (detect_deadlock = 1, max_threads = 10,000,
 * blocking_handoff_ns = 20 µs, preempt_after_ns = 10 ms, size = sizeof(myriad_config)). */
MYRIAD_API void myriad_config_init(myriad_config* config);
/* config may be NULL for the defaults. MYRIAD_EINVAL: config->size smaller than the first
 * version of the struct, a bad enum value (guard_pages, on_exception, poller), a negative
 * blocking_handoff_ns, procs or stack_size out of range. */
MYRIAD_API myriad_status myriad_runtime_create(const myriad_config* config, myriad_runtime* out);
/* Drains runnable tasks (they may still spawn through this handle while it drains), stops the
 * threads, abandons still-parked tasks (see README), then invalidates the handle. Must not be
 * called from one of the runtime's own tasks (MYRIAD_EDEADLOCK); from a task of another
 * runtime it blocks that task's thread for the drain. */
MYRIAD_API myriad_status myriad_runtime_destroy(myriad_runtime rt);
MYRIAD_API myriad_status myriad_runtime_procs(myriad_runtime rt, uint32_t* procs_out);
/* MYRIAD_EINVAL: out NULL or out->size smaller than the first version of the struct. */
MYRIAD_API myriad_status myriad_runtime_stats(myriad_runtime rt, myriad_stats* out);
/* The poller the runtime's descriptors use: MYRIAD_POLLER_AUTO until its first descriptor was
 * adopted (the poller starts then), else MYRIAD_POLLER_EPOLL or MYRIAD_POLLER_IO_URING. */
MYRIAD_API myriad_status myriad_runtime_poller(myriad_runtime rt, myriad_poller_kind* kind_out);
/* "automatic", "epoll", "io_uring"; "?" for other values. Never NULL. */
MYRIAD_API const char* myriad_poller_name(int kind);

/* ==== Tasks ================================================================================== */

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

/* ==== Host-driven procs ====================================================================== */

/* The calling thread runs one of the runtime's host procs for at most
 * budget_ns nanoseconds (0 = until nothing is runnable). *idle_out (may be NULL) is set to 1
 * when it returned because nothing was runnable. */
MYRIAD_API myriad_status myriad_step(myriad_runtime rt, uint64_t budget_ns, int* idle_out);

/* ==== Wait groups ============================================================================ */

MYRIAD_API myriad_status myriad_wait_group_create(myriad_wait_group* out);
/* MYRIAD_EBUSY while the counter is not zero. */
MYRIAD_API myriad_status myriad_wait_group_destroy(myriad_wait_group wg);
/* delta must satisfy |delta| < 2^31 (MYRIAD_EINVAL otherwise); an add that would take the
 * counter below zero is refused with MYRIAD_ENEGATIVE and changes nothing. */
MYRIAD_API myriad_status myriad_wait_group_add(myriad_wait_group wg, int64_t delta);
MYRIAD_API myriad_status myriad_wait_group_done(myriad_wait_group wg);
MYRIAD_API myriad_status myriad_wait_group_wait(myriad_wait_group wg);

/* ==== Channels ==================================================================================
 * Go's chan: a FIFO of fixed-size elements copied in and out by value (memcpy), buffered
 * (capacity > 0) or unbuffered (capacity 0: a send waits for a receiver). The zero handle
 * (myriad_chan){0} is Go's nil channel: send and receive block forever (a foreign thread gets
 * MYRIAD_EALLASLEEP from the deadlock check), try_ operations return MYRIAD_EWOULDBLOCK, it is
 * never ready in a select, close returns MYRIAD_ENILCHAN, len and cap are 0.
 * A destroyed or forged handle is not the nil channel: MYRIAD_EBADHANDLE.
 * Ownership of an element: a successful send moves it into the channel (the sender must not
 * free what it points to); a failed send leaves it with the caller; a receive moves it out.
 * Blocked senders and receivers are served in FIFO order; a receiver that waits gets the value
 * straight from the sender. On a blocked foreign thread every blocking operation may return
 * MYRIAD_EALLASLEEP (see myriad_config.detect_deadlock); a task would stay parked instead. */

#define MYRIAD_CHAN_MAX_ELEM_SIZE 65536              /* as Go's limit */
#define MYRIAD_CHAN_MAX_BUFFER_BYTES ((uint64_t)1 << 40)

typedef void (*myriad_elem_dtor)(void* elem);

/* make(chan T, capacity) with sizeof(T) == elem_size. elem_size 0 gives zero-size elements
 * (Go's chan struct{}): elem pointers may then be NULL. elem_dtor (may be NULL) is called on
 * every element still buffered when the channel is freed (after its last handle was destroyed
 * and its last call returned), on the thread that frees it, with a pointer to a copy of the
 * element. MYRIAD_EINVAL: elem_size > MYRIAD_CHAN_MAX_ELEM_SIZE or elem_size * capacity >
 * MYRIAD_CHAN_MAX_BUFFER_BYTES. MYRIAD_ENOMEM: the buffer cannot be allocated. */
MYRIAD_API myriad_status myriad_chan_create(size_t elem_size, size_t capacity,
                                            void (*elem_dtor)(void* elem), myriad_chan* out);
/* Drops the handle. Calls in progress on the channel (e.g. blocked in another thread) keep it
 * alive and complete normally; the channel is freed after the last one. Destroying the nil
 * channel is a no-op (MYRIAD_OK), so handles from myriad_context_done may always be destroyed. */
MYRIAD_API myriad_status myriad_chan_destroy(myriad_chan ch);
/* c <- *elem: blocks until a receiver takes it or the buffer has room. MYRIAD_ECHANCLOSED: the
 * channel is (or gets) closed; MYRIAD_EINVAL: elem NULL with elem_size > 0, or a receive-only
 * channel (timer, ticker, after, context done); MYRIAD_EALLASLEEP (foreign thread). */
MYRIAD_API myriad_status myriad_chan_send(myriad_chan ch, const void* elem);
/* *elem, *ok = <-c: blocks until a value arrives (*ok = true) or the channel is closed and
 * drained (*ok = false and *elem is zeroed: Go's zero value). ok may be NULL.
 * MYRIAD_EINVAL: elem NULL with elem_size > 0; MYRIAD_EALLASLEEP (foreign thread). */
MYRIAD_API myriad_status myriad_chan_recv(myriad_chan ch, void* elem, bool* ok);
/* Non-blocking (select with a default): MYRIAD_EWOULDBLOCK if it cannot proceed now, else as
 * send / recv (try_recv on a closed, drained channel: MYRIAD_OK with *ok = false). */
MYRIAD_API myriad_status myriad_chan_try_send(myriad_chan ch, const void* elem);
MYRIAD_API myriad_status myriad_chan_try_recv(myriad_chan ch, void* elem, bool* ok);
/* Blocked receivers get *ok = false, blocked senders MYRIAD_ECHANCLOSED; buffered values can
 * still be received. MYRIAD_ECHANCLOSED: already closed; MYRIAD_ENILCHAN: the nil channel;
 * MYRIAD_EINVAL: a receive-only channel. */
MYRIAD_API myriad_status myriad_chan_close(myriad_chan ch);
/* Go's len(c) (values buffered; a racy snapshot) and cap(c). */
MYRIAD_API myriad_status myriad_chan_len(myriad_chan ch, size_t* len_out);
MYRIAD_API myriad_status myriad_chan_cap(myriad_chan ch, size_t* cap_out);
/* send / recv that give up at deadline_ns (absolute, CLOCK_MONOTONIC): MYRIAD_ETIMEDOUT (the
 * element is then untouched and stays the caller's). A deadline already passed returns
 * MYRIAD_ETIMEDOUT without attempting the operation. The timer runs on the calling task's
 * runtime, else on the oldest runtime: MYRIAD_ENOTINTASK from a foreign thread when no runtime
 * exists. Otherwise as send / recv. */
MYRIAD_API myriad_status myriad_chan_send_deadline(myriad_chan ch, const void* elem,
                                                   int64_t deadline_ns);
MYRIAD_API myriad_status myriad_chan_recv_deadline(myriad_chan ch, void* elem, bool* ok,
                                                   int64_t deadline_ns);

/* ==== Select ====================================================================================
 * Go's select over any number of send and receive cases (at most 65,536). */

enum { MYRIAD_SEND = 1, MYRIAD_RECV = 2 };

typedef struct myriad_select_case {
  myriad_chan chan; /* the nil channel: a case that is never ready */
  int dir;          /* MYRIAD_SEND or MYRIAD_RECV */
  void* elem;       /* send: the value to send; receive: where the value goes (zeroed on
                       !ok). May be NULL only for zero-size elements. */
} myriad_select_case;

/* Runs one ready case, chosen uniformly at random among the ready ones; *index_out is its
 * index. block == 0 (a select with a default): if none is ready, *index_out = -1 and nothing
 * happens. block != 0: waits until one is ready (no cases, or only nil channels: forever).
 * *ok_out (may be NULL) is true when a receive case got a value, false when its channel was
 * closed (its elem is then zeroed) and for send cases. cases may be NULL when n == 0.
 * MYRIAD_ECHANCLOSED: the chosen case is a send on a closed channel (*index_out says which;
 * Go panics); MYRIAD_EINVAL: a bad dir, a NULL elem with elem_size > 0, a send on a
 * receive-only channel, more than 65,536 cases; MYRIAD_EBADHANDLE: a case's channel is bad;
 * MYRIAD_EALLASLEEP (foreign thread). */
MYRIAD_API myriad_status myriad_select(myriad_select_case* cases, size_t n, int block,
                                       int* index_out, bool* ok_out);

/* ==== Time ======================================================================================
 * Timers live on a runtime's per-proc heaps. Functions taking a myriad_runtime accept the zero
 * handle: the calling task's runtime, else the oldest live runtime created through this ABI
 * (MYRIAD_ENOTINTASK when there is none). A timer never fires once its runtime was destroyed;
 * re-arming it then is refused (MYRIAD_ECLOSED) — except for a timer made from a task of a
 * runtime created in C++, whose destruction the C ABI cannot see: do not reset that one.
 * Channels of timers and tickers carry int64_t elements: the firing time in CLOCK_MONOTONIC
 * nanoseconds. They are receive-only (send and close: MYRIAD_EINVAL), capacity 1. */

/* Parks the calling task (blocks a foreign thread) for ns nanoseconds; ns <= 0 returns at once. */
MYRIAD_API myriad_status myriad_sleep_ns(int64_t ns);
/* CLOCK_MONOTONIC in nanoseconds: the clock of every deadline. Returns the time itself. */
MYRIAD_API int64_t myriad_now_ns(void);

/* Go's time.NewTimer: its channel receives the time once, ns from now. MYRIAD_EBADHANDLE: a
 * bad rt; MYRIAD_ENOTINTASK: rt zero and no runtime; MYRIAD_ENOMEM. */
MYRIAD_API myriad_status myriad_timer_create(myriad_runtime rt, int64_t ns, myriad_timer* out);
/* A new handle to the timer's channel (the caller destroys it; it stays valid after the timer
 * is destroyed). For a timer from myriad_after_func: the nil channel (zero handle). */
MYRIAD_API myriad_status myriad_timer_chan(myriad_timer t, myriad_chan* out);
/* Prevents the timer from firing. *was_active_out (may be NULL): true if this call stopped
 * it, false if it had already fired (and the value was received) or been stopped. After
 * stop returns, no value from before it can be received (Go 1.23). */
MYRIAD_API myriad_status myriad_timer_stop(myriad_timer t, bool* was_active_out);
/* Re-arms the timer to fire ns from now; *was_active_out as for stop. After reset returns, no
 * value from before it can be received. MYRIAD_ECLOSED: the timer's runtime was destroyed. */
MYRIAD_API myriad_status myriad_timer_reset(myriad_timer t, int64_t ns, bool* was_active_out);
/* Stops the timer and drops the handle (an after_func timer destroyed before it fired never
 * runs its function). MYRIAD_EBUSY: another call on it is in progress. */
MYRIAD_API myriad_status myriad_timer_destroy(myriad_timer t);

/* Go's time.NewTicker: its channel receives the time every period_ns (a slow receiver misses
 * ticks instead of queueing them). MYRIAD_EINVAL: period_ns <= 0; otherwise as timer_create. */
MYRIAD_API myriad_status myriad_ticker_create(myriad_runtime rt, int64_t period_ns,
                                              myriad_ticker* out);
MYRIAD_API myriad_status myriad_ticker_chan(myriad_ticker t, myriad_chan* out);
/* After stop returns, no tick from before it can be received. */
MYRIAD_API myriad_status myriad_ticker_stop(myriad_ticker t);
/* New period, counted from now. MYRIAD_EINVAL: period_ns <= 0; MYRIAD_ECLOSED: the ticker's
 * runtime was destroyed. */
MYRIAD_API myriad_status myriad_ticker_reset(myriad_ticker t, int64_t period_ns);
/* Stops the ticker and drops the handle. MYRIAD_EBUSY: another call on it is in progress. */
MYRIAD_API myriad_status myriad_ticker_destroy(myriad_ticker t);

/* Go's time.After: a new channel handle (the caller destroys it) that receives the time once,
 * ns from now. The timer is freed once it fired, whether or not anyone receives. */
MYRIAD_API myriad_status myriad_after(myriad_runtime rt, int64_t ns, myriad_chan* out);
/* Go's time.AfterFunc: ns from now, fn(arg) runs in a new task of the runtime (labelled
 * "after_func"). Stop or destroy the timer to prevent that. MYRIAD_EINVAL: fn or out NULL. */
MYRIAD_API myriad_status myriad_after_func(myriad_runtime rt, int64_t ns, myriad_task_fn fn,
                                           void* arg, myriad_timer* out);

/* ==== Sync ======================================================================================
 * Go's sync package for tasks and threads alike: a task that must wait parks, a foreign thread
 * sleeps. Locks are not owned: one task or thread may lock and another unlock. Destroy returns
 * MYRIAD_EBUSY while a call on the object is in progress (a waiter counts) or while it is held
 * (a locked mutex or rwmutex, semaphore units acquired), and changes nothing then. */

/* Go's sync.Mutex (normal and starvation modes). */
MYRIAD_API myriad_status myriad_mutex_create(myriad_mutex* out);
MYRIAD_API myriad_status myriad_mutex_destroy(myriad_mutex m); /* MYRIAD_EBUSY */
MYRIAD_API myriad_status myriad_mutex_lock(myriad_mutex m);
/* MYRIAD_EWOULDBLOCK: held (or being handed to a waiter). */
MYRIAD_API myriad_status myriad_mutex_trylock(myriad_mutex m);
/* MYRIAD_ENOTLOCKED: not locked (nothing changes). */
MYRIAD_API myriad_status myriad_mutex_unlock(myriad_mutex m);

/* Go's sync.RWMutex: many readers or one writer; once a writer waits, new readers wait too. */
MYRIAD_API myriad_status myriad_rwmutex_create(myriad_rwmutex* out);
MYRIAD_API myriad_status myriad_rwmutex_destroy(myriad_rwmutex m); /* MYRIAD_EBUSY */
MYRIAD_API myriad_status myriad_rwmutex_lock(myriad_rwmutex m);
MYRIAD_API myriad_status myriad_rwmutex_trylock(myriad_rwmutex m);   /* MYRIAD_EWOULDBLOCK */
MYRIAD_API myriad_status myriad_rwmutex_unlock(myriad_rwmutex m);    /* MYRIAD_ENOTLOCKED */
MYRIAD_API myriad_status myriad_rwmutex_rlock(myriad_rwmutex m);
/* MYRIAD_EWOULDBLOCK: write-locked, or a writer waits. */
MYRIAD_API myriad_status myriad_rwmutex_tryrlock(myriad_rwmutex m);
MYRIAD_API myriad_status myriad_rwmutex_runlock(myriad_rwmutex m);   /* MYRIAD_ENOTLOCKED */

/* Go's sync.Cond over a myriad_mutex. */
MYRIAD_API myriad_status myriad_cond_create(myriad_cond* out);
MYRIAD_API myriad_status myriad_cond_destroy(myriad_cond c); /* MYRIAD_EBUSY: a waiter */
/* Unlocks m, waits for a signal or broadcast, locks m again. m must be locked by the caller
 * (MYRIAD_ENOTLOCKED if it is not locked at all; nothing waits then). While it waits, both c
 * and m count as busy for their destroy. Re-check the condition in a loop, as in Go. */
MYRIAD_API myriad_status myriad_cond_wait(myriad_cond c, myriad_mutex m);
MYRIAD_API myriad_status myriad_cond_signal(myriad_cond c);    /* the longest waiter, if any */
MYRIAD_API myriad_status myriad_cond_broadcast(myriad_cond c); /* every waiter */

/* Go's sync.Once: fn(arg) runs exactly once over all calls; callers that arrive while it runs
 * wait until it returned. fn must not call myriad_once_call on the same once (it would wait
 * forever, as in Go). MYRIAD_EINVAL: fn NULL. */
MYRIAD_API myriad_status myriad_once_create(myriad_once* out);
MYRIAD_API myriad_status myriad_once_destroy(myriad_once o); /* MYRIAD_EBUSY: a call runs */
MYRIAD_API myriad_status myriad_once_call(myriad_once o, myriad_task_fn fn, void* arg);

/* A weighted semaphore (golang.org/x/sync/semaphore): FIFO, a large request is not starved by
 * smaller ones. create: MYRIAD_EINVAL unless 0 <= capacity < 2^62. */
MYRIAD_API myriad_status myriad_sem_create(int64_t capacity, myriad_sem* out);
MYRIAD_API myriad_status myriad_sem_destroy(myriad_sem s); /* MYRIAD_EBUSY: units held, a waiter */
/* Waits for n units. MYRIAD_EINVAL: n < 0 or n > capacity. */
MYRIAD_API myriad_status myriad_sem_acquire(myriad_sem s, int64_t n);
/* MYRIAD_EWOULDBLOCK: not available now, or someone waits; MYRIAD_EINVAL as acquire. */
MYRIAD_API myriad_status myriad_sem_try_acquire(myriad_sem s, int64_t n);
/* MYRIAD_EINVAL: n < 0, or more than is held (nothing changes). */
MYRIAD_API myriad_status myriad_sem_release(myriad_sem s, int64_t n);

/* ==== Task dump =================================================================================
 * Every task has an id, a parent, a label, a creation site and, when parked, a wait reason and
 * since-when. A dump is a snapshot taken while the tasks keep running. */

typedef enum myriad_task_state {
  MYRIAD_TASK_FREE = 0, MYRIAD_TASK_RUNNABLE = 1, MYRIAD_TASK_RUNNING = 2,
  MYRIAD_TASK_WAITING = 3, MYRIAD_TASK_DEAD = 4
} myriad_task_state;

typedef enum myriad_wait_reason {
  MYRIAD_WAIT_NONE = 0, MYRIAD_WAIT_JOIN = 1, MYRIAD_WAIT_WAIT_GROUP = 2,
  MYRIAD_WAIT_PARK = 3, MYRIAD_WAIT_CHAN_SEND = 4, MYRIAD_WAIT_CHAN_RECV = 5,
  MYRIAD_WAIT_SELECT = 6, MYRIAD_WAIT_SELECT_NO_CASES = 7, MYRIAD_WAIT_NIL_CHAN = 8,
  MYRIAD_WAIT_SLEEP = 9, MYRIAD_WAIT_MUTEX = 10, MYRIAD_WAIT_RW_READ = 11,
  MYRIAD_WAIT_RW_WRITE = 12, MYRIAD_WAIT_COND = 13, MYRIAD_WAIT_SEMAPHORE = 14,
  MYRIAD_WAIT_ONCE = 15,
  MYRIAD_WAIT_IO_READ = 16,  /* a read, recv or accept waits for the descriptor to be readable */
  MYRIAD_WAIT_IO_WRITE = 17  /* a write, send or connect waits for it to be writable */
} myriad_wait_reason;

typedef struct myriad_task_info {
  size_t size;           /* sizeof(myriad_task_info); see myriad_list_tasks */
  uint64_t id;
  uint64_t parent_id;    /* 0: spawned from outside any task */
  char label[64];        /* NUL-terminated; empty when spawned without one */
  const char* file;      /* creation site: the spawner's strings (static), "" if none */
  const char* function;
  uint32_t line;
  int32_t state;         /* myriad_task_state: runnable, running or waiting */
  int32_t wait_reason;   /* myriad_wait_reason; MYRIAD_WAIT_NONE unless waiting */
  int64_t waited_ns;     /* how long it has been parked (kernel-tick resolution); 0 unless
                            waiting */
} myriad_task_info;

/* The live tasks of rt, sorted by id. *count_out gets how many there are, even when that is
 * more than capacity; the first min(count, capacity) are written. Call once with capacity 0
 * (out may then be NULL) to size the array; tasks may come and go between the calls. The
 * caller sets out[0].size = sizeof(myriad_task_info): it is the array's stride, and every
 * written element gets its size set. MYRIAD_EINVAL: count_out NULL, or capacity > 0 with out
 * NULL or out[0].size too small. */
MYRIAD_API myriad_status myriad_list_tasks(myriad_runtime rt, myriad_task_info* out,
                                           size_t capacity, size_t* count_out);
/* The task dump of rt as text (of every runtime, oldest first, when rt is the zero handle):
 * the first cap - 1 bytes and a NUL are written to buf (nothing when cap == 0; buf may then be
 * NULL); *len_out (may be NULL) gets the full length without the NUL, so a second call with
 * cap = *len_out + 1 gets it all. */
MYRIAD_API myriad_status myriad_dump_tasks(myriad_runtime rt, char* buf, size_t cap,
                                           size_t* len_out);
/* From now on, signal signo (SIGQUIT is Go's) writes the dump of every runtime to stderr;
 * the process goes on running. Calling it again moves the dump to the new signal.
 * MYRIAD_EINVAL: a signal that cannot be caught or that the runtime needs (SIGSEGV). */
MYRIAD_API myriad_status myriad_enable_task_dump_on_signal(int signo);
/* Restores the signal's previous disposition. Not from a signal handler. */
MYRIAD_API myriad_status myriad_disable_task_dump_on_signal(void);
/* Names for myriad_task_state / myriad_wait_reason values; never NULL ("?" when unknown). */
MYRIAD_API const char* myriad_task_state_name(int state);
MYRIAD_API const char* myriad_wait_reason_name(int reason);

/* ==== Contexts ==================================================================================
 * Go's package context: cancellation, deadlines and request-scoped values flowing down a tree.
 * Cancelling a context cancels every descendant before the call returns, never its ancestors;
 * a second cancel is a no-op. A child's deadline is the earlier of its own and its parent's.
 * Every context handle, background included, is destroyed by the caller; destroying a handle
 * does not cancel the context (it lives while a handle, a descendant or a call in progress
 * refers to it; dropping every handle without cancelling leaks nothing). The zero handle is not
 * a context (MYRIAD_EBADHANDLE). Functions taking a myriad_runtime accept the zero handle: the
 * calling task's runtime, else the oldest live runtime (the deadline timer runs there; if that
 * runtime is destroyed first, the deadline never fires). */

/* Go's context.Background(): never cancelled, no deadline, no values. */
MYRIAD_API myriad_status myriad_context_background(myriad_context* out);
/* Go's WithCancel: a child cancelled by myriad_context_cancel or with its parent. */
MYRIAD_API myriad_status myriad_context_with_cancel(myriad_context parent, myriad_context* out);
/* Go's WithDeadline: also cancelled with MYRIAD_ETIMEDOUT when deadline_ns (absolute,
 * CLOCK_MONOTONIC) passes; one already passed gives a context born timed out. INT64_MAX means
 * no deadline. MYRIAD_ENOTINTASK: a timer is needed and no runtime is alive. */
MYRIAD_API myriad_status myriad_context_with_deadline_ns(myriad_runtime rt, myriad_context parent,
                                                         int64_t deadline_ns, myriad_context* out);
/* Go's WithTimeout: with_deadline_ns(now + ns). */
MYRIAD_API myriad_status myriad_context_with_timeout_ns(myriad_runtime rt, myriad_context parent,
                                                        int64_t ns, myriad_context* out);
/* Go's WithValue: a child carrying value under key (both opaque pointers: the key is compared
 * by address, nothing is owned or freed). Cancellation and deadline are the parent's. The
 * child has no cancel function. MYRIAD_EINVAL: key NULL. */
MYRIAD_API myriad_status myriad_context_with_value(myriad_context parent, const void* key,
                                                   void* value, myriad_context* out);
MYRIAD_API myriad_status myriad_context_destroy(myriad_context ctx);
/* Go's CancelFunc / CancelCauseFunc: cancels ctx and its descendants with MYRIAD_ECANCELED;
 * their cause becomes `cause` (MYRIAD_OK: no cause, i.e. MYRIAD_ECANCELED). Never blocks for
 * long; callable anywhere. A no-op if already cancelled. MYRIAD_EINVAL: ctx has no cancel
 * function (background, with_value) or cause is not a myriad_status. */
MYRIAD_API myriad_status myriad_context_cancel(myriad_context ctx, myriad_status cause);
/* *err_out: MYRIAD_OK while not cancelled, then MYRIAD_ECANCELED or MYRIAD_ETIMEDOUT. */
MYRIAD_API myriad_status myriad_context_err(myriad_context ctx, myriad_status* err_out);
/* Go 1.20's Cause: *cause_out is the cause given to cancel (inherited by the descendants it
 * cancelled), or err when none was given; MYRIAD_OK while not cancelled. */
MYRIAD_API myriad_status myriad_context_cause(myriad_context ctx, myriad_status* cause_out);
/* A new handle (the caller destroys it) to a channel of zero-size elements that is closed when
 * ctx is cancelled: use it as a receive case of a select. For a context that can never be
 * cancelled, the nil channel (zero handle). Receive-only (send and close: MYRIAD_EINVAL). */
MYRIAD_API myriad_status myriad_context_done(myriad_context ctx, myriad_chan* out);
/* The effective deadline: *has_deadline_out false (and *deadline_ns_out INT64_MAX) if none.
 * has_deadline_out may be NULL. */
MYRIAD_API myriad_status myriad_context_deadline(myriad_context ctx, int64_t* deadline_ns_out,
                                                 bool* has_deadline_out);
/* The value stored under key here or in the nearest ancestor that has one; NULL if none (as in
 * Go, a stored NULL looks the same). MYRIAD_EINVAL: key or value_out NULL. */
MYRIAD_API myriad_status myriad_context_value(myriad_context ctx, const void* key,
                                              void** value_out);
/* send / recv that give up when ctx is cancelled: then ctx's err (MYRIAD_ECANCELED or
 * MYRIAD_ETIMEDOUT), the element untouched and still the caller's. A context already cancelled
 * on entry wins over a ready channel (the operation is not attempted). On the nil channel only
 * the context ends the wait. Otherwise as send / recv. */
MYRIAD_API myriad_status myriad_chan_send_ctx(myriad_chan ch, const void* elem,
                                              myriad_context ctx);
MYRIAD_API myriad_status myriad_chan_recv_ctx(myriad_chan ch, void* elem, bool* ok,
                                              myriad_context ctx);
/* Sleeps ns or until ctx is cancelled, whichever comes first: MYRIAD_OK if the time passed,
 * else ctx's err (at once if already cancelled). MYRIAD_ENOTINTASK: a foreign thread with no
 * runtime alive (a timer is needed). */
MYRIAD_API myriad_status myriad_sleep_ns_ctx(int64_t ns, myriad_context ctx);

/* ==== File descriptors (I/O) ====================================================================
 * Task-aware I/O (Go's netFD over the runtime's netpoller): a call that would block parks the
 * calling task (a foreign thread sleeps instead) until the descriptor is ready, and its thread
 * runs other tasks meanwhile. A myriad_fd owns its descriptor: adopting puts it in non-blocking
 * mode and registers it, edge-triggered, with the poller of one runtime (see
 * myriad_poller_kind); the handle is released by myriad_fd_close or myriad_fd_release.
 *
 * A waiting call ends when the descriptor is ready (the system call is then retried), when the
 * direction's deadline passes (MYRIAD_ETIMEDOUT), when the call's context is cancelled (its err:
 * MYRIAD_ECANCELED or MYRIAD_ETIMEDOUT), or when the descriptor is closed (MYRIAD_EFDCLOSED).
 * Parameters shared by the calls:
 *  - ctx: a context, or the zero handle (myriad_context){0} for none (unlike elsewhere, zero is
 *    not an error here). A context already cancelled fails the call before any system call.
 *    Destroying the context handle during the call is allowed (the call keeps its own
 *    reference).
 *  - n_out (may be NULL): the bytes transferred — also on failure, where write_all and
 *    read_full report what was done before the error. 0 with MYRIAD_OK from a read is end of
 *    file, as read(2).
 *  - errno_out (may be NULL): the errno when the status is MYRIAD_EIO, else 0. (The C errno
 *    is not used: a task may resume on another thread after a wait, and compilers cache the
 *    address of the thread-local errno.) EINTR is retried inside the call, EAGAIN waits.
 * Several tasks may use one descriptor at once (typically one reader and one writer); each
 * read gets whole system-call results, but a reader that stops with bytes still queued may
 * leave another reader waiting until more bytes come (readiness is edge-triggered). Calls on a
 * descriptor whose runtime was destroyed fail with MYRIAD_ECLOSED when they would wait; it can
 * still be closed. Between myriad_blocking_enter and myriad_blocking_leave no call may wait
 * (see Blocking calls). On a stream socket, write, writev and send never raise SIGPIPE
 * (MSG_NOSIGNAL): a peer that is gone gives MYRIAD_EIO with EPIPE or ECONNRESET (a pipe
 * raises SIGPIPE as usual). */

/* Takes ownership of fd (in every case: on failure it is closed) and registers it with rt's
 * poller, starting the poller on the runtime's first descriptor. rt may be the zero handle:
 * the calling task's runtime, else the oldest live runtime created through this ABI.
 * MYRIAD_EINVAL: fd < 0 or out NULL; MYRIAD_EIO: not an open descriptor, or one the poller
 * cannot watch (a regular file); MYRIAD_ENOTSUP: the runtime's forced poller is unavailable;
 * MYRIAD_ENOTINTASK: rt zero and no runtime; MYRIAD_ECLOSED: rt is shutting down. */
MYRIAD_API myriad_status myriad_fd_adopt(myriad_runtime rt, int fd, myriad_fd* out);
/* Closes the descriptor and invalidates the handle (a later call with it: MYRIAD_EBADHANDLE;
 * a second close too). Calls in progress on it in other tasks or threads return
 * MYRIAD_EFDCLOSED; the descriptor number is closed once the last of them has left its system
 * call, so it is never reused under a running call. */
MYRIAD_API myriad_status myriad_fd_close(myriad_fd fd);
/* Gives the descriptor back without closing it (deregistered, still O_NONBLOCK) in *fd_out
 * and invalidates the handle. MYRIAD_EBUSY: a call on it is in progress (nothing changes). */
MYRIAD_API myriad_status myriad_fd_release(myriad_fd fd, int* fd_out);
/* The descriptor number, for options and queries (setsockopt, getpeername, shutdown). Do not
 * close it, and do not read from it behind the handle's back: a read the handle does not see
 * can leave a later one waiting for bytes that are already there. */
MYRIAD_API myriad_status myriad_fd_native(myriad_fd fd, int* fd_out);
/* Go's SetReadDeadline / SetWriteDeadline / SetDeadline: deadline_ns (absolute,
 * CLOCK_MONOTONIC, the clock of myriad_now_ns) applies to every later call in that direction
 * and to the ones already waiting, until changed. INT64_MAX clears it. A deadline already
 * passed fails calls with MYRIAD_ETIMEDOUT at once, before any system call. connect uses the
 * write deadline; accept the read deadline. */
MYRIAD_API myriad_status myriad_fd_set_read_deadline(myriad_fd fd, int64_t deadline_ns);
MYRIAD_API myriad_status myriad_fd_set_write_deadline(myriad_fd fd, int64_t deadline_ns);
MYRIAD_API myriad_status myriad_fd_set_deadline(myriad_fd fd, int64_t deadline_ns);

/* read(2), readv(2), recv(2): one successful system call's worth (at most len bytes).
 * MYRIAD_EINVAL: buf NULL with len > 0 (iov NULL with iovcnt > 0, iovcnt < 0). */
MYRIAD_API myriad_status myriad_fd_read(myriad_fd fd, void* buf, size_t len, myriad_context ctx,
                                        size_t* n_out, int* errno_out);
MYRIAD_API myriad_status myriad_fd_readv(myriad_fd fd, const struct iovec* iov, int iovcnt,
                                         myriad_context ctx, size_t* n_out, int* errno_out);
MYRIAD_API myriad_status myriad_fd_recv(myriad_fd fd, void* buf, size_t len, int flags,
                                        myriad_context ctx, size_t* n_out, int* errno_out);
/* write(2), writev(2), send(2) (with MSG_NOSIGNAL): one successful system call; may be
 * short. MYRIAD_EINVAL as for read. */
MYRIAD_API myriad_status myriad_fd_write(myriad_fd fd, const void* buf, size_t len,
                                         myriad_context ctx, size_t* n_out, int* errno_out);
MYRIAD_API myriad_status myriad_fd_writev(myriad_fd fd, const struct iovec* iov, int iovcnt,
                                          myriad_context ctx, size_t* n_out, int* errno_out);
MYRIAD_API myriad_status myriad_fd_send(myriad_fd fd, const void* buf, size_t len, int flags,
                                        myriad_context ctx, size_t* n_out, int* errno_out);
/* Reads until len bytes arrived or end of file (MYRIAD_OK with *n_out < len), or an error
 * (*n_out: what was read before it). */
MYRIAD_API myriad_status myriad_fd_read_full(myriad_fd fd, void* buf, size_t len,
                                             myriad_context ctx, size_t* n_out, int* errno_out);
/* Writes until all len bytes are written or an error (*n_out: what was written before it). */
MYRIAD_API myriad_status myriad_fd_write_all(myriad_fd fd, const void* buf, size_t len,
                                             myriad_context ctx, size_t* n_out, int* errno_out);
/* accept4(2) on a listening socket: *conn_out is the connection, non-blocking and registered
 * with the listener's runtime (the caller closes it). peer and peer_len as for accept(2); both
 * may be NULL. MYRIAD_EINVAL: conn_out NULL. */
MYRIAD_API myriad_status myriad_fd_accept(myriad_fd fd, myriad_fd* conn_out,
                                          struct sockaddr* peer, socklen_t* peer_len,
                                          myriad_context ctx, int* errno_out);
/* connect(2) for a socket made by socket(2) and adopted: waits for the handshake (the write
 * deadline applies). A refused or failed handshake is MYRIAD_EIO with its errno
 * (ECONNREFUSED, ETIMEDOUT, ...; EAGAIN for a Unix socket whose listener's backlog is full).
 * MYRIAD_EINVAL: addr NULL. */
MYRIAD_API myriad_status myriad_fd_connect(myriad_fd fd, const struct sockaddr* addr,
                                           socklen_t addr_len, myriad_context ctx,
                                           int* errno_out);

/* TCP helpers. host: an IPv4 or IPv6 literal, or a name (resolved as a blocking call, so the
 * proc keeps running other tasks meanwhile); NULL: every local address (listen) or the
 * loopback (connect). rt as for myriad_fd_adopt. MYRIAD_EIO: the address could not be
 * resolved, or socket/bind/listen/connect failed — these helpers do not report the errno; when
 * it matters, make the socket with socket(2) and use myriad_fd_adopt + myriad_fd_connect.
 * A listening socket with SO_REUSEADDR; port 0 picks a free port (see myriad_fd_local_port);
 * backlog <= 0 means 4096. */
MYRIAD_API myriad_status myriad_tcp_listen(myriad_runtime rt, const char* host, uint16_t port,
                                           int backlog, myriad_fd* out);
/* A connected socket with TCP_NODELAY. Gives up as the context says (ctx may be zero); tries
 * the host's addresses in turn while they fail with MYRIAD_EIO. */
MYRIAD_API myriad_status myriad_tcp_connect(myriad_runtime rt, const char* host, uint16_t port,
                                            myriad_context ctx, myriad_fd* out);
/* The local port of a bound TCP/IP socket. MYRIAD_EIO: getsockname failed; MYRIAD_EINVAL: not
 * a TCP/IP socket, or port_out NULL. */
MYRIAD_API myriad_status myriad_fd_local_port(myriad_fd fd, uint16_t* port_out);

/* ==== Blocking calls, thread locks, preemption ==================================================
 * Blocking calls (Go's entersyscall/exitsyscall, cgo): bracket a call that may hold the thread
 * for long (a blocking system call, a foreign library) with enter and leave. The task keeps its
 * thread, and its proc stays with it, so a short call costs a few atomic operations; when the
 * call lasts longer than myriad_config.blocking_handoff_ns the runtime's monitor hands the proc
 * to another thread, so the proc's other tasks run meanwhile. On leave the task takes a proc
 * back (or queues for one) and resumes on the same thread. Between enter and leave the task
 * has no proc: it must not call anything that waits (channel operations, select, locks,
 * joins, sleeps, fd I/O) — the process aborts if it parks — but may spawn, close channels,
 * cancel contexts and use the try_ operations. An enter inside a blocking section does
 * nothing and the first leave ends the section. From a foreign thread or a task on a host
 * proc (myriad_step) both are no-ops that return MYRIAD_OK.
 *
 * Thread locks (Go's LockOSThread): a locked task runs only on its current thread, and that
 * thread runs no other task (while the task waits, its proc goes to another thread) — for
 * libraries with thread-affine state. Locks nest; the task is unlocked when it ends.
 *
 * Preemption: a task that runs myriad_config.preempt_after_ns without a yield point is asked
 * to yield at its next one — a channel operation, myriad_yield, or myriad_preempt_point — and
 * reported to myriad_config.on_long_running. There is no asynchronous (signal) preemption: C
 * code may be interrupted anywhere (inside malloc, holding a lock, in a library that is not
 * async-signal-safe), and switching stacks from a signal handler there would corrupt it. A
 * long computation should call myriad_preempt_point now and then. */

/* MYRIAD_ETHREADLIMIT: the runtime would need more than max_threads threads (the call must not
 * be made as a blocking call then; nothing changed, do not call myriad_blocking_leave). */
MYRIAD_API myriad_status myriad_blocking_enter(void);
MYRIAD_API void myriad_blocking_leave(void);
/* Locks the calling task to its thread (one more level). MYRIAD_ENOTINTASK: not in a task;
 * MYRIAD_ENOTSUP: a task on a host-driven proc (the host lends its thread only for a step);
 * MYRIAD_ETHREADLIMIT: the runtime cannot spare a thread (max_threads). */
MYRIAD_API myriad_status myriad_thread_lock(void);
/* One level; a no-op when not locked or outside a task. */
MYRIAD_API void myriad_thread_unlock(void);
/* Whether the calling task is locked to its thread (false outside a task). */
MYRIAD_API bool myriad_thread_locked(void);
/* Yields if the monitor asked the calling task to; otherwise returns at once (a load and a
 * branch). A no-op outside a task. */
MYRIAD_API void myriad_preempt_point(void);

/* ==== Batch compute kernels =====================================================================
 * Batched GEMM (bf16, fp32, int8) and fp32 vector operations, run in parallel by tasks of a
 * runtime on the fastest instruction set the CPU allows (the C++ API is myriad/kernels.hpp;
 * docs/KERNELS.md has the details). All sizes, leading dimensions and strides count elements,
 * not bytes; matrices are row-major.
 *
 * Paths (myriad_isa), chosen once per process at the first call: AMX (tiles; bf16 and int8
 * GEMM) → AVX-512 (F/BW/VL/DQ + VNNI + BF16) → AVX2 + FMA → portable. myriad_kernels_set_isa
 * forces one (a path the machine cannot run: MYRIAD_ENOTSUP), and so does the environment
 * variable MYRIAD_KERNELS=amx|avx512|avx2|portable|auto (a path the machine cannot run: one
 * warning on stderr, and the automatic choice). AMX also needs Linux to grant the process the
 * tile state (arch_prctl ARCH_REQ_XCOMP_PERM); when it refuses, AVX-512 is used.
 *
 * Parallelism: a call made from a task runs on that task's runtime — the work is cut into
 * ranges of batch items (or of L2-sized blocks of a large GEMM), at most a few tasks per proc
 * and only as many as the work pays for; the calling task runs one range and parks until the
 * others are done. A call from a thread that is not a task runs serially on that thread. A
 * myriad_exec chooses another runtime (the caller then only waits: a foreign thread blocks, a
 * task parks), serial execution, or a cap on the tasks. Calls from many tasks and threads at
 * once are safe: the kernels keep no shared mutable state. A parallel call waits, so between
 * myriad_blocking_enter and myriad_blocking_leave run kernels with exec.serial = 1.
 *
 * Errors: every argument is checked before anything is written. MYRIAD_EINVAL: a NULL pointer
 * where there is work to do, a struct whose size field is smaller than the struct's first
 * version, a value outside its enum, a leading dimension smaller than its row, byte extents
 * past 2^62, a packed B made for another geometry or type, non-finite alpha/beta for int8;
 * MYRIAD_ENOMEM: packing memory could not be allocated; MYRIAD_EBADHANDLE: a bad exec->runtime
 * or packed-B handle. Numerics:
 *  - bf16 is the top half of an IEEE binary32, carried in a uint16_t.
 *  - bf16 and fp32 GEMMs accumulate in fp32; the order of the K sum differs between paths, so
 *    results agree with a double-precision reference within about K·2^-24·Σ|a·b|, not bit for
 *    bit across paths. The AMX bf16 unit treats denormal inputs as zero (the vector paths keep
 *    them). NaN and Inf in A or B propagate as IEEE says.
 *  - int8 GEMMs accumulate in int32 exactly (wrapping, which needs K > 131,072).
 *  - C = alpha·(A·B) + beta·C. With beta == 0, C is only written (a NaN already in C does not
 *    propagate). For int8, alpha == 1 and beta ∈ {0, 1} are exact integer operations (beta == 1
 *    wraps like the sum); other values are applied in double and rounded to nearest even,
 *    saturating to the int32 range. */

/* Instruction-set paths, slowest to fastest. */
typedef enum myriad_isa {
  MYRIAD_ISA_PORTABLE = 0,
  MYRIAD_ISA_AVX2 = 1,    /* AVX2 + FMA + BMI2 */
  MYRIAD_ISA_AVX512 = 2,  /* AVX-512 F/DQ/BW/VL + VNNI + BF16 */
  MYRIAD_ISA_AMX = 3      /* AMX tiles for bf16 and int8 GEMM (the rest from AVX-512) */
} myriad_isa;

/* The path in use: chosen at the first kernel call (or this one) from the machine and
 * MYRIAD_KERNELS, or forced by myriad_kernels_set_isa. */
MYRIAD_API myriad_isa myriad_kernels_isa(void);
/* The fastest path this machine and kernel allow (AMX only once Linux granted the tile state). */
MYRIAD_API myriad_isa myriad_kernels_best_isa(void);
/* Forces a path for the whole process (every path up to myriad_kernels_best_isa() is
 * allowed). MYRIAD_ENOTSUP: the machine cannot run it (nothing changes); MYRIAD_EINVAL: not a
 * myriad_isa. Not meant to race with kernel calls in progress (they finish on the path they
 * started with). */
MYRIAD_API myriad_status myriad_kernels_set_isa(myriad_isa isa);
/* Returns to the automatic choice: myriad_kernels_best_isa(). */
MYRIAD_API void myriad_kernels_reset_isa(void);
/* "portable", "avx2", "avx512", "amx"; "?" for other values. Never NULL. */
MYRIAD_API const char* myriad_kernels_isa_name(int isa);

/* bf16 conversions. from_float rounds to nearest, ties to even; a NaN stays a (quiet) NaN with
 * its sign, ±Inf and ±0 are kept, values past the largest bf16 become ±Inf. to_float is exact. */
MYRIAD_API uint16_t myriad_bf16_from_float(float f);
MYRIAD_API float myriad_bf16_to_float(uint16_t h);
/* The same over n elements (in and out must not overlap; NULL allowed only when n == 0).
 * MYRIAD_EINVAL: a NULL pointer with n > 0. */
MYRIAD_API myriad_status myriad_bf16_from_float_n(const float* in, uint16_t* out, size_t n);
MYRIAD_API myriad_status myriad_bf16_to_float_n(const uint16_t* in, float* out, size_t n);

/* Geometry of a batched GEMM: for b in [0, batch): C_b = alpha · A_b · op(B_b) + beta · C_b.
 * A_b is m×k at a + b·stride_a, rows lda apart. op(B_b) is k×n: B_b stored k×n with rows ldb
 * apart, or, with trans_b != 0, stored n×k (rows of length k, ldb apart — the usual layout of
 * a model's weights). C_b is m×n at c + b·stride_c, rows ldc apart. stride_b = 0 shares one B
 * across the batch. Checked on every call: lda >= k, ldb >= (trans_b ? k : n), ldc >= n, byte
 * extents below 2^62, pointers non-NULL unless batch·m·n == 0 (A and B may be NULL when
 * k == 0: C = beta·C). Strides may make items overlap in A and B, not in C. */
typedef struct myriad_gemm {
  size_t size;  /* sizeof(myriad_gemm); myriad_gemm_init sets it */
  size_t batch; /* items (default 1) */
  size_t m, n, k;
  size_t lda, ldb, ldc;
  size_t stride_a, stride_b, stride_c;
  int32_t trans_b; /* nonzero: B is stored n×k */
  float alpha;     /* default 1 */
  float beta;      /* default 0 */
} myriad_gemm;

/* The element types of a GEMM: A × B → C. */
typedef enum myriad_gemm_type {
  MYRIAD_GEMM_BF16_F32 = 0, /* bf16 (uint16_t) × bf16 → float */
  MYRIAD_GEMM_F32_F32 = 1,  /* float × float → float */
  MYRIAD_GEMM_S8S8_S32 = 2, /* int8_t × int8_t → int32_t */
  MYRIAD_GEMM_U8S8_S32 = 3  /* uint8_t × int8_t → int32_t */
} myriad_gemm_type;

/* How a call runs. NULL where a function takes a const myriad_exec* means all defaults. */
typedef struct myriad_exec {
  size_t size;            /* sizeof(myriad_exec); myriad_exec_init sets it */
  myriad_runtime runtime; /* run on this runtime's procs (from any thread). Zero (default): the
                             calling task's runtime; serial on a thread that is not a task */
  int32_t serial;         /* nonzero: everything on the calling thread */
  uint32_t max_tasks;     /* at most this many tasks; 0 (default): the library's choice */
} myriad_exec;

/* Fills the defaults (batch 1, alpha 1, every other field 0) into the first `size` bytes of
 * *gemm, and gemm->size = size: pass sizeof(myriad_gemm). MYRIAD_EINVAL: gemm NULL, or size
 * smaller than the first version of the struct (nothing is written then). Larger sizes than
 * the library knows are allowed (the extra bytes are zeroed). */
MYRIAD_API myriad_status myriad_gemm_init(myriad_gemm* gemm, size_t size);
/* Leading dimensions and batch strides for densely packed operands, from m, n, k and trans_b:
 * lda = k, ldb = trans_b ? k : n, ldc = n, stride_a = m·k, stride_b = k·n, stride_c = m·n
 * (set stride_b = 0 afterwards to share B). MYRIAD_EINVAL: gemm NULL or a bad size field. */
MYRIAD_API myriad_status myriad_gemm_set_dense(myriad_gemm* gemm);
/* The defaults (runtime zero, not serial, max_tasks 0) and exec->size = size, as
 * myriad_gemm_init. */
MYRIAD_API myriad_status myriad_exec_init(myriad_exec* exec, size_t size);

/* GEMM for one element type (see myriad_gemm). exec may be NULL. Returns once every item is
 * done; on an error nothing was written. MYRIAD_EINVAL: gemm NULL, a bad size field in gemm or
 * exec, a bad geometry or a NULL operand with work to do, non-finite alpha or beta (int8
 * only); MYRIAD_EBADHANDLE: exec->runtime is not a runtime; MYRIAD_ENOMEM: no memory to pack a
 * shared B. Threading: see the section comment (parks a task, blocks a thread while tasks of
 * exec->runtime work). */
MYRIAD_API myriad_status myriad_gemm_bf16(const myriad_gemm* gemm, const uint16_t* a,
                                          const uint16_t* b, float* c, const myriad_exec* exec);
MYRIAD_API myriad_status myriad_gemm_f32(const myriad_gemm* gemm, const float* a, const float* b,
                                         float* c, const myriad_exec* exec);
MYRIAD_API myriad_status myriad_gemm_s8s8(const myriad_gemm* gemm, const int8_t* a,
                                          const int8_t* b, int32_t* c, const myriad_exec* exec);
MYRIAD_API myriad_status myriad_gemm_u8s8(const myriad_gemm* gemm, const uint8_t* a,
                                          const int8_t* b, int32_t* c, const myriad_exec* exec);

/* Prepacked B: B laid out once (per batch item, or once when stride_b == 0 or batch == 1) in
 * the layout every path reads, so GEMMs that reuse it (a model's weights) skip the repacking.
 * The packed copy is independent of the path in use and of the caller's B afterwards. An
 * opaque handle like the others: destroy it with myriad_packed_b_destroy. */
typedef struct myriad_packed_b { uint64_t bits; } myriad_packed_b;

/* Packs B (elements of `type`'s B: uint16_t bf16, float, or int8_t for both int8 types) for
 * GEMMs with the same k, n, trans_b, batch and stride_b as gemm (the other fields are not
 * used and may differ later). MYRIAD_EINVAL: gemm or out NULL, a bad size field or type, ldb
 * smaller than B's row, extents past 2^62, b NULL with k·n > 0; MYRIAD_ENOMEM. Safe from any
 * thread; runs on the calling thread. */
MYRIAD_API myriad_status myriad_pack_b(const myriad_gemm* gemm, myriad_gemm_type type,
                                       const void* b, myriad_packed_b* out);
/* Frees the packed B and invalidates the handle. MYRIAD_EBUSY: a myriad_gemm_packed on it is
 * in progress (nothing changes). */
MYRIAD_API myriad_status myriad_packed_b_destroy(myriad_packed_b pb);
/* What a packed B was made for; every out pointer may be NULL. items: the B items it holds (1
 * when B is shared by the batch); bytes: the memory it holds. */
MYRIAD_API myriad_status myriad_packed_b_info(myriad_packed_b pb, myriad_gemm_type* type_out,
                                              size_t* k_out, size_t* n_out, size_t* items_out,
                                              size_t* bytes_out);
/* GEMM with B from myriad_pack_b (gemm's ldb is not used). a and c have `type`'s element
 * types. Any number of calls may use one packed B at once. MYRIAD_EINVAL: as myriad_gemm_*,
 * or pb made for another type, k, n, or number of B items; MYRIAD_EBADHANDLE: pb or
 * exec->runtime. */
MYRIAD_API myriad_status myriad_gemm_packed(const myriad_gemm* gemm, myriad_gemm_type type,
                                            const void* a, myriad_packed_b pb, void* c,
                                            const myriad_exec* exec);

/* Batched fp32 vector operations over `count` vectors of length n: vector i of x starts at
 * x + i·stride_x (likewise y). Sums accumulate in fp32 with several partial sums (not in index
 * order); NaN propagates. exec may be NULL. MYRIAD_EINVAL: a NULL pointer with count > 0 (x, y
 * also only with n > 0), extents past 2^62, a bad exec size field; MYRIAD_EBADHANDLE:
 * exec->runtime. Threading as for GEMM. */
/* out[i] = Σ_j x_i[j]·y_i[j] (n == 0: 0). */
MYRIAD_API myriad_status myriad_dot(size_t count, size_t n, const float* x, size_t stride_x,
                                    const float* y, size_t stride_y, float* out,
                                    const myriad_exec* exec);
/* y_i[j] += alpha · x_i[j]. The y vectors must not overlap each other. */
MYRIAD_API myriad_status myriad_axpy(size_t count, size_t n, float alpha, const float* x,
                                     size_t stride_x, float* y, size_t stride_y,
                                     const myriad_exec* exec);
/* out[i] = Σ_j x_i[j] (0 for n == 0) and out[i] = max_j x_i[j] (NaN when any element is NaN,
 * -Inf for n == 0). For the rows of a matrix, stride_x is its leading dimension. */
MYRIAD_API myriad_status myriad_row_sum(size_t count, size_t n, const float* x, size_t stride_x,
                                        float* out, const myriad_exec* exec);
MYRIAD_API myriad_status myriad_row_max(size_t count, size_t n, const float* x, size_t stride_x,
                                        float* out, const myriad_exec* exec);

#ifdef __cplusplus
}
#endif

#endif /* MYRIAD_H */
