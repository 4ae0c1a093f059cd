// Batched fp32 vector operations: the driver around the table's dot / axpy / sum / max.
#include <algorithm>

#include "kernels/kernel_table.hpp"
#include "kernels/parallel.hpp"

namespace myriad::kernels {
namespace detail {
namespace {

enum class VecOp { dot, axpy, sum, max };

struct VecCall {
  VecOp op;
  const KernelTable* table;
  std::size_t n;
  float alpha;
  const float* x;
  std::size_t sx;
  const float* y;  // dot
  float* yw;       // axpy
  std::size_t sy;
  float* out;
};

void run_vectors(void* vctx, std::size_t begin, std::size_t end) noexcept {
  const VecCall& c = *static_cast<const VecCall*>(vctx);
  const KernelTable& t = *c.table;
  switch (c.op) {
    case VecOp::dot:
      for (std::size_t i = begin; i < end; ++i) c.out[i] = t.dot(c.x + i * c.sx, c.y + i * c.sy, c.n);
      break;
    case VecOp::axpy:
      for (std::size_t i = begin; i < end; ++i) t.axpy(c.alpha, c.x + i * c.sx, c.yw + i * c.sy, c.n);
      break;
    case VecOp::sum:
      for (std::size_t i = begin; i < end; ++i) c.out[i] = t.sum(c.x + i * c.sx, c.n);
      break;
    case VecOp::max:
      for (std::size_t i = begin; i < end; ++i) c.out[i] = t.max(c.x + i * c.sx, c.n);
      break;
  }
}

bool extent_ok(std::size_t count, std::size_t stride, std::size_t n) noexcept {
  if (count == 0 || n == 0) return true;
  const unsigned __int128 e = static_cast<unsigned __int128>(count - 1) * stride + n;
  return e * sizeof(float) < (static_cast<unsigned __int128>(1) << 62);
}

void run(VecCall& c, std::size_t count, const Exec& ex) {
  const bool ok = extent_ok(count, c.sx, c.n) &&
                  (c.op == VecOp::sum || c.op == VecOp::max || extent_ok(count, c.sy, c.n)) &&
                  (count == 0 || (c.x || c.n == 0)) &&
                  (count == 0 || c.op == VecOp::axpy || c.out) &&
                  (count == 0 || c.n == 0 || c.op != VecOp::dot || c.y) &&
                  (count == 0 || c.n == 0 || c.op != VecOp::axpy || c.yw);
  if (!ok) throw Error(Errc::invalid_argument);
  if (count == 0) return;
  c.table = &table_for(active_isa());
  parallel_ranges(ex, count, std::max<std::size_t>(c.n, 1), run_vectors, &c);
}

}  // namespace
}  // namespace detail

using detail::VecCall;
using detail::VecOp;

void dot(std::size_t count, std::size_t n, const float* x, std::size_t stride_x, const float* y,
         std::size_t stride_y, float* out, const Exec& ex) {
  VecCall c{VecOp::dot, nullptr, n, 0.0f, x, stride_x, y, nullptr, stride_y, out};
  detail::run(c, count, ex);
}

void axpy(std::size_t count, std::size_t n, float alpha, const float* x, std::size_t stride_x,
          float* y, std::size_t stride_y, const Exec& ex) {
  VecCall c{VecOp::axpy, nullptr, n, alpha, x, stride_x, nullptr, y, stride_y, nullptr};
  detail::run(c, count, ex);
}

void row_sum(std::size_t count, std::size_t n, const float* x, std::size_t stride_x, float* out,
             const Exec& ex) {
  VecCall c{VecOp::sum, nullptr, n, 0.0f, x, stride_x, nullptr, nullptr, 0, out};
  detail::run(c, count, ex);
}

void row_max(std::size_t count, std::size_t n, const float* x, std::size_t stride_x, float* out,
             const Exec& ex) {
  VecCall c{VecOp::max, nullptr, n, 0.0f, x, stride_x, nullptr, nullptr, 0, out};
  detail::run(c, count, ex);
}

}  // namespace myriad::kernels
