#include "cpu/loops.h"

#include <algorithm>

#include <fmt/format.h>

#include "cpu/parallel.h"

namespace ember::cpu {
namespace {

struct Iter {
  int nops = 0;  // out + inputs
  int ndim = 0;
  int64_t shape[64];
  int64_t strides[kMaxOperands][64];  // in elements, per operand, per dim (outer first)
  char* base[kMaxOperands];
  int64_t esize[kMaxOperands];
};

// Builds the iteration with broadcasting and dim coalescing. Returns false when
// the rank exceeds the fixed-size arrays (the caller falls back to a slow loop).
bool build(Iter& it, Tensor& out, const Tensor* in, int nin) {
  const auto& oshape = out.shape();
  const int rank = static_cast<int>(oshape.size());
  if (rank > 64) return false;
  it.nops = nin + 1;
  const Tensor* ops[kMaxOperands];
  ops[0] = &out;
  for (int j = 0; j < nin; ++j) ops[j + 1] = &in[j];
  for (int j = 0; j < it.nops; ++j) {
    const auto& impl = ops[j]->impl();
    it.base[j] = static_cast<char*>(impl.data());
    it.esize[j] = static_cast<int64_t>(itemsize(impl.dtype));
  }
  // Drop size-1 dims, broadcast strides, then merge neighbours that are contiguous
  // for every operand.
  int nd = 0;
  for (int d = 0; d < rank; ++d) {
    if (oshape[d] == 1) continue;
    it.shape[nd] = oshape[d];
    for (int j = 0; j < it.nops; ++j) {
      const auto& s = ops[j]->shape();
      const int off = rank - static_cast<int>(s.size());
      int64_t st = 0;
      if (d >= off && s[d - off] != 1) st = ops[j]->strides()[d - off];
      it.strides[j][nd] = st;
    }
    if (nd > 0) {
      bool merge = true;
      for (int j = 0; j < it.nops && merge; ++j)
        merge = it.strides[j][nd - 1] == it.strides[j][nd] * it.shape[nd];
      if (merge) {
        it.shape[nd - 1] *= it.shape[nd];
        for (int j = 0; j < it.nops; ++j) it.strides[j][nd - 1] = it.strides[j][nd];
        continue;
      }
    }
    ++nd;
  }
  if (nd == 0) {
    it.shape[0] = 1;
    for (int j = 0; j < it.nops; ++j) it.strides[j][0] = 1;
    nd = 1;
  }
  it.ndim = nd;
  return true;
}

// Runs linear element range [begin, end) of the iteration. Pointers step from
// row to row; they are recomputed from the index only when a row carries
// into the dims above the next-to-innermost one.
void run_range(const Iter& it, Loop loop, const void* extra, int64_t begin, int64_t end) {
  const int nd = it.ndim;
  const int64_t inner = it.shape[nd - 1];
  int64_t idx[64];
  int64_t rem = begin;
  for (int d = nd - 1; d >= 0; --d) {
    idx[d] = rem % it.shape[d];
    rem /= it.shape[d];
  }
  int64_t s_inner[kMaxOperands], s_row[kMaxOperands];
  for (int j = 0; j < it.nops; ++j) {
    s_inner[j] = it.strides[j][nd - 1];
    s_row[j] = nd >= 2 ? it.strides[j][nd - 2] * it.esize[j] : 0;
  }
  char* row[kMaxOperands];  // each operand at column 0 of the current row
  auto locate = [&] {
    for (int j = 0; j < it.nops; ++j) {
      int64_t off = 0;
      for (int d = 0; d < nd - 1; ++d) off += idx[d] * it.strides[j][d];
      row[j] = it.base[j] + off * it.esize[j];
    }
  };
  locate();
  char* ptr[kMaxOperands];
  int64_t pos = begin;
  while (true) {
    const int64_t col = idx[nd - 1];
    for (int j = 0; j < it.nops; ++j) ptr[j] = row[j] + col * s_inner[j] * it.esize[j];
    const int64_t n = std::min(inner - col, end - pos);
    loop(ptr, s_inner, n, extra);
    pos += n;
    if (pos >= end) return;
    // The row is finished: on to column 0 of the next one.
    idx[nd - 1] = 0;
    if (nd >= 2 && ++idx[nd - 2] < it.shape[nd - 2]) {
      for (int j = 0; j < it.nops; ++j) row[j] += s_row[j];
      continue;
    }
    for (int d = nd - 2; d > 0 && idx[d] >= it.shape[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
    locate();
  }
}

// Note [Tiled strided loops]: an operand that is strided along the innermost
// dim but runs along memory in the next one (a transposed view) would touch a
// new cache line per element; with a power-of-two row pitch those lines also
// fall into one L1 set and evict each other before the next row can use them.
// The last two dims are walked in tiles of kTileRows x kTileCols instead. A
// tile of such an operand is first copied into a small buffer, reading each
// cache line once along its contiguous direction; the loop then runs over the
// buffer's rows with stride 1 (an output operand is written back the same
// way). The loop sees the same values whichever way they are laid out, so
// results are the same bits as for a contiguous copy.
constexpr int64_t kTileRows = 16;
constexpr int64_t kTileCols = 64;

// Operand j walks across memory in the inner dim and along it in the outer one.
bool transposed(const Iter& it, int j) {
  const int nd = it.ndim;
  const int64_t inner = std::abs(it.strides[j][nd - 1]), outer = std::abs(it.strides[j][nd - 2]);
  return inner > 1 && outer != 0 && outer < inner;
}

bool wants_tiles(const Iter& it) {
  if (it.ndim < 2 || it.shape[it.ndim - 1] < kTileRows || it.shape[it.ndim - 2] < 2) return false;
  for (int j = 0; j < it.nops; ++j)
    if (transposed(it, j)) return true;
  return false;
}

// Copies a rows x cols tile between strided memory and a buffer whose rows
// are kTileCols long; walks columns outside, rows inside (the strided side's
// contiguous direction).
template <class U>
void move_tile(char* strided, int64_t s_row, int64_t s_col, char* buffer, int64_t rows, int64_t cols, bool to_buffer) {
  U* x = reinterpret_cast<U*>(strided);
  U* b = reinterpret_cast<U*>(buffer);
  for (int64_t c = 0; c < cols; ++c) {
    U* col = x + c * s_col;
    if (to_buffer)
      for (int64_t r = 0; r < rows; ++r) b[r * kTileCols + c] = col[r * s_row];
    else
      for (int64_t r = 0; r < rows; ++r) col[r * s_row] = b[r * kTileCols + c];
  }
}

void move_tile(int64_t esize, char* strided, int64_t s_row, int64_t s_col, char* buffer, int64_t rows, int64_t cols,
               bool to_buffer) {
  switch (esize) {
    case 1: return move_tile<uint8_t>(strided, s_row, s_col, buffer, rows, cols, to_buffer);
    case 2: return move_tile<uint16_t>(strided, s_row, s_col, buffer, rows, cols, to_buffer);
    case 4: return move_tile<uint32_t>(strided, s_row, s_col, buffer, rows, cols, to_buffer);
    default: return move_tile<uint64_t>(strided, s_row, s_col, buffer, rows, cols, to_buffer);
  }
}

// Runs row blocks [b0, b1) of a tiled iteration: block b covers rows
// [rb * kTileRows, +kTileRows) of dim nd-2 at outer index b / row_blocks.
void run_tiles(const Iter& it, Loop loop, const void* extra, int64_t b0, int64_t b1) {
  const int nd = it.ndim;
  const int64_t rows = it.shape[nd - 2], cols = it.shape[nd - 1];
  const int64_t row_blocks = (rows + kTileRows - 1) / kTileRows;
  alignas(64) char buffer[kMaxOperands][kTileRows * kTileCols * 8];
  bool buffered[kMaxOperands];
  int64_t s_inner[kMaxOperands];
  for (int j = 0; j < it.nops; ++j) {
    buffered[j] = transposed(it, j) && it.esize[j] <= 8;
    s_inner[j] = buffered[j] ? 1 : it.strides[j][nd - 1];
  }
  char* ptr[kMaxOperands];
  char* corner[kMaxOperands];
  for (int64_t b = b0; b < b1; ++b) {
    int64_t outer = b / row_blocks;
    const int64_t r0 = (b % row_blocks) * kTileRows, tr = std::min(rows, r0 + kTileRows) - r0;
    int64_t off[kMaxOperands] = {};
    for (int d = nd - 3; d >= 0; --d) {
      const int64_t i = outer % it.shape[d];
      outer /= it.shape[d];
      for (int j = 0; j < it.nops; ++j) off[j] += i * it.strides[j][d];
    }
    for (int64_t c0 = 0; c0 < cols; c0 += kTileCols) {
      const int64_t tc = std::min(kTileCols, cols - c0);
      for (int j = 0; j < it.nops; ++j) {
        corner[j] = it.base[j] + (off[j] + r0 * it.strides[j][nd - 2] + c0 * it.strides[j][nd - 1]) * it.esize[j];
        if (buffered[j] && j > 0)
          move_tile(it.esize[j], corner[j], it.strides[j][nd - 2], it.strides[j][nd - 1], buffer[j], tr, tc, true);
      }
      for (int64_t r = 0; r < tr; ++r) {
        for (int j = 0; j < it.nops; ++j)
          ptr[j] = buffered[j] ? buffer[j] + r * kTileCols * it.esize[j]
                               : corner[j] + r * it.strides[j][nd - 2] * it.esize[j];
        loop(ptr, s_inner, tc, extra);
      }
      if (buffered[0]) move_tile(it.esize[0], corner[0], it.strides[0][nd - 2], it.strides[0][nd - 1], buffer[0], tr, tc, false);
    }
  }
}

}  // namespace

void run_elementwise(Loop loop, Tensor& out, const Tensor* inputs, int n_inputs,
                     const void* extra) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Iter it;
  if (!build(it, out, inputs, n_inputs))
    throw ShapeError(fmt::format("elementwise: tensors of more than 64 dims are not supported (got {})", out.dim()));
  if (wants_tiles(it)) {
    const int nd = it.ndim;
    const int64_t cols = it.shape[nd - 1];
    int64_t blocks = (it.shape[nd - 2] + kTileRows - 1) / kTileRows;
    for (int d = 0; d < nd - 2; ++d) blocks *= it.shape[d];
    const int64_t grain = std::max<int64_t>(1, kParallelMinElements / 4 / (kTileRows * cols));
    auto body = [&](int64_t b, int64_t e) { run_tiles(it, loop, extra, b, e); };
    if (n < kParallelMinElements)
      body(0, blocks);
    else
      parallel_for(0, blocks, grain, body);
    return;
  }
  if (n < kParallelMinElements) {
    run_range(it, loop, extra, 0, n);
    return;
  }
  parallel_for(0, n, kParallelMinElements / 4,
               [&](int64_t b, int64_t e) { run_range(it, loop, extra, b, e); });
}

}  // namespace ember::cpu
