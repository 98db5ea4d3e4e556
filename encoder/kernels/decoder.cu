// Fused kernels of the jina-embeddings-v4 text decoder on the GPU (Qwen2.5-VL layers over a packed
// batch: sequences laid end to end, no padding, `cu_seqlens` marking where each starts).
//
// Each kernel has a CPU twin of the same math in encoder/src/layers/fused/ that the CPU test suite
// checks against textbook formulas; keep the two in step. Statistics, softmax and pooling run in f32
// whatever the storage type. Every kernel is instantiated for float and __nv_bfloat16 with the
// suffixes _f32 and _bf16.

#include <cuda_bf16.h>
#include <stdint.h>

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
    return __float2bfloat16(x);
}

// Sum over a block of at most 1024 threads; every thread gets the result.
__device__ float block_sum(float v) {
    __shared__ float partial[32];
    __shared__ float total;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        const int warps = (blockDim.x + 31) / 32;
        float w = lane < warps ? partial[lane] : 0.f;
        for (int o = 16; o > 0; o /= 2) w += __shfl_xor_sync(0xffffffffu, w, o);
        if (lane == 0) total = w;
    }
    __syncthreads();
    return total;
}

// Residual add and RMSNorm, one block per row of n values:
//   residual = x + delta (rounded to T, as the reference adds in the model dtype; delta may be null)
//   normed   = weight · residual / sqrt(mean(residual²) + eps)
// `out` is [2, rows, n]: the residual rows, then the normed rows.
template <typename T>
__device__ void add_rms_norm(const T* x, const T* delta, const T* weight, T* out, int rows, int n,
                             float eps) {
    const int row = blockIdx.x;
    if (row >= rows) return;
    const T* xr = x + (size_t)row * n;
    const T* dr = delta ? delta + (size_t)row * n : nullptr;
    T* res = out + (size_t)row * n;
    T* normed = out + (size_t)rows * n + (size_t)row * n;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const T r = from_f<T>(to_f(xr[i]) + (dr ? to_f(dr[i]) : 0.f));
        res[i] = r;
        const float rf = to_f(r);
        ss += rf * rf;
    }
    const float inv = rsqrtf(block_sum(ss) / n + eps);
    // Each thread reads back only the residual values it wrote itself.
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        normed[i] = from_f<T>(to_f(res[i]) * inv * to_f(weight[i]));
    }
}

// Projection bias and rotary embedding of a packed QKV activation, in place. A row holds
// nh query heads, nkv key heads and nkv value heads of d values each, then the next row.
// Query and key heads get the bias and the rotation (rotate_half layout: value j pairs with j + d/2):
//   out[j]       = x[j]·cos[j] − x[j + d/2]·sin[j]
//   out[j + d/2] = x[j + d/2]·cos[j] + x[j]·sin[j]
// value heads get the bias only. `cos_sin` is [rows, 2, d/2] f32: cos then sin per row, which is
// where M-RoPE's per-token, per-slot angles arrive. Grid (rows, nh + 2·nkv), block d/2.
template <typename T>
__device__ void rope_qkv(T* qkv, const T* bias, const float* cos_sin, int rows, int nh, int nkv,
                         int d) {
    const int row = blockIdx.x, head = blockIdx.y, j = threadIdx.x, half = d / 2;
    if (row >= rows || head >= nh + 2 * nkv || j >= half) return;
    const int width = (nh + 2 * nkv) * d;
    T* h = qkv + (size_t)row * width + head * d;
    const T* b = bias + head * d;
    // The biased projection output is a T in the reference, rounded before the rotation.
    const float x1 = to_f(from_f<T>(to_f(h[j]) + to_f(b[j])));
    const float x2 = to_f(from_f<T>(to_f(h[j + half]) + to_f(b[j + half])));
    if (head >= nh + nkv) {
        h[j] = from_f<T>(x1);
        h[j + half] = from_f<T>(x2);
        return;
    }
    const float c = cos_sin[(size_t)row * d + j];
    const float s = cos_sin[(size_t)row * d + half + j];
    h[j] = from_f<T>(x1 * c - x2 * s);
    h[j + half] = from_f<T>(x2 * c + x1 * s);
}

// Grouped-query attention over packed sequences (varlen), causal or not, flash style: scores are never
// stored, each query keeps a running max, sum and output (online softmax), so memory is O(tokens).
//
// Block: BQ queries of one sequence and one head; TPQ threads per query, each holding D/TPQ of
// the query's values and of its output accumulator. Keys and values stream through shared memory
// in tiles of BK rows. Query i of a sequence sees keys 0..=i of the same sequence when `causal`
// (the decoder), every key of it otherwise (the vision tower's windows and images).
// qkv rows: [nh query heads | nkv key heads | nkv value heads] × D (after rope_qkv).
// out rows: nh × D. Grid (nseq · tiles_per_seq, nh), block BQ · TPQ.
constexpr int BQ = 32;
constexpr int TPQ = 4;
constexpr int BK = 32;

template <typename T, int D>
__device__ void varlen_attention(const T* qkv, const uint32_t* cu_seqlens, T* out, int nseq,
                                 int tiles_per_seq, int nh, int nkv, float scale, int causal) {
    constexpr int DP = D / TPQ;
    __shared__ float ks[BK][D];
    __shared__ float vs[BK][D];
    const int seq = blockIdx.x / tiles_per_seq;
    const int tile = blockIdx.x % tiles_per_seq;
    const int head = blockIdx.y;
    if (seq >= nseq) return;
    const int start = (int)cu_seqlens[seq];
    const int len = (int)cu_seqlens[seq + 1] - start;
    const int q0 = tile * BQ;
    if (q0 >= len) return;  // the whole block leaves together: no barrier is skipped by a few
    const int width = (nh + 2 * nkv) * D;
    const int kv_head = head / (nh / nkv);
    const int qi = q0 + threadIdx.x / TPQ;  // this thread's query, within the sequence
    const int part = threadIdx.x % TPQ;      // which D/TPQ slice of it
    const bool live = qi < len;

    float q[DP], acc[DP];
    const T* qrow = qkv + (size_t)(start + (live ? qi : 0)) * width + head * D + part * DP;
#pragma unroll
    for (int e = 0; e < DP; ++e) {
        q[e] = live ? to_f(qrow[e]) * scale : 0.f;
        acc[e] = 0.f;
    }
    float m = -INFINITY, l = 0.f;
    // Keys any query of this block can see: its causal prefix, or the whole sequence.
    const int kend = causal ? min(len, q0 + BQ) : len;
    for (int k0 = 0; k0 < kend; k0 += BK) {
        __syncthreads();  // the previous tile is no longer read
        for (int idx = threadIdx.x; idx < BK * D; idx += blockDim.x) {
            const int r = idx / D, c = idx % D, key = k0 + r;
            float kv = 0.f, vv = 0.f;
            if (key < kend) {
                const T* row = qkv + (size_t)(start + key) * width;
                kv = to_f(row[(nh + kv_head) * D + c]);
                vv = to_f(row[(nh + nkv + kv_head) * D + c]);
            }
            ks[r][c] = kv;
            vs[r][c] = vv;
        }
        __syncthreads();
        // Scores of this tile. Every thread runs the shuffles (no divergence around them); keys
        // past the query, or past the tile's end, are masked afterwards.
        float s[BK];
        float tile_max = -INFINITY;
#pragma unroll
        for (int j = 0; j < BK; ++j) {
            float dot = 0.f;
#pragma unroll
            for (int e = 0; e < DP; ++e) dot += q[e] * ks[j][part * DP + e];
#pragma unroll
            for (int o = 1; o < TPQ; o *= 2) dot += __shfl_xor_sync(0xffffffffu, dot, o);
            const int key = k0 + j;
            s[j] = (live && (!causal || key <= qi) && key < kend) ? dot : -INFINITY;
            tile_max = fmaxf(tile_max, s[j]);
        }
        if (tile_max == -INFINITY) continue;  // nothing visible in this tile for this query
        const float m_new = fmaxf(m, tile_max);
        const float correction = __expf(m - m_new);  // 0 on the first visible tile (m = -inf)
        l *= correction;
#pragma unroll
        for (int e = 0; e < DP; ++e) acc[e] *= correction;
#pragma unroll
        for (int j = 0; j < BK; ++j) {
            const float p = s[j] == -INFINITY ? 0.f : __expf(s[j] - m_new);
            l += p;
#pragma unroll
            for (int e = 0; e < DP; ++e) acc[e] += p * vs[j][part * DP + e];
        }
        m = m_new;
    }
    if (!live) return;
    const float inv = l > 0.f ? 1.f / l : 0.f;
    T* orow = out + (size_t)(start + qi) * nh * D + head * D + part * DP;
#pragma unroll
    for (int e = 0; e < DP; ++e) orow[e] = from_f<T>(acc[e] * inv);
}

// silu(gate) · up for a row of [gate (inter values) | up (inter values)] → [rows, inter], with the
// reference's rounding of silu(gate) to T before the product.
template <typename T>
__device__ void swiglu(const T* gate_up, T* out, int rows, int inter) {
    const size_t total = (size_t)rows * inter;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        const size_t r = i / inter, c = i % inter;
        const float g = to_f(gate_up[r * 2 * inter + c]);
        const float u = to_f(gate_up[r * 2 * inter + inter + c]);
        const float act = to_f(from_f<T>(g / (1.f + __expf(-g))));
        out[i] = from_f<T>(act * u);
    }
}

// Mean over each sequence's rows of a packed [tokens, n] activation, in f32 → [nseq, n].
// Grid (nseq, ceil(n / blockDim)).
template <typename T>
__device__ void segment_mean(const T* x, const uint32_t* cu_seqlens, float* out, int nseq, int n) {
    const int seq = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    if (seq >= nseq || c >= n) return;
    const uint32_t a = cu_seqlens[seq], b = cu_seqlens[seq + 1];
    float sum = 0.f;
    for (uint32_t r = a; r < b; ++r) sum += to_f(x[(size_t)r * n + c]);
    out[(size_t)seq * n + c] = b > a ? sum / (float)(b - a) : 0.f;
}

// Rows (plus an optional bias) divided by their L2 norm, floored at 1e-12 as torch's
// F.normalize does; f32 out. One block per row.
template <typename T>
__device__ void l2_normalize_rows(const T* x, const T* bias, float* out, int rows, int n) {
    const int row = blockIdx.x;
    if (row >= rows) return;
    const T* xr = x + (size_t)row * n;
    float* o = out + (size_t)row * n;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        // The biased projection output is a T in the reference.
        const float v = bias ? to_f(from_f<T>(to_f(xr[i]) + to_f(bias[i]))) : to_f(xr[i]);
        o[i] = v;
        ss += v * v;
    }
    const float inv = 1.f / fmaxf(sqrtf(block_sum(ss)), 1e-12f);
    for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] *= inv;
}

#define FOR_TYPES(X) X(float, f32) X(__nv_bfloat16, bf16)

#define ENTRY_POINTS(T, S)                                                                       \
    extern "C" __global__ void add_rms_norm_##S(const T* x, const T* delta, const T* weight,     \
                                                T* out, int rows, int n, float eps) {            \
        add_rms_norm<T>(x, delta, weight, out, rows, n, eps);                                    \
    }                                                                                            \
    extern "C" __global__ void rope_qkv_##S(T* qkv, const T* bias, const float* cos_sin,         \
                                            int rows, int nh, int nkv, int d) {                  \
        rope_qkv<T>(qkv, bias, cos_sin, rows, nh, nkv, d);                                       \
    }                                                                                            \
    extern "C" __global__ void swiglu_##S(const T* gate_up, T* out, int rows, int inter) {      \
        swiglu<T>(gate_up, out, rows, inter);                                                    \
    }                                                                                            \
    extern "C" __global__ void segment_mean_##S(const T* x, const uint32_t* cu, float* out,      \
                                                int nseq, int n) {                               \
        segment_mean<T>(x, cu, out, nseq, n);                                                    \
    }                                                                                            \
    extern "C" __global__ void l2_normalize_rows_##S(const T* x, const T* bias, float* out,      \
                                                     int rows, int n) {                          \
        l2_normalize_rows<T>(x, bias, out, rows, n);                                             \
    }                                                                                            \
    ATTENTION(T, S, 16) ATTENTION(T, S, 32) ATTENTION(T, S, 64) ATTENTION(T, S, 80)              \
    ATTENTION(T, S, 128)

#define ATTENTION(T, S, D)                                                                       \
    extern "C" __global__ void __launch_bounds__(BQ* TPQ)                                        \
        varlen_attention_d##D##_##S(const T* qkv, const uint32_t* cu, T* out, int nseq,          \
                                    int tiles_per_seq, int nh, int nkv, float scale,             \
                                    int causal) {                                                \
        varlen_attention<T, D>(qkv, cu, out, nseq, tiles_per_seq, nh, nkv, scale, causal);       \
    }

FOR_TYPES(ENTRY_POINTS)
