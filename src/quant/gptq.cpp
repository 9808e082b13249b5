#include "quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "format/dtype.h"

namespace edgellm {
namespace {

// H = V V^T with V upper triangular (Cholesky in reverse index order), in place of `v` (row-major n x n;
// on entry the lower triangle is ignored and the upper one holds H). False if H is not positive definite.
//   V[j][j] = sqrt(H[j][j] - sum_{k>j} V[j][k]^2),  V[i][j] = (H[i][j] - sum_{k>j} V[i][k] V[j][k]) / V[j][j]
// Then H^-1 = V^-T V^-1 = U^T U with U = V^-1 upper: the factor GPTQ needs, with one factorisation.
bool reverse_cholesky(std::vector<double>& v, int64_t n, ThreadPool& pool) {
  auto at = [&](int64_t i, int64_t j) -> double& { return v[static_cast<size_t>(i * n + j)]; };
  for (int64_t j = n - 1; j >= 0; --j) {
    double s = at(j, j);
    for (int64_t k = j + 1; k < n; ++k) s -= at(j, k) * at(j, k);
    if (!(s > 0) || !std::isfinite(s)) return false;
    const double vjj = std::sqrt(s);
    at(j, j) = vjj;
    const double* vj = &at(j, 0);
    auto column = [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) {
        double t = at(i, j);
        const double* vi = &at(i, 0);
        for (int64_t k = j + 1; k < n; ++k) t -= vi[k] * vj[k];
        at(i, j) = t / vjj;
      }
    };
    if (j >= 256) {
      pool.parallel_for(j, column, 64);
    } else {
      column(0, j, 0);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < i; ++j) at(i, j) = 0;
  }
  return true;
}

// U = V^-1 for upper triangular V (row-major n x n), column by column (V u = e_j, back substitution).
std::vector<double> upper_inverse(const std::vector<double>& v, int64_t n, ThreadPool& pool) {
  std::vector<double> u(static_cast<size_t>(n * n), 0.0);
  pool.parallel_for(
      n,
      [&](int64_t begin, int64_t end, int) {
        std::vector<double> col(static_cast<size_t>(n));
        for (int64_t j = begin; j < end; ++j) {
          for (int64_t i = j; i >= 0; --i) {
            double t = i == j ? 1.0 : 0.0;
            const double* vi = &v[static_cast<size_t>(i * n)];
            for (int64_t k = i + 1; k <= j; ++k) t -= vi[k] * col[static_cast<size_t>(k)];
            col[static_cast<size_t>(i)] = t / vi[i];
            u[static_cast<size_t>(i * n + j)] = col[static_cast<size_t>(i)];
          }
        }
      },
      8);
  return u;
}

}  // namespace

Status quantize_matrix_gptq(DType type, const float* w, int64_t n_rows, int64_t n_cols, const float* hessian,
                            const GptqOptions& options, ThreadPool& pool, uint8_t* out, const std::string& what) {
  if (!has_scale_search(type)) {
    return make_error(ErrorCode::kInvalidArgument, what + ": GPTQ does not support " + dtype_name(type));
  }
  const int64_t group = dtype_traits(type).block_size;
  if (n_rows < 0 || n_cols <= 0 || n_cols % group != 0) {
    return make_error(ErrorCode::kInvalidArgument, what + ": GPTQ needs rows of whole " + dtype_name(type) +
                                                       " blocks, got " + std::to_string(n_cols) + " columns");
  }
  const auto n = n_cols;
  const auto sz = [](int64_t v) { return static_cast<size_t>(v); };

  // Damped H. A channel the calibration never excited (H[i][i] = 0) has no error cost: its weights are
  // quantized as zero, as in the reference implementation, and its diagonal set to 1.
  double mean_diag = 0;
  for (int64_t i = 0; i < n; ++i) mean_diag += hessian[i * n + i];
  mean_diag /= static_cast<double>(n);
  std::vector<bool> dead(sz(n));
  for (int64_t i = 0; i < n; ++i) dead[sz(i)] = !(hessian[i * n + i] > 0);
  std::vector<double> v, diag(sz(n));
  double damp = options.damp;
  for (int attempt = 0;; ++attempt) {
    v.assign(sz(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = i; j < n; ++j) v[sz(i * n + j)] = mean_diag > 0 ? hessian[i * n + j] : (i == j ? 1.0 : 0.0);
      if (dead[sz(i)]) {
        for (int64_t j = i; j < n; ++j) v[sz(i * n + j)] = 0;
        for (int64_t k = 0; k < i; ++k) v[sz(k * n + i)] = 0;
        v[sz(i * n + i)] = 1;
      }
      v[sz(i * n + i)] += damp * (mean_diag > 0 ? mean_diag : 1.0);
      diag[sz(i)] = v[sz(i * n + i)];
    }
    if (reverse_cholesky(v, n, pool)) break;
    if (attempt == 2) {
      return make_error(ErrorCode::kInvalidArgument,
                        what + ": the calibration Hessian is not positive definite even with damping " +
                            std::to_string(damp));
    }
    damp *= 10;
  }
  const std::vector<double> u = upper_inverse(v, n, pool);
  std::vector<float> importance(sz(n));
  for (int64_t i = 0; i < n; ++i) importance[sz(i)] = static_cast<float>(diag[sz(i)]);

  const size_t row_bytes = dtype_row_bytes(type, n);
  const size_t block_bytes = dtype_traits(type).block_bytes;
  std::vector<std::vector<double>> scratch(sz(pool.n_threads()), std::vector<double>(sz(n)));
  pool.parallel_for(
      n_rows,
      [&](int64_t begin, int64_t end, int thread_idx) {
        std::vector<double>& r = scratch[sz(thread_idx)];
        float xg[256];
        int levels[256];
        for (int64_t row = begin; row < end; ++row) {
          for (int64_t i = 0; i < n; ++i) r[sz(i)] = dead[sz(i)] ? 0.0 : w[row * n + i];
          uint8_t* dst = out + sz(row) * row_bytes;
          for (int64_t g0 = 0; g0 < n; g0 += group) {
            for (int64_t j = 0; j < group; ++j) xg[j] = static_cast<float>(r[sz(g0 + j)]);
            const GroupGrid grid = search_group_grid(type, xg, &importance[sz(g0)], options.search);
            for (int64_t j = 0; j < group; ++j) {
              const int64_t i = g0 + j;
              levels[j] = grid.level(static_cast<float>(r[sz(i)]));
              const double q = static_cast<double>(grid.value(levels[j]));
              const double* ui = &u[sz(i * n)];
              const double e = (r[sz(i)] - q) / ui[i];
              for (int64_t k = i + 1; k < n; ++k) r[sz(k)] -= e * ui[k];
            }
            pack_group(type, grid, levels, dst + sz(g0 / group) * block_bytes);
          }
        }
      },
      4);
  return {};
}

}  // namespace edgellm
