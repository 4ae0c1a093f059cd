/* File descriptors through the C ABI: a loopback TCP echo between tasks (listen, accept,
 * connect, write_all/read_full, writev/recv, send/readv; every byte checked) on epoll and on
 * io_uring when the kernel has it; read and write deadlines (also changed while a call waits);
 * context cancellation and context timeouts of blocked reads and accepts; close while a read
 * and a write are blocked (MYRIAD_EFDCLOSED, the descriptor closed afterwards); release; calls
 * from a foreign thread; errno reporting (ECONNREFUSED, EPIPE without SIGPIPE); descriptors
 * outliving their runtime; the poller query; wait reasons; bad handles and NULL arguments. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "myriad.h"

#define MS 1000000LL

static const myriad_context kNoCtx = {0};

static myriad_runtime make_runtime(uint32_t procs, int poller) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = procs;
  c.poller = poller;
  c.report_abandoned = 0;
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  return rt;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A connected pair of stream sockets, both adopted into rt. */
static void make_pair(myriad_runtime rt, myriad_fd* a, myriad_fd* b) {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  REQUIRE(myriad_fd_adopt(rt, sv[0], a) == MYRIAD_OK);
  REQUIRE(myriad_fd_adopt(rt, sv[1], b) == MYRIAD_OK);
}

static bool fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

/* Waits until `count` tasks of rt are parked with `reason` (the calls under test are then
 * really waiting, not about to); on failure prints the task dump. */
#define wait_for_reason(rt, reason, count) wait_for_reason_((rt), (reason), (count), __LINE__)
static void wait_for_reason_(myriad_runtime rt, int reason, size_t count, int line) {
  for (int i = 0; i < 20000; ++i) {
    myriad_task_info info[64];
    info[0].size = sizeof info[0];
    size_t n = 0;
    REQUIRE(myriad_list_tasks(rt, info, 64, &n) == MYRIAD_OK);
    size_t found = 0;
    for (size_t k = 0; k < n && k < 64; ++k)
      if (info[k].state == MYRIAD_TASK_WAITING && info[k].wait_reason == reason) ++found;
    if (found >= count) return;
    sleep_ms(1);
  }
  static char dump[1 << 16];
  myriad_dump_tasks(rt, dump, sizeof dump, NULL);
  fprintf(stderr, "line %d: waited 20 s for %zu task(s) in %s; tasks:\n%s\n", line, count,
          myriad_wait_reason_name(reason), dump);
  REQUIRE(!"tasks never reached the expected wait reason");
}

static myriad_task spawn(myriad_runtime rt, myriad_task_fn fn, void* arg, const char* label) {
  myriad_spawn_options o = MYRIAD_SPAWN_OPTIONS(label);
  myriad_task t;
  REQUIRE(myriad_spawn(rt, fn, arg, &o, &t) == MYRIAD_OK);
  return t;
}

/* Fills a socket's send buffer (and the peer's receive buffer): writes until a write would
 * have to wait, using a deadline already passed as "would block". */
static size_t fill(myriad_fd fd) {
  static char junk[65536];
  size_t total = 0;
  CHECK_ST(myriad_fd_set_write_deadline(fd, myriad_now_ns() + 20 * MS), MYRIAD_OK);
  for (;;) {
    size_t n = 0;
    myriad_status st = myriad_fd_write(fd, junk, sizeof junk, kNoCtx, &n, NULL);
    total += n;
    if (st == MYRIAD_ETIMEDOUT) break;
    if (st != MYRIAD_OK) {
      CHECK_ST(st, MYRIAD_OK);
      break;
    }
  }
  CHECK_ST(myriad_fd_set_write_deadline(fd, INT64_MAX), MYRIAD_OK);
  return total;
}

/* ---- Echo ------------------------------------------------------------------------------------ */

enum { kClients = 16, kRounds = 48, kChunk = 4096 };

struct echo {
  myriad_runtime rt;
  myriad_fd ln;
  uint16_t port;
  myriad_wait_group wg;
  atomic_int failures;
  atomic_long echoed;
  atomic_int conns_served;
};

struct conn_arg {
  struct echo* e;
  myriad_fd c;
};

static void fail(struct echo* e, const char* what, myriad_status st, int err) {
  fprintf(stderr, "echo: %s: %s (errno %d)\n", what, myriad_strerror(st), err);
  atomic_fetch_add(&e->failures, 1);
}

static void echo_conn(void* arg) {
  struct conn_arg* a = arg;
  char buf[4096];
  for (;;) {
    size_t n = 0;
    int err = 0;
    myriad_status st = myriad_fd_read(a->c, buf, sizeof buf, kNoCtx, &n, &err);
    if (st != MYRIAD_OK) {
      fail(a->e, "server read", st, err);
      break;
    }
    if (n == 0) break; /* the client closed */
    size_t w = 0;
    st = myriad_fd_write_all(a->c, buf, n, kNoCtx, &w, &err);
    if (st != MYRIAD_OK || w != n) {
      fail(a->e, "server write_all", st, err);
      break;
    }
  }
  atomic_fetch_add(&a->e->conns_served, 1);
  CHECK_ST(myriad_fd_close(a->c), MYRIAD_OK);
  myriad_wait_group_done(a->e->wg);
  free(a);
}

static void acceptor(void* arg) {
  struct echo* e = arg;
  for (int i = 0; i < kClients; ++i) {
    struct conn_arg* a = malloc(sizeof *a);
    REQUIRE(a != NULL);
    a->e = e;
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int err = 0;
    myriad_status st = myriad_fd_accept(e->ln, &a->c, (struct sockaddr*)&peer, &peer_len, kNoCtx,
                                        &err);
    if (st != MYRIAD_OK) {
      fail(e, "accept", st, err);
      free(a);
      myriad_wait_group_done(e->wg);
      continue;
    }
    CHECK(peer_len > 0 && peer.ss_family == AF_INET);
    myriad_spawn_options o = MYRIAD_SPAWN_OPTIONS("echo_conn");
    REQUIRE(myriad_spawn(e->rt, echo_conn, a, &o, NULL) == MYRIAD_OK);
  }
}

static void pattern(char* buf, size_t n, int client, int round) {
  for (size_t j = 0; j < n; ++j) buf[j] = (char)((client * 131 + round * 31 + (int)j * 7) & 0xff);
}

/* Writes all of buf with writev (two halves, then the rest if short). */
static myriad_status writev_all(myriad_fd fd, const char* buf, size_t n) {
  struct iovec iov[2] = {{(void*)buf, n / 2}, {(void*)(buf + n / 2), n - n / 2}};
  size_t w = 0;
  myriad_status st = myriad_fd_writev(fd, iov, 2, kNoCtx, &w, NULL);
  if (st != MYRIAD_OK) return st;
  return w == n ? MYRIAD_OK : myriad_fd_write_all(fd, buf + w, n - w, kNoCtx, NULL, NULL);
}

static myriad_status recv_full(myriad_fd fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t r = 0;
    myriad_status st = myriad_fd_recv(fd, buf + got, n - got, 0, kNoCtx, &r, NULL);
    if (st != MYRIAD_OK) return st;
    if (r == 0) return MYRIAD_EIO; /* early end of file */
    got += r;
  }
  return MYRIAD_OK;
}

static myriad_status readv_full(myriad_fd fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    const size_t left = n - got;
    struct iovec iov[2] = {{buf + got, left / 2}, {buf + got + left / 2, left - left / 2}};
    size_t r = 0;
    myriad_status st = myriad_fd_readv(fd, iov, 2, kNoCtx, &r, NULL);
    if (st != MYRIAD_OK) return st;
    if (r == 0) return MYRIAD_EIO;
    got += r;
  }
  return MYRIAD_OK;
}

struct client_arg {
  struct echo* e;
  int id;
};

static void client(void* arg) {
  struct client_arg* a = arg;
  struct echo* e = a->e;
  myriad_fd c;
  myriad_status st = myriad_tcp_connect((myriad_runtime){0}, "127.0.0.1", e->port, kNoCtx, &c);
  if (st != MYRIAD_OK) {
    fail(e, "tcp_connect", st, 0);
    return;
  }
  char out[kChunk], in[kChunk];
  for (int r = 0; r < kRounds; ++r) {
    pattern(out, sizeof out, a->id, r);
    memset(in, 0, sizeof in);
    size_t n = 0;
    int err = 0;
    switch (r % 3) {
      case 0:
        st = myriad_fd_write_all(c, out, sizeof out, kNoCtx, &n, &err);
        if (st == MYRIAD_OK && n != sizeof out) st = MYRIAD_EIO;
        if (st == MYRIAD_OK) st = myriad_fd_read_full(c, in, sizeof in, kNoCtx, &n, &err);
        if (st == MYRIAD_OK && n != sizeof in) st = MYRIAD_EIO;
        break;
      case 1:
        st = writev_all(c, out, sizeof out);
        if (st == MYRIAD_OK) st = recv_full(c, in, sizeof in);
        break;
      default: {
        size_t w = 0;
        st = myriad_fd_send(c, out, sizeof out, 0, kNoCtx, &w, &err);
        if (st == MYRIAD_OK && w < sizeof out)
          st = myriad_fd_write_all(c, out + w, sizeof out - w, kNoCtx, NULL, &err);
        if (st == MYRIAD_OK) st = readv_full(c, in, sizeof in);
        break;
      }
    }
    if (st != MYRIAD_OK) {
      fail(e, "client round", st, err);
      break;
    }
    if (memcmp(in, out, sizeof in) != 0) {
      fail(e, "echoed bytes differ", MYRIAD_OK, 0);
      break;
    }
    atomic_fetch_add(&e->echoed, (long)sizeof in);
  }
  CHECK_ST(myriad_fd_close(c), MYRIAD_OK);
}

static void run_echo(int poller) {
  myriad_runtime rt = make_runtime(4, poller);
  myriad_poller_kind kind = (myriad_poller_kind)-1;
  CHECK_ST(myriad_runtime_poller(rt, &kind), MYRIAD_OK);
  CHECK(kind == MYRIAD_POLLER_AUTO); /* not started before the first descriptor */

  struct echo e;
  memset(&e, 0, sizeof e);
  e.rt = rt;
  myriad_status st = myriad_tcp_listen(rt, "127.0.0.1", 0, 0, &e.ln);
  if (poller == MYRIAD_POLLER_IO_URING && st == MYRIAD_ENOTSUP) {
    printf("io_uring not available here: echo over io_uring skipped\n");
    CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
    return;
  }
  REQUIRE(st == MYRIAD_OK);
  CHECK_ST(myriad_runtime_poller(rt, &kind), MYRIAD_OK);
  if (poller == MYRIAD_POLLER_AUTO)
    CHECK(kind == MYRIAD_POLLER_EPOLL || kind == MYRIAD_POLLER_IO_URING);
  else
    CHECK((int)kind == poller);
  printf("echo over %s\n", myriad_poller_name((int)kind));
  CHECK_ST(myriad_fd_local_port(e.ln, &e.port), MYRIAD_OK);
  CHECK(e.port != 0);
  REQUIRE(myriad_wait_group_create(&e.wg) == MYRIAD_OK);
  REQUIRE(myriad_wait_group_add(e.wg, kClients) == MYRIAD_OK);

  myriad_task acc = spawn(rt, acceptor, &e, "acceptor");
  struct client_arg args[kClients];
  myriad_task clients[kClients];
  for (int i = 0; i < kClients; ++i) {
    args[i].e = &e;
    args[i].id = i;
    clients[i] = spawn(rt, client, &args[i], "client");
  }
  for (int i = 0; i < kClients; ++i) CHECK_ST(myriad_join(clients[i]), MYRIAD_OK);
  CHECK_ST(myriad_join(acc), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_wait(e.wg), MYRIAD_OK);
  CHECK(atomic_load(&e.failures) == 0);
  CHECK(atomic_load(&e.echoed) == (long)kClients * kRounds * kChunk);
  CHECK(atomic_load(&e.conns_served) == kClients);
  CHECK_ST(myriad_fd_close(e.ln), MYRIAD_OK);
  CHECK_ST(myriad_wait_group_destroy(e.wg), MYRIAD_OK);

  myriad_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  CHECK_ST(myriad_runtime_stats(rt, &s), MYRIAD_OK);
  CHECK(s.netpoll_ready > 0);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- Deadlines -------------------------------------------------------------------------------- */

struct deadline_arg {
  myriad_fd a, b;
  myriad_status st;
  size_t n;
  int64_t returned_at;
};

static void read_with_far_deadline(void* arg) {
  struct deadline_arg* d = arg;
  char c;
  CHECK_ST(myriad_fd_set_read_deadline(d->a, myriad_now_ns() + 60000 * MS), MYRIAD_OK);
  d->st = myriad_fd_read(d->a, &c, 1, kNoCtx, &d->n, NULL);
  d->returned_at = myriad_now_ns();
}

/* The deadline checks, from a task (arg != NULL) or a foreign thread. */
static void deadline_checks(myriad_runtime rt) {
  myriad_fd a, b;
  make_pair(rt, &a, &b);
  char buf[16];
  size_t n = 99;
  /* A read deadline passes: ETIMEDOUT, nothing read, not before the deadline. */
  int64_t dl = myriad_now_ns() + 20 * MS;
  CHECK_ST(myriad_fd_set_read_deadline(a, dl), MYRIAD_OK);
  CHECK_ST(myriad_fd_read(a, buf, sizeof buf, kNoCtx, &n, NULL), MYRIAD_ETIMEDOUT);
  CHECK(n == 0);
  CHECK(myriad_now_ns() >= dl);
  /* It stays: the next read times out at once, even with data available. */
  CHECK_ST(myriad_fd_write(b, "xyz", 3, kNoCtx, &n, NULL), MYRIAD_OK);
  CHECK(n == 3);
  CHECK_ST(myriad_fd_read(a, buf, sizeof buf, kNoCtx, &n, NULL), MYRIAD_ETIMEDOUT);
  CHECK_ST(myriad_fd_read_full(a, buf, 3, kNoCtx, &n, NULL), MYRIAD_ETIMEDOUT);
  CHECK(n == 0);
  /* Cleared: the data is still there. */
  CHECK_ST(myriad_fd_set_read_deadline(a, INT64_MAX), MYRIAD_OK);
  CHECK_ST(myriad_fd_read_full(a, buf, 3, kNoCtx, &n, NULL), MYRIAD_OK);
  CHECK(n == 3 && memcmp(buf, "xyz", 3) == 0);
  /* set_deadline sets both directions. */
  CHECK_ST(myriad_fd_set_deadline(a, myriad_now_ns() - 1), MYRIAD_OK);
  CHECK_ST(myriad_fd_write(a, "q", 1, kNoCtx, &n, NULL), MYRIAD_ETIMEDOUT);
  CHECK_ST(myriad_fd_read(a, buf, 1, kNoCtx, &n, NULL), MYRIAD_ETIMEDOUT);
  CHECK_ST(myriad_fd_set_deadline(a, INT64_MAX), MYRIAD_OK);
  /* A write deadline: write_all of more than the buffers hold reports how much it wrote. */
  enum { kBig = 8 << 20 };
  char* big = calloc(1, kBig);
  REQUIRE(big != NULL);
  dl = myriad_now_ns() + 20 * MS;
  CHECK_ST(myriad_fd_set_write_deadline(a, dl), MYRIAD_OK);
  int err = -1;
  CHECK_ST(myriad_fd_write_all(a, big, kBig, kNoCtx, &n, &err), MYRIAD_ETIMEDOUT);
  CHECK(n > 0 && n < kBig);
  CHECK(err == 0);
  CHECK(myriad_now_ns() >= dl);
  free(big);
  CHECK_ST(myriad_fd_close(a), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(b), MYRIAD_OK);
}

static void deadline_task(void* arg) { deadline_checks(*(myriad_runtime*)arg); }

static void test_deadlines(void) {
  myriad_runtime rt = make_runtime(2, MYRIAD_POLLER_AUTO);
  deadline_checks(rt); /* a foreign thread: it sleeps where a task parks */
  myriad_task t = spawn(rt, deadline_task, &rt, "deadlines");
  CHECK_ST(myriad_join(t), MYRIAD_OK);

  /* A deadline changed while a read waits applies to that read. */
  struct deadline_arg d;
  memset(&d, 0, sizeof d);
  make_pair(rt, &d.a, &d.b);
  t = spawn(rt, read_with_far_deadline, &d, "far_deadline");
  wait_for_reason(rt, MYRIAD_WAIT_IO_READ, 1);
  const int64_t dl = myriad_now_ns() + 10 * MS;
  CHECK_ST(myriad_fd_set_read_deadline(d.a, dl), MYRIAD_OK);
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  CHECK_ST(d.st, MYRIAD_ETIMEDOUT);
  CHECK(d.returned_at >= dl);
  CHECK_ST(myriad_fd_close(d.a), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(d.b), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- Contexts --------------------------------------------------------------------------------- */

struct ctx_arg {
  myriad_fd fd;
  myriad_context ctx;
  myriad_status st;
  size_t n;
  bool accept;
};

static void read_with_ctx(void* arg) {
  struct ctx_arg* c = arg;
  char buf[8];
  c->n = 99;
  if (c->accept) {
    myriad_fd conn = {77};
    c->st = myriad_fd_accept(c->fd, &conn, NULL, NULL, c->ctx, NULL);
    CHECK(conn.bits == 0);
  } else {
    c->st = myriad_fd_read(c->fd, buf, sizeof buf, c->ctx, &c->n, NULL);
  }
}

static void test_contexts(void) {
  myriad_runtime rt = make_runtime(2, MYRIAD_POLLER_AUTO);
  myriad_context bg;
  REQUIRE(myriad_context_background(&bg) == MYRIAD_OK);
  myriad_fd a, b;
  make_pair(rt, &a, &b);

  /* Cancel a blocked read. */
  struct ctx_arg c = {a, {0}, MYRIAD_OK, 0, false};
  REQUIRE(myriad_context_with_cancel(bg, &c.ctx) == MYRIAD_OK);
  myriad_task t = spawn(rt, read_with_ctx, &c, "ctx_read");
  wait_for_reason(rt, MYRIAD_WAIT_IO_READ, 1);
  CHECK_ST(myriad_context_cancel(c.ctx, MYRIAD_OK), MYRIAD_OK);
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  CHECK_ST(c.st, MYRIAD_ECANCELED);
  CHECK(c.n == 0);
  /* A context already cancelled wins over data that is ready, which stays unread. */
  size_t n = 0;
  CHECK_ST(myriad_fd_write(b, "ab", 2, kNoCtx, &n, NULL), MYRIAD_OK);
  t = spawn(rt, read_with_ctx, &c, "ctx_read_cancelled");
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  CHECK_ST(c.st, MYRIAD_ECANCELED);
  char buf[4];
  CHECK_ST(myriad_fd_read_full(a, buf, 2, c.ctx, &n, NULL), MYRIAD_ECANCELED);
  CHECK_ST(myriad_fd_write_all(a, "x", 1, c.ctx, &n, NULL), MYRIAD_ECANCELED);
  CHECK_ST(myriad_fd_read_full(a, buf, 2, kNoCtx, &n, NULL), MYRIAD_OK);
  CHECK(n == 2 && memcmp(buf, "ab", 2) == 0);
  CHECK_ST(myriad_context_destroy(c.ctx), MYRIAD_OK);

  /* A context's timeout ends a blocked read with ETIMEDOUT, even when the context's handle is
   * destroyed while the read waits (the call holds its own reference). */
  REQUIRE(myriad_context_with_timeout_ns(rt, bg, 30 * MS, &c.ctx) == MYRIAD_OK);
  t = spawn(rt, read_with_ctx, &c, "ctx_read_timeout");
  wait_for_reason(rt, MYRIAD_WAIT_IO_READ, 1);
  CHECK_ST(myriad_context_destroy(c.ctx), MYRIAD_OK);
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  CHECK_ST(c.st, MYRIAD_ETIMEDOUT);

  /* Cancel a blocked accept. */
  myriad_fd ln;
  REQUIRE(myriad_tcp_listen(rt, "127.0.0.1", 0, 16, &ln) == MYRIAD_OK);
  struct ctx_arg ac = {ln, {0}, MYRIAD_OK, 0, true};
  REQUIRE(myriad_context_with_cancel(bg, &ac.ctx) == MYRIAD_OK);
  t = spawn(rt, read_with_ctx, &ac, "ctx_accept");
  wait_for_reason(rt, MYRIAD_WAIT_IO_READ, 1);
  CHECK_ST(myriad_context_cancel(ac.ctx, MYRIAD_ECHANCLOSED), MYRIAD_OK); /* a cause: err stays */
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  CHECK_ST(ac.st, MYRIAD_ECANCELED);
  CHECK_ST(myriad_context_destroy(ac.ctx), MYRIAD_OK);
  /* tcp_connect with a cancelled context. */
  uint16_t port = 0;
  CHECK_ST(myriad_fd_local_port(ln, &port), MYRIAD_OK);
  myriad_context dead;
  REQUIRE(myriad_context_with_cancel(bg, &dead) == MYRIAD_OK);
  CHECK_ST(myriad_context_cancel(dead, MYRIAD_OK), MYRIAD_OK);
  myriad_fd conn = {5};
  CHECK_ST(myriad_tcp_connect(rt, "127.0.0.1", port, dead, &conn), MYRIAD_ECANCELED);
  CHECK(conn.bits == 0);
  /* A destroyed context handle is a bad handle (not "no context"). */
  CHECK_ST(myriad_context_destroy(dead), MYRIAD_OK);
  CHECK_ST(myriad_fd_read(a, buf, 1, dead, &n, NULL), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_tcp_connect(rt, "127.0.0.1", port, dead, &conn), MYRIAD_EBADHANDLE);

  CHECK_ST(myriad_fd_close(ln), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(a), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(b), MYRIAD_OK);
  CHECK_ST(myriad_context_destroy(bg), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- Close and release while in use ------------------------------------------------------------ */

struct blocked_arg {
  myriad_fd fd;
  myriad_status st;
  size_t n;
};

static void blocked_reader(void* arg) {
  struct blocked_arg* b = arg;
  char buf[64];
  b->n = 99;
  b->st = myriad_fd_read(b->fd, buf, sizeof buf, kNoCtx, &b->n, NULL);
}

static void blocked_writer(void* arg) {
  struct blocked_arg* b = arg;
  static char chunk[1 << 16];
  b->n = 99;
  b->st = myriad_fd_write_all(b->fd, chunk, sizeof chunk, kNoCtx, &b->n, NULL);
}

static void test_close_while_blocked(void) {
  myriad_runtime rt = make_runtime(2, MYRIAD_POLLER_AUTO);
  myriad_fd a, b;
  make_pair(rt, &a, &b);
  fill(a); /* a's writes now wait */
  int native = -1;
  CHECK_ST(myriad_fd_native(a, &native), MYRIAD_OK);
  CHECK(native >= 0);

  struct blocked_arg r = {a, MYRIAD_OK, 0}, w = {a, MYRIAD_OK, 0};
  myriad_task tr = spawn(rt, blocked_reader, &r, "blocked_reader");
  myriad_task tw = spawn(rt, blocked_writer, &w, "blocked_writer");
  wait_for_reason(rt, MYRIAD_WAIT_IO_READ, 1);
  wait_for_reason(rt, MYRIAD_WAIT_IO_WRITE, 1);
  /* release is refused while calls are in progress. */
  int released = 7;
  CHECK_ST(myriad_fd_release(a, &released), MYRIAD_EBUSY);
  CHECK(released == -1);
  CHECK_ST(myriad_fd_close(a), MYRIAD_OK);
  CHECK_ST(myriad_join(tr), MYRIAD_OK);
  CHECK_ST(myriad_join(tw), MYRIAD_OK);
  CHECK_ST(r.st, MYRIAD_EFDCLOSED);
  CHECK(r.n == 0);
  CHECK_ST(w.st, MYRIAD_EFDCLOSED);
  CHECK(w.n < (1 << 16));
  /* The handle is gone, and with the calls out, so is the descriptor. */
  CHECK(!fd_is_open(native));
  char c;
  CHECK_ST(myriad_fd_read(a, &c, 1, kNoCtx, NULL, NULL), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_fd_close(a), MYRIAD_EBADHANDLE);
  /* The peer sees the end of the stream once it has drained what was written. */
  CHECK_ST(myriad_fd_close(b), MYRIAD_OK);

  /* Many readers on one descriptor, closed at once. */
  make_pair(rt, &a, &b);
  enum { kReaders = 8 };
  struct blocked_arg rs[kReaders];
  myriad_task ts[kReaders];
  for (int i = 0; i < kReaders; ++i) {
    rs[i].fd = a;
    ts[i] = spawn(rt, blocked_reader, &rs[i], "reader");
  }
  wait_for_reason(rt, MYRIAD_WAIT_IO_READ, kReaders);
  CHECK_ST(myriad_fd_close(a), MYRIAD_OK);
  for (int i = 0; i < kReaders; ++i) {
    CHECK_ST(myriad_join(ts[i]), MYRIAD_OK);
    CHECK_ST(rs[i].st, MYRIAD_EFDCLOSED);
  }

  /* Release: the same descriptor comes back, open and non-blocking; the handle is gone. */
  CHECK_ST(myriad_fd_native(b, &native), MYRIAD_OK);
  released = -1;
  CHECK_ST(myriad_fd_release(b, &released), MYRIAD_OK);
  CHECK(released == native);
  CHECK(fd_is_open(released));
  CHECK((fcntl(released, F_GETFL) & O_NONBLOCK) != 0);
  int again = 5;
  CHECK_ST(myriad_fd_release(b, &again), MYRIAD_EBADHANDLE);
  CHECK(again == -1);
  CHECK_ST(myriad_fd_native(b, &native), MYRIAD_EBADHANDLE);
  /* It can be adopted again. */
  CHECK_ST(myriad_fd_adopt(rt, released, &b), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(b), MYRIAD_OK);
  CHECK(!fd_is_open(released));
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- Foreign threads, end of file, errno ------------------------------------------------------- */

struct later_write {
  myriad_fd fd;
};

static void write_later(void* arg) {
  struct later_write* l = arg;
  CHECK_ST(myriad_sleep_ns(5 * MS), MYRIAD_OK);
  size_t n = 0;
  CHECK_ST(myriad_fd_write_all(l->fd, "hello", 5, kNoCtx, &n, NULL), MYRIAD_OK);
  CHECK(n == 5);
}

struct refused_arg {
  uint16_t port;
};

static void connect_refused(void* arg) {
  struct refused_arg* r = arg;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(s >= 0);
  myriad_fd fd;
  REQUIRE(myriad_fd_adopt((myriad_runtime){0}, s, &fd) == MYRIAD_OK); /* the task's runtime */
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(r->port);
  REQUIRE(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr) == 1);
  int err = 0;
  CHECK_ST(myriad_fd_connect(fd, (struct sockaddr*)&sa, sizeof sa, kNoCtx, &err), MYRIAD_EIO);
  CHECK(err == ECONNREFUSED);
  CHECK_ST(myriad_fd_close(fd), MYRIAD_OK);
  myriad_fd c = {3};
  CHECK_ST(myriad_tcp_connect((myriad_runtime){0}, "127.0.0.1", r->port, kNoCtx, &c), MYRIAD_EIO);
  CHECK(c.bits == 0);
}

static void test_foreign_eof_errno(void) {
  myriad_runtime rt = make_runtime(2, MYRIAD_POLLER_AUTO);
  myriad_fd a, b;
  make_pair(rt, &a, &b);
  /* A foreign thread's read sleeps until a task writes. */
  struct later_write l = {b};
  myriad_task t = spawn(rt, write_later, &l, "write_later");
  char buf[16];
  size_t n = 0;
  CHECK_ST(myriad_fd_read_full(a, buf, 5, kNoCtx, &n, NULL), MYRIAD_OK);
  CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  /* End of file: read_full returns what there was; read returns 0. */
  CHECK_ST(myriad_fd_write_all(b, "abc", 3, kNoCtx, NULL, NULL), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(b), MYRIAD_OK);
  CHECK_ST(myriad_fd_read_full(a, buf, sizeof buf, kNoCtx, &n, NULL), MYRIAD_OK);
  CHECK(n == 3 && memcmp(buf, "abc", 3) == 0);
  n = 9;
  CHECK_ST(myriad_fd_read(a, buf, sizeof buf, kNoCtx, &n, NULL), MYRIAD_OK);
  CHECK(n == 0);
  /* send to a peer that is gone: EPIPE through errno_out, no SIGPIPE. */
  int err = 0;
  CHECK_ST(myriad_fd_send(a, "x", 1, 0, kNoCtx, &n, &err), MYRIAD_EIO);
  CHECK(err == EPIPE);
  CHECK(n == 0);
  /* write and writev too: on a stream socket they never raise SIGPIPE either. */
  err = 0;
  CHECK_ST(myriad_fd_write(a, "x", 1, kNoCtx, &n, &err), MYRIAD_EIO);
  CHECK(err == EPIPE);
  struct iovec one = {"y", 1};
  err = 0;
  CHECK_ST(myriad_fd_writev(a, &one, 1, kNoCtx, &n, &err), MYRIAD_EIO);
  CHECK(err == EPIPE);
  /* A successful call reports errno 0. */
  CHECK_ST(myriad_fd_close(a), MYRIAD_OK);
  make_pair(rt, &a, &b);
  err = -1;
  CHECK_ST(myriad_fd_send(a, "x", 1, 0, kNoCtx, &n, &err), MYRIAD_OK);
  CHECK(err == 0 && n == 1);
  CHECK_ST(myriad_fd_recv(b, buf, 1, MSG_PEEK, kNoCtx, &n, &err), MYRIAD_OK);
  CHECK(n == 1 && buf[0] == 'x');
  CHECK_ST(myriad_fd_recv(b, buf, 1, 0, kNoCtx, &n, &err), MYRIAD_OK);
  /* local_port of something that is not TCP/IP. */
  uint16_t port = 1;
  CHECK_ST(myriad_fd_local_port(a, &port), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_close(a), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(b), MYRIAD_OK);

  /* Connection refused: a port whose listener is closed. */
  myriad_fd ln;
  REQUIRE(myriad_tcp_listen(rt, "127.0.0.1", 0, 1, &ln) == MYRIAD_OK);
  struct refused_arg ra = {0};
  CHECK_ST(myriad_fd_local_port(ln, &ra.port), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(ln), MYRIAD_OK);
  t = spawn(rt, connect_refused, &ra, "connect_refused");
  CHECK_ST(myriad_join(t), MYRIAD_OK);
  connect_refused(&ra); /* and from a foreign thread (rt zero: the oldest runtime) */

  /* Listening on every address, connecting to the loopback (host NULL). */
  REQUIRE(myriad_tcp_listen(rt, NULL, 0, 0, &ln) == MYRIAD_OK);
  CHECK_ST(myriad_fd_local_port(ln, &port), MYRIAD_OK);
  myriad_fd c;
  CHECK_ST(myriad_tcp_connect(rt, NULL, port, kNoCtx, &c), MYRIAD_OK);
  myriad_fd s;
  CHECK_ST(myriad_fd_accept(ln, &s, NULL, NULL, kNoCtx, NULL), MYRIAD_OK);
  CHECK_ST(myriad_fd_write_all(c, "ping", 4, kNoCtx, NULL, NULL), MYRIAD_OK);
  CHECK_ST(myriad_fd_read_full(s, buf, 4, kNoCtx, &n, NULL), MYRIAD_OK);
  CHECK(n == 4 && memcmp(buf, "ping", 4) == 0);
  CHECK_ST(myriad_fd_close(s), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(c), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(ln), MYRIAD_OK);
  /* A port that is taken (SO_REUSEADDR does not allow two listeners). */
  REQUIRE(myriad_tcp_listen(rt, "127.0.0.1", 0, 0, &ln) == MYRIAD_OK);
  CHECK_ST(myriad_fd_local_port(ln, &port), MYRIAD_OK);
  myriad_fd ln2 = {8};
  CHECK_ST(myriad_tcp_listen(rt, "127.0.0.1", port, 0, &ln2), MYRIAD_EIO);
  CHECK(ln2.bits == 0);
  CHECK_ST(myriad_fd_close(ln), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

/* ---- Descriptors outliving their runtime, pollers ---------------------------------------------- */

static void test_runtime_gone_and_pollers(void) {
  myriad_runtime rt = make_runtime(1, MYRIAD_POLLER_AUTO);
  myriad_fd a, b;
  make_pair(rt, &a, &b);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
  /* Calls that need no wait still work; one that would wait fails; close works. */
  size_t n = 0;
  CHECK_ST(myriad_fd_write(b, "z", 1, kNoCtx, &n, NULL), MYRIAD_OK);
  char c = 0;
  CHECK_ST(myriad_fd_read(a, &c, 1, kNoCtx, &n, NULL), MYRIAD_OK);
  CHECK(n == 1 && c == 'z');
  CHECK_ST(myriad_fd_read(a, &c, 1, kNoCtx, &n, NULL), MYRIAD_ECLOSED);
  CHECK_ST(myriad_fd_close(a), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(b), MYRIAD_OK);
  /* Adopting into a destroyed runtime: a bad handle, and the descriptor is closed anyway. */
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  CHECK_ST(myriad_fd_adopt(rt, sv[0], &a), MYRIAD_EBADHANDLE);
  CHECK(a.bits == 0);
  CHECK(!fd_is_open(sv[0]));
  close(sv[1]);

  /* A forced epoll: a regular file cannot be watched (MYRIAD_EIO, and it is closed). */
  rt = make_runtime(1, MYRIAD_POLLER_EPOLL);
  char path[] = "/tmp/capi_io_XXXXXX";
  int f = mkstemp(path);
  REQUIRE(f >= 0);
  unlink(path);
  CHECK_ST(myriad_fd_adopt(rt, f, &a), MYRIAD_EIO);
  CHECK(!fd_is_open(f));
  myriad_poller_kind kind = MYRIAD_POLLER_AUTO;
  CHECK_ST(myriad_runtime_poller(rt, &kind), MYRIAD_OK);
  CHECK(kind == MYRIAD_POLLER_EPOLL); /* started by the attempt */
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);

  CHECK(strcmp(myriad_poller_name(MYRIAD_POLLER_AUTO), "automatic") == 0);
  CHECK(strcmp(myriad_poller_name(MYRIAD_POLLER_EPOLL), "epoll") == 0);
  CHECK(strcmp(myriad_poller_name(MYRIAD_POLLER_IO_URING), "io_uring") == 0);
  CHECK(strcmp(myriad_poller_name(3), "?") == 0);
  CHECK(strcmp(myriad_poller_name(-1), "?") == 0);
}

/* ---- Bad handles and NULL arguments ------------------------------------------------------------ */

static void test_errors(void) {
  myriad_runtime rt = make_runtime(1, MYRIAD_POLLER_AUTO);
  myriad_fd a, b, closed, closed_peer;
  make_pair(rt, &a, &b);
  make_pair(rt, &closed, &closed_peer);
  CHECK_ST(myriad_fd_close(closed_peer), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(closed), MYRIAD_OK);
  /* A stale handle, zero, generation 0, the next generation of a live slot, all ones. */
  myriad_fd bad[] = {closed, {0}, {1}, {a.bits + ((uint64_t)1 << 32)}, {UINT64_MAX}};
  char buf[4];
  struct iovec iov = {buf, sizeof buf};
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    myriad_fd fd = bad[i], out = {9};
    int native = 5, err = 5;
    size_t n = 5;
    uint16_t port = 5;
    CHECK_ST(myriad_fd_close(fd), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_release(fd, &native), MYRIAD_EBADHANDLE);
    CHECK(native == -1);
    native = 5;
    CHECK_ST(myriad_fd_native(fd, &native), MYRIAD_EBADHANDLE);
    CHECK(native == -1);
    CHECK_ST(myriad_fd_set_read_deadline(fd, 0), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_set_write_deadline(fd, 0), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_set_deadline(fd, 0), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_read(fd, buf, 1, kNoCtx, &n, &err), MYRIAD_EBADHANDLE);
    CHECK(n == 0 && err == 0);
    CHECK_ST(myriad_fd_readv(fd, &iov, 1, kNoCtx, &n, &err), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_recv(fd, buf, 1, 0, kNoCtx, &n, &err), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_write(fd, buf, 1, kNoCtx, &n, &err), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_writev(fd, &iov, 1, kNoCtx, &n, &err), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_send(fd, buf, 1, 0, kNoCtx, &n, &err), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_read_full(fd, buf, 1, kNoCtx, &n, &err), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_write_all(fd, buf, 1, kNoCtx, &n, &err), MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_accept(fd, &out, NULL, NULL, kNoCtx, &err), MYRIAD_EBADHANDLE);
    CHECK(out.bits == 0);
    CHECK_ST(myriad_fd_connect(fd, (struct sockaddr*)&sa, sizeof sa, kNoCtx, &err),
             MYRIAD_EBADHANDLE);
    CHECK_ST(myriad_fd_local_port(fd, &port), MYRIAD_EBADHANDLE);
    CHECK(port == 0);
  }
  /* NULL arguments. */
  size_t n = 0;
  CHECK_ST(myriad_fd_read(a, NULL, 1, kNoCtx, &n, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_recv(a, NULL, 1, 0, kNoCtx, &n, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_write(a, NULL, 1, kNoCtx, &n, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_send(a, NULL, 1, 0, kNoCtx, &n, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_read_full(a, NULL, 1, kNoCtx, &n, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_write_all(a, NULL, 1, kNoCtx, &n, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_readv(a, NULL, 1, kNoCtx, &n, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_writev(a, NULL, 1, kNoCtx, &n, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_readv(a, &iov, -1, kNoCtx, &n, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_accept(a, NULL, NULL, NULL, kNoCtx, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_connect(a, NULL, 0, kNoCtx, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_native(a, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_release(a, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_fd_local_port(a, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_runtime_poller(rt, NULL), MYRIAD_EINVAL);
  myriad_poller_kind kind;
  CHECK_ST(myriad_runtime_poller((myriad_runtime){0}, &kind), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_tcp_listen(rt, "127.0.0.1", 0, 0, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_tcp_connect(rt, "127.0.0.1", 1, kNoCtx, NULL), MYRIAD_EINVAL);
  myriad_fd other = {6};
  CHECK_ST(myriad_tcp_listen((myriad_runtime){UINT64_MAX}, "127.0.0.1", 0, 0, &other),
           MYRIAD_EBADHANDLE);
  CHECK(other.bits == 0);
  /* Zero-length transfers are fine with NULL buffers; n_out and errno_out may be NULL. */
  CHECK_ST(myriad_fd_write(a, NULL, 0, kNoCtx, NULL, NULL), MYRIAD_OK);
  /* adopt: a negative descriptor, a NULL out (the descriptor is closed all the same). */
  other.bits = 6;
  CHECK_ST(myriad_fd_adopt(rt, -1, &other), MYRIAD_EINVAL);
  CHECK(other.bits == 0);
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  CHECK_ST(myriad_fd_adopt(rt, sv[0], NULL), MYRIAD_EINVAL);
  CHECK(!fd_is_open(sv[0]));
  close(sv[1]);
  /* A descriptor number that is not open. */
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  close(sv[0]);
  myriad_fd none = {4};
  CHECK_ST(myriad_fd_adopt(rt, sv[0], &none), MYRIAD_EIO);
  CHECK(none.bits == 0);
  close(sv[1]);
  /* Status texts of the new codes. */
  for (int s = MYRIAD_EIO; s <= MYRIAD_ENOTSUP; ++s)
    CHECK(strcmp(myriad_strerror(s), myriad_strerror(-1)) != 0);
  CHECK_ST(myriad_fd_close(a), MYRIAD_OK);
  CHECK_ST(myriad_fd_close(b), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
}

int main(void) {
  run_echo(MYRIAD_POLLER_EPOLL);
  run_echo(MYRIAD_POLLER_IO_URING);
  run_echo(MYRIAD_POLLER_AUTO);
  test_deadlines();
  test_contexts();
  test_close_while_blocked();
  test_foreign_eof_errno();
  test_runtime_gone_and_pollers();
  test_errors();
  return CHECK_SUMMARY();
}
