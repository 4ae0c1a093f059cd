/* Batch compute kernels through the C ABI: bf16, fp32, s8s8 and u8s8 GEMMs against a naive
 * double-precision reference computed here, on every path the machine supports forced in turn
 * (a path it cannot run must be refused with MYRIAD_ENOTSUP, in agreement with
 * myriad_kernels_best_isa); trans_b, padded leading dimensions and batch strides, a B shared by
 * the batch, K = 0, alpha/beta (C outside the m×n blocks must stay untouched); prepacked B
 * (reuse with new A and C, other m and alpha/beta, info, destroy, geometry and type
 * mismatches); the batched vector operations; bf16 rounding; runs on a runtime given in
 * myriad_exec from a foreign thread and from tasks; and bad input (NULL pointers, ld < width,
 * extents past 2^62, bad size fields, bad enum values, bad handles) returning the documented
 * codes without writing anything. */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>

#include "check.h"
#include "myriad.h"

/* ---- Helpers --------------------------------------------------------------------------------- */

/* Shared by the tasks of test_runtimes, so atomic: a counter mixed by splitmix64's finalizer. */
static _Atomic uint64_t g_rng;
static uint32_t rnd(void) {
  uint64_t z = atomic_fetch_add_explicit(&g_rng, 0x9e3779b97f4a7c15ull, memory_order_relaxed);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (uint32_t)((z ^ (z >> 31)) >> 16);
}
/* Uniform in [lo, hi]. */
static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
static float rnd_float(float lo, float hi) {
  return lo + (hi - lo) * (float)(rnd() & 0xffffff) / (float)0xffffff;
}

static uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
static float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static bool is_nan(float f) { return f != f; }
static double dabs(double x) { return x < 0 ? -x : x; }

static void* xmalloc(size_t bytes) {
  void* p = malloc(bytes ? bytes : 1);
  REQUIRE(p != NULL);
  return p;
}

static const myriad_gemm_type kTypes[] = {MYRIAD_GEMM_BF16_F32, MYRIAD_GEMM_F32_F32,
                                          MYRIAD_GEMM_S8S8_S32, MYRIAD_GEMM_U8S8_S32};
static const char* type_name(myriad_gemm_type t) {
  switch (t) {
    case MYRIAD_GEMM_BF16_F32: return "bf16";
    case MYRIAD_GEMM_F32_F32: return "f32";
    case MYRIAD_GEMM_S8S8_S32: return "s8s8";
    case MYRIAD_GEMM_U8S8_S32: return "u8s8";
  }
  return "?";
}
static size_t elem_size(myriad_gemm_type t) {
  return t == MYRIAD_GEMM_F32_F32 ? 4 : t == MYRIAD_GEMM_BF16_F32 ? 2 : 1;
}
static bool is_int(myriad_gemm_type t) {
  return t == MYRIAD_GEMM_S8S8_S32 || t == MYRIAD_GEMM_U8S8_S32;
}

/* ---- GEMM against a naive reference ---------------------------------------------------------- */

typedef struct gcase {
  size_t batch, m, n, k;
  int trans_b;
  int padded;  /* leading dimensions and batch strides larger than dense */
  int share_b; /* stride_b = 0 */
  float alpha, beta;
} gcase;

static const gcase kCases[] = {
    {1, 1, 1, 1, 0, 0, 0, 1.0f, 0.0f},
    {3, 5, 19, 33, 0, 1, 0, 1.0f, 0.0f},
    {3, 5, 19, 33, 1, 1, 0, 2.0f, -3.0f},
    {4, 17, 33, 8, 1, 1, 1, 1.0f, 1.0f},
    {2, 16, 16, 64, 0, 0, 0, 1.0f, 1.0f},
    {2, 7, 40, 0, 0, 1, 0, 1.0f, -3.0f}, /* K = 0: C = beta·C */
    {3, 9, 20, 31, 0, 0, 1, -1.0f, 0.0f},
    {16, 64, 64, 64, 0, 0, 0, 1.0f, 0.0f}, /* enough work to split into tasks */
};

static myriad_gemm make_gemm(const gcase* gc) {
  myriad_gemm g;
  REQUIRE(myriad_gemm_init(&g, sizeof g) == MYRIAD_OK);
  g.batch = gc->batch;
  g.m = gc->m;
  g.n = gc->n;
  g.k = gc->k;
  g.trans_b = gc->trans_b;
  g.alpha = gc->alpha;
  g.beta = gc->beta;
  if (gc->padded) {
    g.lda = g.k + 3;
    g.ldb = (g.trans_b ? g.k : g.n) + 5;
    g.ldc = g.n + 2;
    g.stride_a = g.m * g.lda + 7;
    g.stride_b = (g.trans_b ? g.n : g.k) * g.ldb + 3;
    g.stride_c = g.m * g.ldc + 11;
  } else {
    REQUIRE(myriad_gemm_set_dense(&g) == MYRIAD_OK);
  }
  if (gc->share_b) g.stride_b = 0;
  return g;
}

/* Elements an operand spans: (items - 1)·stride + rows·ld. */
static size_t span(size_t items, size_t stride, size_t rows, size_t ld) {
  if (items == 0 || rows == 0) return 0;
  return (items - 1) * stride + rows * ld;
}

typedef struct gbufs {
  myriad_gemm_type type;
  size_t na, nb, nc; /* elements */
  void* a;
  void* b;
  void* c;
  void* c0; /* C before the call */
} gbufs;

static void fill_operand(myriad_gemm_type t, bool is_a, void* p, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    switch (t) {
      case MYRIAD_GEMM_BF16_F32:
        ((uint16_t*)p)[i] = myriad_bf16_from_float(rnd_float(-2.0f, 2.0f));
        break;
      case MYRIAD_GEMM_F32_F32: ((float*)p)[i] = rnd_float(-2.0f, 2.0f); break;
      case MYRIAD_GEMM_S8S8_S32: ((int8_t*)p)[i] = (int8_t)rnd_int(-128, 127); break;
      case MYRIAD_GEMM_U8S8_S32:
        if (is_a)
          ((uint8_t*)p)[i] = (uint8_t)rnd_int(0, 255);
        else
          ((int8_t*)p)[i] = (int8_t)rnd_int(-128, 127);
        break;
    }
  }
}

static void fill_c(gbufs* bu) {
  for (size_t i = 0; i < bu->nc; ++i) {
    if (is_int(bu->type))
      ((int32_t*)bu->c)[i] = rnd_int(-1000, 1000);
    else
      ((float*)bu->c)[i] = rnd_float(-1.0f, 1.0f);
  }
  memcpy(bu->c0, bu->c, bu->nc * 4);
}

static gbufs make_bufs(const myriad_gemm* g, myriad_gemm_type t) {
  gbufs bu;
  bu.type = t;
  const size_t b_items = g->stride_b == 0 ? 1 : g->batch;
  bu.na = span(g->batch, g->stride_a, g->m, g->lda) + 1;
  bu.nb = span(b_items, g->stride_b, g->trans_b ? g->n : g->k, g->ldb) + 1;
  bu.nc = span(g->batch, g->stride_c, g->m, g->ldc) + 1;
  bu.a = xmalloc(bu.na * elem_size(t));
  bu.b = xmalloc(bu.nb * elem_size(t));
  bu.c = xmalloc(bu.nc * 4);
  bu.c0 = xmalloc(bu.nc * 4);
  fill_operand(t, true, bu.a, bu.na);
  fill_operand(t, false, bu.b, bu.nb);
  fill_c(&bu);
  return bu;
}

static void free_bufs(gbufs* bu) {
  free(bu->a);
  free(bu->b);
  free(bu->c);
  free(bu->c0);
}

static double get_elem(myriad_gemm_type t, bool is_a, const void* p, size_t i) {
  switch (t) {
    case MYRIAD_GEMM_BF16_F32: return myriad_bf16_to_float(((const uint16_t*)p)[i]);
    case MYRIAD_GEMM_F32_F32: return ((const float*)p)[i];
    case MYRIAD_GEMM_S8S8_S32: return ((const int8_t*)p)[i];
    case MYRIAD_GEMM_U8S8_S32:
      return is_a ? (double)((const uint8_t*)p)[i] : (double)((const int8_t*)p)[i];
  }
  return 0;
}

/* Compares C with the reference from A, B and C0: every element of every item's m×n block,
 * and every element outside the blocks must be unchanged. Reports the first mismatch. */
static void verify(const myriad_gemm* g, const gbufs* bu, const char* what, int line) {
  const myriad_gemm_type t = bu->type;
  bool* inside = calloc(bu->nc, 1);
  REQUIRE(inside != NULL);
  size_t bad = 0;
  for (size_t it = 0; it < g->batch; ++it) {
    const size_t bi = g->stride_b == 0 ? 0 : it;
    for (size_t i = 0; i < g->m; ++i) {
      for (size_t j = 0; j < g->n; ++j) {
        double acc = 0, absacc = 0;
        for (size_t p = 0; p < g->k; ++p) {
          const double x = get_elem(t, true, bu->a, it * g->stride_a + i * g->lda + p);
          const size_t bidx = bi * g->stride_b + (g->trans_b ? j * g->ldb + p : p * g->ldb + j);
          const double y = get_elem(t, false, bu->b, bidx);
          acc += x * y;
          absacc += dabs(x * y);
        }
        const size_t ci = it * g->stride_c + i * g->ldc + j;
        inside[ci] = true;
        bool ok;
        double want, got;
        if (is_int(t)) {
          /* The test's alpha and beta are integers: the reference is exact in double. */
          const double c0 = ((const int32_t*)bu->c0)[ci];
          want = (double)g->alpha * acc + (g->beta != 0 ? (double)g->beta * c0 : 0.0);
          got = ((const int32_t*)bu->c)[ci];
          ok = got == want;
        } else {
          const double c0 = ((const float*)bu->c0)[ci];
          const double bc = g->beta != 0 ? (double)g->beta * c0 : 0.0;
          want = (double)g->alpha * acc + bc;
          got = ((const float*)bu->c)[ci];
          const double tol = (double)(g->k + 4) * (1.0 / 8388608.0) *
                                 (dabs((double)g->alpha) * absacc + dabs(bc)) +
                             1e-30;
          ok = dabs(got - want) <= tol;
        }
        if (!ok && bad++ == 0)
          fprintf(stderr,
                  "line %d: %s %s (isa %s): C[item %zu][%zu][%zu] = %.9g, reference %.9g "
                  "(batch %zu m %zu n %zu k %zu trans_b %d alpha %g beta %g)\n",
                  line, what, type_name(t), myriad_kernels_isa_name(myriad_kernels_isa()), it, i,
                  j, got, want, g->batch, g->m, g->n, g->k, (int)g->trans_b, (double)g->alpha,
                  (double)g->beta);
      }
    }
  }
  size_t touched = 0;
  for (size_t ci = 0; ci < bu->nc; ++ci)
    if (!inside[ci] && memcmp((const char*)bu->c + 4 * ci, (const char*)bu->c0 + 4 * ci, 4) != 0)
      ++touched;
  if (touched)
    fprintf(stderr, "line %d: %s %s: %zu elements of C outside the m×n blocks were written\n",
            line, what, type_name(t), touched);
  if (bad) fprintf(stderr, "line %d: %s %s: %zu elements differ\n", line, what, type_name(t), bad);
  CHECK(bad == 0 && "GEMM result differs from the double-precision reference");
  CHECK(touched == 0 && "GEMM wrote C outside its m×n blocks");
  free(inside);
}

static myriad_status call_gemm(const myriad_gemm* g, const gbufs* bu, const myriad_exec* ex) {
  switch (bu->type) {
    case MYRIAD_GEMM_BF16_F32: return myriad_gemm_bf16(g, bu->a, bu->b, bu->c, ex);
    case MYRIAD_GEMM_F32_F32: return myriad_gemm_f32(g, bu->a, bu->b, bu->c, ex);
    case MYRIAD_GEMM_S8S8_S32: return myriad_gemm_s8s8(g, bu->a, bu->b, bu->c, ex);
    case MYRIAD_GEMM_U8S8_S32: return myriad_gemm_u8s8(g, bu->a, bu->b, bu->c, ex);
  }
  return MYRIAD_EINVAL;
}

/* One GEMM of one type and case, plain (B as it is), with the given exec. */
static void run_case(const gcase* gc, myriad_gemm_type t, const myriad_exec* ex, int line) {
  myriad_gemm g = make_gemm(gc);
  gbufs bu = make_bufs(&g, t);
  CHECK_ST(call_gemm(&g, &bu, ex), MYRIAD_OK);
  verify(&g, &bu, "gemm", line);
  free_bufs(&bu);
}

/* Prepacked B: pack, multiply, then reuse the pack with new A and C, fewer rows and another
 * alpha/beta; info; destroy. */
static void run_packed_case(const gcase* gc, myriad_gemm_type t, const myriad_exec* ex,
                            int line) {
  myriad_gemm g = make_gemm(gc);
  gbufs bu = make_bufs(&g, t);
  myriad_packed_b pb = {0};
  CHECK_ST(myriad_pack_b(&g, t, bu.b, &pb), MYRIAD_OK);
  REQUIRE(pb.bits != 0);
  /* The pack is a copy: overwrite the caller's B during the call (restored for the
   * reference afterwards). */
  void* b_saved = xmalloc(bu.nb * elem_size(t));
  memcpy(b_saved, bu.b, bu.nb * elem_size(t));
  memset(bu.b, 0x5a, bu.nb * elem_size(t));
  CHECK_ST(myriad_gemm_packed(&g, t, bu.a, pb, bu.c, ex), MYRIAD_OK);
  memcpy(bu.b, b_saved, bu.nb * elem_size(t));
  free(b_saved);
  verify(&g, &bu, "packed", line);

  /* Reuse: new A and C, fewer rows, other alpha/beta, a different lda. */
  myriad_gemm g2 = g;
  if (g2.m > 1) g2.m -= 1;
  g2.alpha = 2.0f;
  g2.beta = 1.0f;
  fill_operand(t, true, bu.a, bu.na);
  fill_c(&bu);
  CHECK_ST(myriad_gemm_packed(&g2, t, bu.a, pb, bu.c, ex), MYRIAD_OK);
  verify(&g2, &bu, "packed reuse", line);

  myriad_gemm_type pt = (myriad_gemm_type)-1;
  size_t pk = 0, pn = 0, items = 0, bytes = 0;
  CHECK_ST(myriad_packed_b_info(pb, &pt, &pk, &pn, &items, &bytes), MYRIAD_OK);
  CHECK(pt == t && pk == g.k && pn == g.n && "packed_b_info reports the geometry");
  CHECK(items == (g.stride_b == 0 || g.batch == 1 ? 1 : g.batch) && bytes > 0);
  CHECK_ST(myriad_packed_b_info(pb, NULL, NULL, NULL, NULL, NULL), MYRIAD_OK);

  CHECK_ST(myriad_packed_b_destroy(pb), MYRIAD_OK);
  CHECK_ST(myriad_packed_b_destroy(pb), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_gemm_packed(&g, t, bu.a, pb, bu.c, ex), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_packed_b_info(pb, &pt, NULL, NULL, NULL, NULL), MYRIAD_EBADHANDLE);
  free_bufs(&bu);
}

/* ---- Vector operations ----------------------------------------------------------------------- */

static void test_vector_ops(const myriad_exec* ex, int line) {
  const size_t count = 37, n = 53, sx = 61, sy = 70;
  float* x = xmalloc((count * sx + 1) * sizeof(float));
  float* y = xmalloc((count * sy + 1) * sizeof(float));
  float* y0 = xmalloc((count * sy + 1) * sizeof(float));
  float* out = xmalloc((count + 1) * sizeof(float));
  for (size_t i = 0; i < count * sx + 1; ++i) x[i] = rnd_float(-3.0f, 3.0f);
  for (size_t i = 0; i < count * sy + 1; ++i) y[i] = rnd_float(-3.0f, 3.0f);
  memcpy(y0, y, (count * sy + 1) * sizeof(float));
  size_t bad = 0;

  /* dot */
  out[count] = 42.0f;
  CHECK_ST(myriad_dot(count, n, x, sx, y, sy, out, ex), MYRIAD_OK);
  for (size_t i = 0; i < count; ++i) {
    double want = 0, mag = 0;
    for (size_t j = 0; j < n; ++j) {
      want += (double)x[i * sx + j] * y[i * sy + j];
      mag += dabs((double)x[i * sx + j] * y[i * sy + j]);
    }
    if (dabs(out[i] - want) > (double)(n + 4) / 8388608.0 * mag + 1e-30) {
      if (bad++ == 0)
        fprintf(stderr, "line %d: dot[%zu] = %.9g, reference %.9g\n", line, i, (double)out[i],
                want);
    }
  }
  CHECK(out[count] == 42.0f && "dot wrote past count");

  /* row_sum */
  CHECK_ST(myriad_row_sum(count, n, x, sx, out, ex), MYRIAD_OK);
  for (size_t i = 0; i < count; ++i) {
    double want = 0, mag = 0;
    for (size_t j = 0; j < n; ++j) {
      want += x[i * sx + j];
      mag += dabs(x[i * sx + j]);
    }
    if (dabs(out[i] - want) > (double)(n + 4) / 8388608.0 * mag + 1e-30) {
      if (bad++ == 0)
        fprintf(stderr, "line %d: row_sum[%zu] = %.9g, reference %.9g\n", line, i,
                (double)out[i], want);
    }
  }

  /* row_max, with a NaN in one row */
  x[5 * sx + 7] = bits_float(0x7fc00000u);
  CHECK_ST(myriad_row_max(count, n, x, sx, out, ex), MYRIAD_OK);
  for (size_t i = 0; i < count; ++i) {
    float want = x[i * sx];
    for (size_t j = 1; j < n; ++j)
      if (x[i * sx + j] > want) want = x[i * sx + j];
    const bool ok = i == 5 ? is_nan(out[i]) : out[i] == want;
    if (!ok && bad++ == 0)
      fprintf(stderr, "line %d: row_max[%zu] = %.9g, reference %.9g\n", line, i,
              (double)out[i], i == 5 ? 0.0 / 0.0 : (double)want);
  }
  x[5 * sx + 7] = 1.0f;

  /* axpy: y_i += alpha·x_i; elements between the vectors stay as they were */
  const float alpha = -1.5f;
  CHECK_ST(myriad_axpy(count, n, alpha, x, sx, y, sy, ex), MYRIAD_OK);
  for (size_t i = 0; i < count * sy + 1; ++i) {
    const size_t v = i / sy, j = i % sy;
    const bool in = v < count && j < n;
    const double want = in ? (double)y0[i] + (double)alpha * x[v * sx + j] : y0[i];
    const double tol = in ? 2.0 / 8388608.0 * (dabs(y0[i]) + dabs(alpha * x[v * sx + j])) : 0.0;
    if (dabs(y[i] - want) > tol && bad++ == 0)
      fprintf(stderr, "line %d: axpy y[%zu] = %.9g, reference %.9g\n", line, i, (double)y[i],
              want);
  }
  CHECK(bad == 0 && "vector operations differ from the double-precision reference");

  /* n == 0: sums are 0, max is -Inf; count == 0: nothing is touched (NULL allowed). */
  CHECK_ST(myriad_row_sum(3, 0, NULL, 0, out, ex), MYRIAD_OK);
  CHECK(out[0] == 0.0f && out[2] == 0.0f && "row_sum of empty rows is 0");
  CHECK_ST(myriad_row_max(3, 0, NULL, 0, out, ex), MYRIAD_OK);
  CHECK(out[0] < -3.4e38f && out[0] * 0.5f == out[0] && "row_max of empty rows is -Inf");
  CHECK_ST(myriad_dot(3, 0, NULL, 0, NULL, 0, out, ex), MYRIAD_OK);
  CHECK(out[1] == 0.0f && "dot of empty vectors is 0");
  CHECK_ST(myriad_dot(0, 10, NULL, 10, NULL, 10, NULL, ex), MYRIAD_OK);
  CHECK_ST(myriad_axpy(0, 10, 1.0f, NULL, 10, NULL, 10, ex), MYRIAD_OK);
  CHECK_ST(myriad_row_sum(0, 10, NULL, 10, NULL, ex), MYRIAD_OK);
  CHECK_ST(myriad_row_max(0, 10, NULL, 10, NULL, ex), MYRIAD_OK);
  free(x);
  free(y);
  free(y0);
  free(out);
}

/* ---- Paths ----------------------------------------------------------------------------------- */

static void test_every_isa(void) {
  const myriad_isa best = myriad_kernels_best_isa();
  REQUIRE(best >= MYRIAD_ISA_PORTABLE && best <= MYRIAD_ISA_AMX);
  const myriad_isa first = myriad_kernels_isa();
  CHECK(first >= MYRIAD_ISA_PORTABLE && first <= best && "the active path is one the machine has");
  printf("best isa: %s, active at start: %s\n", myriad_kernels_isa_name(best),
         myriad_kernels_isa_name(first));

  CHECK(strcmp(myriad_kernels_isa_name(MYRIAD_ISA_PORTABLE), "portable") == 0);
  CHECK(strcmp(myriad_kernels_isa_name(MYRIAD_ISA_AVX2), "avx2") == 0);
  CHECK(strcmp(myriad_kernels_isa_name(MYRIAD_ISA_AVX512), "avx512") == 0);
  CHECK(strcmp(myriad_kernels_isa_name(MYRIAD_ISA_AMX), "amx") == 0);
  CHECK(strcmp(myriad_kernels_isa_name(-1), "?") == 0);
  CHECK(strcmp(myriad_kernels_isa_name(4), "?") == 0);

  CHECK_ST(myriad_kernels_set_isa((myriad_isa)-1), MYRIAD_EINVAL);
  CHECK_ST(myriad_kernels_set_isa((myriad_isa)4), MYRIAD_EINVAL);
  CHECK(myriad_kernels_isa() == first && "a refused set_isa changes nothing");

  myriad_exec serial;
  REQUIRE(myriad_exec_init(&serial, sizeof serial) == MYRIAD_OK);
  serial.serial = 1;

  for (int isa = MYRIAD_ISA_PORTABLE; isa <= MYRIAD_ISA_AMX; ++isa) {
    const myriad_isa before = myriad_kernels_isa();
    const myriad_status st = myriad_kernels_set_isa((myriad_isa)isa);
    CHECK((st == MYRIAD_OK || st == MYRIAD_ENOTSUP) && "set_isa: OK or not supported");
    CHECK((st == MYRIAD_OK) == (isa <= (int)best) &&
          "set_isa succeeds exactly for the paths up to best_isa");
    if (st != MYRIAD_OK) {
      CHECK(myriad_kernels_isa() == before && "a refused path leaves the active one");
      printf("isa %s: not supported here (%s)\n", myriad_kernels_isa_name(isa),
             myriad_strerror(st));
      continue;
    }
    CHECK(myriad_kernels_isa() == (myriad_isa)isa && "set_isa makes the path active");
    printf("isa %s: testing\n", myriad_kernels_isa_name(isa));
    for (size_t c = 0; c < sizeof kCases / sizeof kCases[0]; ++c)
      for (size_t t = 0; t < 4; ++t) {
        run_case(&kCases[c], kTypes[t], NULL, __LINE__);
        run_case(&kCases[c], kTypes[t], &serial, __LINE__);
      }
    for (size_t t = 0; t < 4; ++t) {
      run_packed_case(&kCases[2], kTypes[t], NULL, __LINE__);
      run_packed_case(&kCases[3], kTypes[t], &serial, __LINE__);
      run_packed_case(&kCases[7], kTypes[t], NULL, __LINE__);
    }
    test_vector_ops(NULL, __LINE__);
    test_vector_ops(&serial, __LINE__);
  }
  myriad_kernels_reset_isa();
  CHECK(myriad_kernels_isa() == best && "reset_isa returns to best_isa");
}

/* ---- bf16 conversions ----------------------------------------------------------------------- */

static void test_bf16(void) {
  CHECK(myriad_bf16_from_float(1.0f) == 0x3f80);
  CHECK(myriad_bf16_from_float(-2.0f) == 0xc000);
  CHECK(myriad_bf16_from_float(0.0f) == 0x0000);
  CHECK(myriad_bf16_from_float(-0.0f) == 0x8000 && "-0 keeps its sign");
  CHECK(myriad_bf16_from_float(bits_float(0x3f808000u)) == 0x3f80 && "tie rounds to even (down)");
  CHECK(myriad_bf16_from_float(bits_float(0x3f818000u)) == 0x3f82 && "tie rounds to even (up)");
  CHECK(myriad_bf16_from_float(bits_float(0x3f808001u)) == 0x3f81 && "above the tie rounds up");
  CHECK(myriad_bf16_from_float(bits_float(0x3f807fffu)) == 0x3f80 && "below the tie rounds down");
  CHECK(myriad_bf16_from_float(bits_float(0x7f800000u)) == 0x7f80 && "+Inf kept");
  CHECK(myriad_bf16_from_float(bits_float(0xff800000u)) == 0xff80 && "-Inf kept");
  CHECK(myriad_bf16_from_float(bits_float(0x7f7fffffu)) == 0x7f80 && "FLT_MAX rounds to Inf");
  const uint16_t qnan = myriad_bf16_from_float(bits_float(0x7fc00001u));
  const uint16_t snan = myriad_bf16_from_float(bits_float(0x7f800001u)); /* would round to Inf */
  const uint16_t nnan = myriad_bf16_from_float(bits_float(0xffc00000u));
  CHECK(is_nan(myriad_bf16_to_float(qnan)) && "a quiet NaN stays NaN");
  CHECK(is_nan(myriad_bf16_to_float(snan)) && (snan & 0x0040) && "a signalling NaN becomes quiet");
  CHECK(is_nan(myriad_bf16_to_float(nnan)) && (nnan & 0x8000) && "a NaN keeps its sign");
  CHECK(myriad_bf16_to_float(0x3f80) == 1.0f);
  CHECK(float_bits(myriad_bf16_to_float(0xc049)) == 0xc0490000u && "to_float is exact");

  float in[5] = {1.0f, -2.0f, bits_float(0x3f818000u), 3.0e38f, -0.0f};
  uint16_t h[5];
  float back[5];
  CHECK_ST(myriad_bf16_from_float_n(in, h, 5), MYRIAD_OK);
  CHECK_ST(myriad_bf16_to_float_n(h, back, 5), MYRIAD_OK);
  for (int i = 0; i < 5; ++i) {
    CHECK(h[i] == myriad_bf16_from_float(in[i]) && "the array form rounds like the scalar one");
    CHECK(float_bits(back[i]) == (uint32_t)h[i] << 16);
  }
  CHECK_ST(myriad_bf16_from_float_n(NULL, h, 1), MYRIAD_EINVAL);
  CHECK_ST(myriad_bf16_from_float_n(in, NULL, 1), MYRIAD_EINVAL);
  CHECK_ST(myriad_bf16_to_float_n(NULL, back, 1), MYRIAD_EINVAL);
  CHECK_ST(myriad_bf16_to_float_n(h, NULL, 1), MYRIAD_EINVAL);
  CHECK_ST(myriad_bf16_from_float_n(NULL, NULL, 0), MYRIAD_OK);
  CHECK_ST(myriad_bf16_to_float_n(NULL, NULL, 0), MYRIAD_OK);
}

/* ---- Structs and bad input ------------------------------------------------------------------ */

typedef struct gemm_v1_plus {
  myriad_gemm g;
  unsigned char tail[24]; /* a newer caller's larger struct */
} gemm_v1_plus;

static void test_structs(void) {
  myriad_gemm g;
  memset(&g, 0xab, sizeof g);
  CHECK_ST(myriad_gemm_init(&g, sizeof g), MYRIAD_OK);
  CHECK(g.size == sizeof g && g.batch == 1 && g.alpha == 1.0f && g.beta == 0.0f);
  CHECK(g.m == 0 && g.n == 0 && g.k == 0 && g.lda == 0 && g.ldb == 0 && g.ldc == 0 &&
        g.stride_a == 0 && g.stride_b == 0 && g.stride_c == 0 && g.trans_b == 0 &&
        "init zeroes the other fields");
  CHECK_ST(myriad_gemm_init(NULL, sizeof g), MYRIAD_EINVAL);
  memset(&g, 0xab, sizeof g);
  CHECK_ST(myriad_gemm_init(&g, sizeof(size_t)), MYRIAD_EINVAL);
  CHECK_ST(myriad_gemm_init(&g, 0), MYRIAD_EINVAL);
  CHECK(g.batch != 1 && "a refused init writes nothing");

  gemm_v1_plus big;
  memset(&big, 0xab, sizeof big);
  CHECK_ST(myriad_gemm_init(&big.g, sizeof big), MYRIAD_OK);
  CHECK(big.g.size == sizeof big && big.g.batch == 1 && big.tail[0] == 0 &&
        big.tail[sizeof big.tail - 1] == 0 && "a larger struct: known fields set, tail zeroed");

  CHECK_ST(myriad_gemm_init(&g, sizeof g), MYRIAD_OK);
  g.m = 3;
  g.n = 5;
  g.k = 7;
  CHECK_ST(myriad_gemm_set_dense(&g), MYRIAD_OK);
  CHECK(g.lda == 7 && g.ldb == 5 && g.ldc == 5 && g.stride_a == 21 && g.stride_b == 35 &&
        g.stride_c == 15 && "set_dense, B k×n");
  g.trans_b = 1;
  CHECK_ST(myriad_gemm_set_dense(&g), MYRIAD_OK);
  CHECK(g.ldb == 7 && g.stride_b == 35 && "set_dense, B n×k");
  CHECK_ST(myriad_gemm_set_dense(NULL), MYRIAD_EINVAL);
  g.size = 8;
  CHECK_ST(myriad_gemm_set_dense(&g), MYRIAD_EINVAL);

  myriad_exec ex;
  memset(&ex, 0xcd, sizeof ex);
  CHECK_ST(myriad_exec_init(&ex, sizeof ex), MYRIAD_OK);
  CHECK(ex.size == sizeof ex && ex.runtime.bits == 0 && ex.serial == 0 && ex.max_tasks == 0);
  CHECK_ST(myriad_exec_init(NULL, sizeof ex), MYRIAD_EINVAL);
  CHECK_ST(myriad_exec_init(&ex, 4), MYRIAD_EINVAL);
}

/* Every refused call must leave C as it was. */
#define CHECK_REFUSED(call, status, bu)                                                    \
  do {                                                                                     \
    CHECK_ST(call, status);                                                                \
    CHECK(memcmp((bu).c, (bu).c0, (bu).nc * 4) == 0 && "a refused call wrote nothing: " #call); \
  } while (0)

static void test_bad_input(void) {
  const gcase gc = {2, 4, 6, 8, 0, 0, 0, 1.0f, 0.0f};
  myriad_gemm g = make_gemm(&gc);
  gbufs f = make_bufs(&g, MYRIAD_GEMM_F32_F32);
  gbufs i8 = make_bufs(&g, MYRIAD_GEMM_S8S8_S32);
  gbufs h = make_bufs(&g, MYRIAD_GEMM_BF16_F32);

  /* NULL pointers with work to do. */
  CHECK_REFUSED(myriad_gemm_f32(NULL, f.a, f.b, f.c, NULL), MYRIAD_EINVAL, f);
  CHECK_REFUSED(myriad_gemm_f32(&g, NULL, f.b, f.c, NULL), MYRIAD_EINVAL, f);
  CHECK_REFUSED(myriad_gemm_f32(&g, f.a, NULL, f.c, NULL), MYRIAD_EINVAL, f);
  CHECK_ST(myriad_gemm_f32(&g, f.a, f.b, NULL, NULL), MYRIAD_EINVAL);
  CHECK_REFUSED(myriad_gemm_bf16(&g, NULL, h.b, h.c, NULL), MYRIAD_EINVAL, h);
  CHECK_REFUSED(myriad_gemm_s8s8(&g, i8.a, NULL, i8.c, NULL), MYRIAD_EINVAL, i8);
  CHECK_REFUSED(myriad_gemm_u8s8(&g, NULL, i8.b, i8.c, NULL), MYRIAD_EINVAL, i8);
  /* ... and without: nothing to do, NULL is fine. */
  myriad_gemm empty = g;
  empty.m = 0;
  CHECK_ST(myriad_gemm_f32(&empty, NULL, NULL, NULL, NULL), MYRIAD_OK);
  empty = g;
  empty.batch = 0;
  CHECK_ST(myriad_gemm_s8s8(&empty, NULL, NULL, NULL, NULL), MYRIAD_OK);

  /* Leading dimensions smaller than the rows. */
  myriad_gemm bad = g;
  bad.lda = g.k - 1;
  CHECK_REFUSED(myriad_gemm_f32(&bad, f.a, f.b, f.c, NULL), MYRIAD_EINVAL, f);
  bad = g;
  bad.ldb = g.n - 1;
  CHECK_REFUSED(myriad_gemm_f32(&bad, f.a, f.b, f.c, NULL), MYRIAD_EINVAL, f);
  bad = g;
  bad.trans_b = 1; /* B n×k: ldb must be >= k = 8, it is n = 6 */
  CHECK_REFUSED(myriad_gemm_f32(&bad, f.a, f.b, f.c, NULL), MYRIAD_EINVAL, f);
  bad = g;
  bad.ldc = g.n - 1;
  CHECK_REFUSED(myriad_gemm_s8s8(&bad, i8.a, i8.b, i8.c, NULL), MYRIAD_EINVAL, i8);
  /* Extents past 2^62 bytes (nothing is read: the check comes first). */
  bad = g;
  bad.stride_a = (size_t)1 << 61;
  CHECK_REFUSED(myriad_gemm_f32(&bad, f.a, f.b, f.c, NULL), MYRIAD_EINVAL, f);
  bad = g;
  bad.m = (size_t)1 << 62;
  CHECK_REFUSED(myriad_gemm_bf16(&bad, h.a, h.b, h.c, NULL), MYRIAD_EINVAL, h);
  /* Non-finite alpha/beta for int8. */
  bad = g;
  bad.alpha = 1.0f / 0.0f;
  CHECK_REFUSED(myriad_gemm_s8s8(&bad, i8.a, i8.b, i8.c, NULL), MYRIAD_EINVAL, i8);
  bad = g;
  bad.beta = 0.0f / 0.0f;
  CHECK_REFUSED(myriad_gemm_u8s8(&bad, i8.a, i8.b, i8.c, NULL), MYRIAD_EINVAL, i8);

  /* Bad size fields. */
  bad = g;
  bad.size = 0;
  CHECK_REFUSED(myriad_gemm_f32(&bad, f.a, f.b, f.c, NULL), MYRIAD_EINVAL, f);
  bad.size = sizeof(myriad_gemm) - 2 * sizeof(float) - sizeof(int32_t) - 1;
  CHECK_REFUSED(myriad_gemm_f32(&bad, f.a, f.b, f.c, NULL), MYRIAD_EINVAL, f);
  myriad_exec ex;
  REQUIRE(myriad_exec_init(&ex, sizeof ex) == MYRIAD_OK);
  ex.size = sizeof(size_t);
  CHECK_REFUSED(myriad_gemm_f32(&g, f.a, f.b, f.c, &ex), MYRIAD_EINVAL, f);
  CHECK_ST(myriad_dot(1, 1, f.a, 1, f.b, 1, f.c, &ex), MYRIAD_EINVAL);
  CHECK_ST(myriad_row_max(1, 1, f.a, 1, f.c, &ex), MYRIAD_EINVAL);
  /* A runtime handle that is not one. */
  REQUIRE(myriad_exec_init(&ex, sizeof ex) == MYRIAD_OK);
  ex.runtime.bits = 0x0000000500000007ull;
  CHECK_REFUSED(myriad_gemm_f32(&g, f.a, f.b, f.c, &ex), MYRIAD_EBADHANDLE, f);
  CHECK_REFUSED(myriad_row_sum(1, 1, f.a, 1, f.c, &ex), MYRIAD_EBADHANDLE, f);

  /* Vector operations: NULL pointers with work to do. */
  float out[4];
  CHECK_ST(myriad_dot(2, 3, NULL, 3, f.b, 3, out, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_dot(2, 3, f.a, 3, NULL, 3, out, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_dot(2, 3, f.a, 3, f.b, 3, NULL, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_axpy(2, 3, 1.0f, NULL, 3, f.c, 3, NULL), MYRIAD_EINVAL);
  CHECK_REFUSED(myriad_axpy(2, 3, 1.0f, f.a, 3, NULL, 3, NULL), MYRIAD_EINVAL, f);
  CHECK_ST(myriad_row_sum(2, 3, NULL, 3, out, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_row_max(2, 3, f.a, 3, NULL, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_row_sum(2, 3, f.a, (size_t)1 << 62, out, NULL), MYRIAD_EINVAL);

  /* Packing: bad enum, NULL out, NULL B, ld < width. */
  myriad_packed_b pb = {77};
  CHECK_ST(myriad_pack_b(&g, (myriad_gemm_type)4, f.b, &pb), MYRIAD_EINVAL);
  CHECK(pb.bits == 0 && "a refused pack leaves the zero handle");
  CHECK_ST(myriad_pack_b(&g, (myriad_gemm_type)-1, f.b, &pb), MYRIAD_EINVAL);
  CHECK_ST(myriad_pack_b(&g, MYRIAD_GEMM_F32_F32, f.b, NULL), MYRIAD_EINVAL);
  CHECK_ST(myriad_pack_b(NULL, MYRIAD_GEMM_F32_F32, f.b, &pb), MYRIAD_EINVAL);
  CHECK_ST(myriad_pack_b(&g, MYRIAD_GEMM_F32_F32, NULL, &pb), MYRIAD_EINVAL);
  bad = g;
  bad.ldb = g.n - 1;
  CHECK_ST(myriad_pack_b(&bad, MYRIAD_GEMM_F32_F32, f.b, &pb), MYRIAD_EINVAL);
  bad = g;
  bad.size = 3;
  CHECK_ST(myriad_pack_b(&bad, MYRIAD_GEMM_F32_F32, f.b, &pb), MYRIAD_EINVAL);

  /* A packed B used for another geometry or type. */
  CHECK_ST(myriad_pack_b(&g, MYRIAD_GEMM_F32_F32, f.b, &pb), MYRIAD_OK);
  CHECK_REFUSED(myriad_gemm_packed(&g, MYRIAD_GEMM_BF16_F32, h.a, pb, h.c, NULL), MYRIAD_EINVAL,
                h);
  CHECK_REFUSED(myriad_gemm_packed(&g, (myriad_gemm_type)9, f.a, pb, f.c, NULL), MYRIAD_EINVAL,
                f);
  bad = g;
  bad.k = g.k - 1;
  bad.lda = g.k;
  CHECK_REFUSED(myriad_gemm_packed(&bad, MYRIAD_GEMM_F32_F32, f.a, pb, f.c, NULL), MYRIAD_EINVAL,
                f);
  bad = g;
  bad.n = g.n - 1;
  CHECK_REFUSED(myriad_gemm_packed(&bad, MYRIAD_GEMM_F32_F32, f.a, pb, f.c, NULL), MYRIAD_EINVAL,
                f);
  bad = g;
  bad.stride_b = 0; /* one shared B item, the pack holds two */
  CHECK_REFUSED(myriad_gemm_packed(&bad, MYRIAD_GEMM_F32_F32, f.a, pb, f.c, NULL), MYRIAD_EINVAL,
                f);
  CHECK_REFUSED(myriad_gemm_packed(&g, MYRIAD_GEMM_F32_F32, NULL, pb, f.c, NULL), MYRIAD_EINVAL,
                f);
  CHECK_REFUSED(myriad_gemm_packed(NULL, MYRIAD_GEMM_F32_F32, f.a, pb, f.c, NULL), MYRIAD_EINVAL,
                f);
  bad = g;
  bad.ldb = 0; /* not used with a packed B */
  CHECK_ST(myriad_gemm_packed(&bad, MYRIAD_GEMM_F32_F32, f.a, pb, f.c, NULL), MYRIAD_OK);
  verify(&g, &f, "packed, ldb 0", __LINE__);
  CHECK_ST(myriad_packed_b_destroy(pb), MYRIAD_OK);
  memcpy(f.c0, f.c, f.nc * 4);

  /* Handles that were never valid. */
  const myriad_packed_b zero = {0}, forged = {0x0000000100000001ull};
  CHECK_REFUSED(myriad_gemm_packed(&g, MYRIAD_GEMM_F32_F32, f.a, zero, f.c, NULL),
                MYRIAD_EBADHANDLE, f);
  CHECK_REFUSED(myriad_gemm_packed(&g, MYRIAD_GEMM_F32_F32, f.a, forged, f.c, NULL),
                MYRIAD_EBADHANDLE, f);
  CHECK_ST(myriad_packed_b_destroy(zero), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_packed_b_destroy(forged), MYRIAD_EBADHANDLE);
  CHECK_ST(myriad_packed_b_info(forged, NULL, NULL, NULL, NULL, NULL), MYRIAD_EBADHANDLE);

  free_bufs(&f);
  free_bufs(&i8);
  free_bufs(&h);
}

/* ---- A runtime in myriad_exec, and kernels called from tasks --------------------------------- */

typedef struct task_arg {
  myriad_runtime other; /* zero: use the task's own runtime */
  int serial;
} task_arg;

static void kernel_task(void* p) {
  const task_arg* arg = p;
  myriad_exec ex;
  REQUIRE(myriad_exec_init(&ex, sizeof ex) == MYRIAD_OK);
  ex.runtime = arg->other;
  ex.serial = arg->serial;
  const gcase* big = &kCases[7];
  for (size_t t = 0; t < 4; ++t) run_case(big, kTypes[t], &ex, __LINE__);
  run_case(&kCases[3], MYRIAD_GEMM_BF16_F32, NULL, __LINE__); /* exec NULL inside a task */
  run_packed_case(big, MYRIAD_GEMM_S8S8_S32, &ex, __LINE__);
  test_vector_ops(&ex, __LINE__);
}

static myriad_runtime make_runtime(uint32_t procs) {
  myriad_config c;
  myriad_config_init(&c);
  c.procs = procs;
  c.report_abandoned = 0;
  c.stack_size = 256 * 1024;
  myriad_runtime rt;
  REQUIRE(myriad_runtime_create(&c, &rt) == MYRIAD_OK);
  return rt;
}

static void test_runtimes(void) {
  myriad_runtime rt = make_runtime(4);
  myriad_runtime rt2 = make_runtime(2);
  myriad_exec ex;
  REQUIRE(myriad_exec_init(&ex, sizeof ex) == MYRIAD_OK);
  ex.runtime = rt;

  /* From this (foreign) thread: the work runs on rt's procs, the thread waits. */
  for (size_t c = 0; c < sizeof kCases / sizeof kCases[0]; ++c)
    for (size_t t = 0; t < 4; ++t) run_case(&kCases[c], kTypes[t], &ex, __LINE__);
  for (size_t t = 0; t < 4; ++t) run_packed_case(&kCases[7], kTypes[t], &ex, __LINE__);
  test_vector_ops(&ex, __LINE__);
  ex.max_tasks = 1;
  run_case(&kCases[7], MYRIAD_GEMM_F32_F32, &ex, __LINE__);
  ex.max_tasks = 3;
  run_case(&kCases[7], MYRIAD_GEMM_U8S8_S32, &ex, __LINE__);

  /* From tasks: on their own runtime (exec zero), serially, and on another runtime. */
  task_arg args[3] = {{{0}, 0}, {{0}, 1}, {rt2, 0}};
  myriad_task tasks[3];
  for (int i = 0; i < 3; ++i)
    REQUIRE(myriad_spawn(rt, kernel_task, &args[i], NULL, &tasks[i]) == MYRIAD_OK);
  for (int i = 0; i < 3; ++i) CHECK_ST(myriad_join(tasks[i]), MYRIAD_OK);

  CHECK_ST(myriad_runtime_destroy(rt2), MYRIAD_OK);
  CHECK_ST(myriad_runtime_destroy(rt), MYRIAD_OK);
  /* The runtime is gone: its handle in an exec is refused. */
  const gcase gc = {1, 2, 3, 4, 0, 0, 0, 1.0f, 0.0f};
  myriad_gemm g = make_gemm(&gc);
  gbufs bu = make_bufs(&g, MYRIAD_GEMM_F32_F32);
  CHECK_REFUSED(myriad_gemm_f32(&g, bu.a, bu.b, bu.c, &ex), MYRIAD_EBADHANDLE, bu);
  free_bufs(&bu);
}

int main(void) {
  test_bf16();
  test_structs();
  test_bad_input();
  test_every_isa();
  test_runtimes();
  return CHECK_SUMMARY();
}
