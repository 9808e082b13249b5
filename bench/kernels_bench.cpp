// Matmul throughput per weight type at Qwen2.5-0.5B shapes (hidden 896, ffn 4864) and Qwen1.5-1.8B
// shapes (hidden 2048, ffn 5504): weight GB/s and GFLOP/s (GOP/s for int8 activations), 1 and 2
// threads, 1 token (decode) and 128 tokens (prefill), f32 and int8 activations where both exist.
//   build-*/bench/kernels_bench [--benchmark_filter=q4_0] [--benchmark_repetitions=5]
//   EDGELLM_ISA=scalar|avx2 ... to measure one kernel variant.
// Each benchmark cycles through enough copies of the weight matrix to exceed the last-level cache
// (>= 64 MiB in total), so decode figures are DRAM figures, as in a real forward pass; never asserts.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "format/tensor_ref.h"
#include "kernels/matmul.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_edgellm.h"
#include "kernels/quantize.h"
#include "model/attention.h"
#include "util/half.h"
#include "util/huge_pages.h"
#include "util/thread_pool.h"

namespace edgellm {
namespace {

struct Shape {
  const char* name;
  int64_t n_rows;  // R: output features
  int64_t k;       // K: input features
};

constexpr Shape kShapes[] = {
    {"attn_896x896", 896, 896},
    {"ffn_up_4864x896", 4864, 896},
    {"ffn_down_896x4864", 896, 4864},
    {"attn_2048x2048", 2048, 2048},
    {"ffn_up_5504x2048", 5504, 2048},
    {"ffn_down_2048x5504", 2048, 5504},
};

constexpr DType kTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0, DType::kQ4_0,  DType::kIQ4_NL,
                            DType::kQ4_1, DType::kQ5_0, DType::kQ4_K, DType::kQ6_K, DType::kE4G128};

// Random weights; K-quants (no quantizer yet) get random bytes with small fp16 scales.
std::vector<uint8_t> make_weights(DType type, int64_t n_rows, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(dtype_row_bytes(type, k) * static_cast<size_t>(n_rows));
  if (dtype_is_edgellm_only(type)) {
    std::normal_distribution<float> dist(0.0f, 0.02f);
    std::vector<float> values(static_cast<size_t>(n_rows * k));
    for (auto& v : values) v = dist(rng);
    (void)ref::quantize_row_e4(type, values.data(), bytes.data(), n_rows * k);
    return bytes;
  }
  if (can_quantize(type)) {
    std::normal_distribution<float> dist(0.0f, 0.02f);
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < n_rows; ++r) {
      for (auto& v : row) v = dist(rng);
      (void)quantize_row(type, row.data(), bytes.data() + r * dtype_row_bytes(type, k), k);
    }
    return bytes;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : bytes) b = static_cast<uint8_t>(byte(rng));
  const size_t block_bytes = dtype_traits(type).block_bytes;
  const uint16_t scale = f32_to_fp16(0.001f);
  for (size_t pos = 0; pos < bytes.size(); pos += block_bytes) {
    if (type == DType::kQ4_K) {
      std::memcpy(bytes.data() + pos + offsetof(BlockQ4_K, d), &scale, 2);
      std::memcpy(bytes.data() + pos + offsetof(BlockQ4_K, dmin), &scale, 2);
    } else if (type == DType::kQ6_K) {
      std::memcpy(bytes.data() + pos + offsetof(BlockQ6_K, d), &scale, 2);
    }
  }
  return bytes;
}

// A packed copy of a matrix, when the default int8 kernels read one (as the model loader makes).
struct PackedBuffer {
  HugePageBuffer data;
};
void pack(TensorRef& t, PackedBuffer& out) {
  const size_t bytes = matmul_packed_bytes(t);
  if (bytes == 0) return;
  out.data = allocate_huge_pages(bytes);  // as the model loader's arena (util/huge_pages.h)
  matmul_repack(t, out.data.get());
  t.packed = out.data.get();
}

// `resident`: one copy of the weights, which stays in the caches: the kernel's compute ceiling.
void bm_matmul(benchmark::State& state, DType type, Shape shape, int n_threads, int64_t n_tokens,
               MatmulActivations activations, bool resident = false) {
  const size_t matrix_bytes = dtype_row_bytes(type, shape.k) * static_cast<size_t>(shape.n_rows);
  const size_t n_copies = resident ? 1 : std::max<size_t>(1, (size_t{64} << 20) / matrix_bytes + 1);
  std::vector<std::vector<uint8_t>> copies;
  copies.push_back(make_weights(type, shape.n_rows, shape.k, 1));
  for (size_t i = 1; i < n_copies; ++i) copies.push_back(copies[0]);

  std::vector<TensorRef> tensors(n_copies);
  for (size_t i = 0; i < n_copies; ++i) {
    tensors[i].name = shape.name;
    tensors[i].type = type;
    tensors[i].ne = {shape.k, shape.n_rows};
    tensors[i].data = copies[i].data();
    tensors[i].size_bytes = copies[i].size();
  }
  // The packed copies the model loader makes for these kernels (kernels/matmul.h: matmul_repack).
  std::vector<PackedBuffer> packed(n_copies);
  if (activations != MatmulActivations::kF32) {
    for (size_t i = 0; i < n_copies; ++i) pack(tensors[i], packed[i]);
  }
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_tokens * shape.k));
  for (auto& v : x) v = dist(rng);
  std::vector<float> y(static_cast<size_t>(n_tokens * shape.n_rows));
  ThreadPool pool(n_threads);

  for (size_t i = 0; i < n_copies; ++i) matmul(tensors[i], x.data(), n_tokens, y.data(), pool, activations);  // warm-up
  size_t next = 0;
  for (auto _ : state) {
    matmul(tensors[next], x.data(), n_tokens, y.data(), pool, activations);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == n_copies ? 0 : next + 1;
  }
  const double iterations = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(iterations * static_cast<double>(matrix_bytes) / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(
      iterations * 2.0 * static_cast<double>(shape.n_rows * shape.k * n_tokens) / 1e9, benchmark::Counter::kIsRate);
  state.counters["tokens/s"] = benchmark::Counter(iterations * static_cast<double>(n_tokens),
                                                  benchmark::Counter::kIsRate);
  state.SetLabel(std::string("isa=") + matmul_isa_name());
}

// One decode step's matmuls of Qwen2.5-0.5B (24 layers of q, k, v, o, gate, up, down; tied 151936-row
// LM head), back to back with 1 token, against a plain 2-thread streaming read of a buffer of the same
// size: run both (`--benchmark_filter='decode_pass|stream_read'`, with repetitions) and divide the GB/s,
// which compares the kernels with the --roofline bandwidth under the same conditions. Weights are
// random bytes with small fp16 scales (generating quantized Gaussians for 0.5B weights takes minutes).
struct DecodePass {
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<PackedBuffer> packed;
  std::vector<TensorRef> tensors;
  size_t bytes = 0;
};

const DecodePass& decode_pass_weights(DType type) {
  static std::vector<std::pair<DType, std::unique_ptr<DecodePass>>> cache;
  for (auto& [t, pass] : cache) {
    if (t == type) return *pass;
  }
  auto pass = std::make_unique<DecodePass>();
  const int64_t hidden = 896, kv = 128, ffn = 4864, vocab = 151936;
  std::vector<std::pair<int64_t, int64_t>> shapes;  // {rows, k}
  for (int layer = 0; layer < 24; ++layer) {
    for (auto shape : {std::pair{hidden, hidden}, {kv, hidden}, {kv, hidden}, {hidden, hidden}, {ffn, hidden},
                       {ffn, hidden}, {hidden, ffn}}) {
      shapes.push_back(shape);
    }
  }
  shapes.push_back({vocab, hidden});
  const size_t block_bytes = dtype_traits(type).block_bytes;
  const uint16_t scale = f32_to_fp16(0.001f);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (auto [rows, k] : shapes) {
    std::vector<uint8_t> bytes(dtype_row_bytes(type, k) * static_cast<size_t>(rows));
    for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      std::memcpy(bytes.data() + i, &state, 8);
    }
    for (size_t pos = 0; pos + block_bytes <= bytes.size(); pos += block_bytes) std::memcpy(bytes.data() + pos, &scale, 2);
    pass->bytes += bytes.size();
    pass->buffers.push_back(std::move(bytes));
    TensorRef t;
    t.name = "decode_pass";
    t.type = type;
    t.ne = {k, rows};
    t.data = pass->buffers.back().data();
    t.size_bytes = pass->buffers.back().size();
    pass->packed.emplace_back();
    pack(t, pass->packed.back());
    pass->tensors.push_back(t);
  }
  cache.emplace_back(type, std::move(pass));
  return *cache.back().second;
}

// With n_tokens > 1 it is the matmul part of a batched decode step of the serving engine (one token from
// each of n sequences): tokens/s counts all of them, GMAC/s the multiply-adds (weights x tokens).
void bm_decode_pass(benchmark::State& state, DType type, int n_threads, int64_t n_tokens) {
  const DecodePass& pass = decode_pass_weights(type);
  ThreadPool pool(n_threads);
  std::vector<float> x(static_cast<size_t>(4864 * n_tokens)), y(static_cast<size_t>(151936 * n_tokens));
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5f - static_cast<float>(i % 97) / 97.0f;
  for (const TensorRef& t : pass.tensors) matmul(t, x.data(), n_tokens, y.data(), pool);  // warm-up
  for (auto _ : state) {
    for (const TensorRef& t : pass.tensors) matmul(t, x.data(), n_tokens, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  double macs = 0;
  for (const TensorRef& t : pass.tensors) macs += static_cast<double>(t.n_elements()) * static_cast<double>(n_tokens);
  const double iterations = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(iterations * static_cast<double>(pass.bytes) / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["tokens/s"] = benchmark::Counter(iterations * static_cast<double>(n_tokens), benchmark::Counter::kIsRate);
  state.counters["GMAC/s"] = benchmark::Counter(iterations * macs / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string("isa=") + matmul_isa_name() + " act=" + matmul_activations_name(type) +
                 " MB=" + std::to_string(pass.bytes >> 20));
}

// The same loop as `edgellm bench --roofline` (cli/cmd_bench.cpp): sum a 256 MiB buffer in huge pages with all threads.
void bm_stream_read(benchmark::State& state, int n_threads) {
  const size_t n = size_t{64} << 20;
  static HugePageBuffer memory = allocate_huge_pages(n * sizeof(float));
  float* buffer = reinterpret_cast<float*>(memory.get());
  std::fill(buffer, buffer + n, 1.0f);
  ThreadPool pool(n_threads);
  std::vector<double> sums(static_cast<size_t>(n_threads), 0.0);
  for (auto _ : state) {
    pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e, int tid) {
      float acc[16] = {};
      for (int64_t i = b; i + 16 <= e; i += 16) {
        for (int j = 0; j < 16; ++j) acc[j] += buffer[i + j];
      }
      double s = 0;
      for (float v : acc) s += v;
      sums[static_cast<size_t>(tid)] += s;
    }, 1 << 16);
    benchmark::DoNotOptimize(sums.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(n * 4) / 1e9,
                                              benchmark::Counter::kIsRate);
}

// Decode attention of one KV head with G query heads over `n_keys` cached positions (rows of two KV heads, as
// in the cache), cycling through enough caches (> 64 MiB) that each is read from DRAM, as in a forward pass
// where the weights stream through the caches between two layers' attention. Shapes: Qwen2.5-0.5B (head_dim
// 64, 14 q / 2 kv heads), Qwen3.5 (head_dim 256, 8 q / 2 kv heads).
void bm_attention_decode(benchmark::State& state, int64_t D, int64_t G, DType type, int64_t n_keys) {
  // One KV head's rows back to back, as KvCache lays them out (head-major).
  const size_t head_bytes = dtype_row_bytes(type, D);
  const size_t cache_bytes = static_cast<size_t>(n_keys) * head_bytes;
  const size_t n_caches = std::max<size_t>(2, (size_t{64} << 20) / (2 * cache_bytes) + 1);
  // One arena (4 KiB or 2 MiB pages made no difference here).
  HugePageBuffer memory = allocate_huge_pages(2 * n_caches * cache_bytes);
  std::vector<uint8_t*> k(n_caches), v(n_caches);
  // A few distinct rows, repeated.
  constexpr int kDistinctRows = 61;
  std::vector<uint8_t> rows(kDistinctRows * head_bytes);
  std::vector<float> values(static_cast<size_t>(D));
  for (int r = 0; r < kDistinctRows; ++r) {
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>((i * 37 + r * 11) % 256) / 128.0f - 1.0f;
    (void)quantize_row(type, values.data(), rows.data() + r * head_bytes, D);
  }
  for (size_t c = 0; c < n_caches; ++c) {
    k[c] = memory.get() + 2 * c * cache_bytes;
    v[c] = k[c] + cache_bytes;
    for (int64_t j = 0; j < 2 * n_keys; ++j) {
      std::memcpy(k[c] + j * head_bytes, rows.data() + (j % kDistinctRows) * head_bytes, head_bytes);
    }
  }
  std::vector<float> q(static_cast<size_t>(G * D), 0.1f), out(static_cast<size_t>(G * D));
  std::vector<float> work(attention_work_floats(D, G));
  // Past kAttnDecodeSplit keys, the parts one after the other as one thread of the model runs them, and
  // their merge.
  const int64_t n_parts = (n_keys + kAttnDecodeSplit - 1) / kAttnDecodeSplit;
  std::vector<float> part_out(static_cast<size_t>(n_parts * G * D)), part_ms(static_cast<size_t>(n_parts * 2 * G));
  size_t next = 0;
  for (auto _ : state) {
    AttentionBlock b;
    b.kv_type = type;
    b.k = k[next];
    b.v = v[next];
    b.kv_row_bytes = head_bytes;
    b.head_dim = D;
    b.q = q.data();
    b.q_token_stride = G * D;
    b.n_tokens = 1;
    b.n_group = G;
    b.n_keys0 = n_keys;
    b.scale = 1.0f / std::sqrt(static_cast<float>(D));
    b.out = out.data();
    b.out_token_stride = G * D;
    if (n_parts == 1) {
      attention_block(b, work.data());
    } else {
      for (int64_t p = 0; p < n_parts; ++p) {
        b.key_begin = p * kAttnDecodeSplit;
        b.key_end = b.key_begin + kAttnDecodeSplit;
        b.out = &part_out[static_cast<size_t>(p * G * D)];
        b.partial_max = &part_ms[static_cast<size_t>(p * 2 * G)];
        b.partial_sum = b.partial_max + G;
        attention_block(b, work.data());
      }
      for (int64_t g = 0; g < G; ++g) {
        merge_attention_parts(&part_out[static_cast<size_t>(g * D)], G * D, &part_ms[static_cast<size_t>(g)],
                              &part_ms[static_cast<size_t>(G + g)], 2 * G, n_parts, D, &out[static_cast<size_t>(g * D)]);
      }
    }
    benchmark::DoNotOptimize(out.data());
    next = next + 1 == n_caches ? 0 : next + 1;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * n_keys * static_cast<int64_t>(head_bytes));
  state.SetLabel(std::string("isa=") + attention_isa_name());
}

void register_all() {
  for (DType type : kTypes) {
    const bool has_int8 = std::string(matmul_activations_name(type)) == "int8";
    for (MatmulActivations act : {MatmulActivations::kInt8, MatmulActivations::kF32}) {
      if (act == MatmulActivations::kInt8 && !has_int8) continue;
      const char* act_name = act == MatmulActivations::kInt8 ? "int8" : "f32";
      for (const Shape& shape : kShapes) {
        for (int64_t n_tokens : {1, 16, 128}) {
          for (int n_threads : {1, 2}) {
            const std::string name = std::string("matmul/") + dtype_name(type) + "/act:" + act_name + "/" +
                                     shape.name + "/tokens:" + std::to_string(n_tokens) +
                                     "/threads:" + std::to_string(n_threads);
            benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
              bm_matmul(state, type, shape, n_threads, n_tokens, act);
            })->UseRealTime()->Unit(benchmark::kMicrosecond);
          }
        }
      }
    }
  }
  for (DType type : {DType::kQ4_0, DType::kIQ4_NL, DType::kQ8_0}) {
    const std::string name = std::string("decode_pass/qwen2.5-0.5b/") + dtype_name(type) + "/threads:2";
    benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) { bm_decode_pass(state, type, 2, 1); })
        ->UseRealTime()->Unit(benchmark::kMillisecond);
    for (int64_t n_tokens : {2, 4, 8, 16}) {
      const std::string batched = std::string("decode_pass/qwen2.5-0.5b/") + dtype_name(type) + "/tokens:" +
                                  std::to_string(n_tokens) + "/threads:2";
      benchmark::RegisterBenchmark(batched.c_str(), [=](benchmark::State& state) {
        bm_decode_pass(state, type, 2, n_tokens);
      })->UseRealTime()->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::RegisterBenchmark("stream_read/256MiB/threads:2", [](benchmark::State& state) { bm_stream_read(state, 2); })
      ->UseRealTime()->Unit(benchmark::kMillisecond);
  struct DecodeShape {
    int64_t head_dim, group;
    DType type;
    int64_t n_keys;
  };
  const DecodeShape decode_shapes[] = {{64, 7, DType::kF16, 128},  {64, 7, DType::kF16, 512},
                                       {64, 7, DType::kF16, 2048}, {256, 4, DType::kF16, 512},
                                       {256, 4, DType::kQ8_0, 512}, {256, 4, DType::kF16, 4096},
                                       {256, 4, DType::kQ8_0, 4096}};
  for (const DecodeShape& d : decode_shapes) {
    const std::string name = "attention_decode/head_dim:" + std::to_string(d.head_dim) + "/group:" +
                             std::to_string(d.group) + "/" + dtype_name(d.type) + "/keys:" + std::to_string(d.n_keys);
    benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
      bm_attention_decode(state, d.head_dim, d.group, d.type, d.n_keys);
    })->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  // Cache-resident decode (attn 896x896 fits in L2): compute ceiling of the decode kernels, 1 thread.
  for (DType type : {DType::kQ4_0, DType::kIQ4_NL, DType::kQ8_0, DType::kF16, DType::kBF16, DType::kE4G128}) {
    const bool has_int8 = std::string(matmul_activations_name(type)) == "int8";
    const MatmulActivations act = has_int8 ? MatmulActivations::kInt8 : MatmulActivations::kF32;
    const std::string name = std::string("matmul_resident/") + dtype_name(type) + "/act:" + (has_int8 ? "int8" : "f32") +
                             "/attn_896x896/tokens:1/threads:1";
    benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
      bm_matmul(state, type, kShapes[0], 1, 1, act, /*resident=*/true);
    })->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace
}  // namespace edgellm

int main(int argc, char** argv) {
  edgellm::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf("matmul kernels: isa=%s\n", edgellm::matmul_isa_name());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
