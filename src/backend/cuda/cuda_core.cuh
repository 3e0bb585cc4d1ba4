// cuda_core.cuh — launch geometry and the deterministic column sum shared by cuda_gemm.cu,
// cuda_elementwise.cu and cuda_tokens.cu (internal to src/backend/cuda/).
//
// Row ops: most ops of these files touch a [rows, cols] view with a leading dimension.  They run
// a 2-D grid-stride loop: blockIdx.y walks rows, the x threads walk the columns of a row, so
// consecutive threads touch consecutive elements and no thread divides an index.
//
// Column sums (bias gradients, dgamma, dmask_token): deterministic in two passes, never atomics
// (backend.h).  Pass 1: block (column tile of 32, row chunk) — 8 row lanes per column each sum
// every 8th row of the chunk in double, then lane 0 adds the 8 lane sums in lane order and writes
// the chunk's partial to the backend's scratch.  Pass 2: one thread per column adds the chunks'
// partials in chunk order and adds the total (rounded to fp32) to the output.  The number of
// chunks depends on rows and cols only (poa_cuda_reduce_chunks), so the order of every addition
// is fixed for a shape: the same inputs give the same bits run after run.
#ifndef POA_BACKEND_CUDA_CORE_CUH
#define POA_BACKEND_CUDA_CORE_CUH

#include "backend/cuda/cuda_common.cuh"

// ---------------------------------------------------------------- rows × cols launches
struct poa_rc_launch {
    dim3 grid, block;
};

// Geometry for a [rows, cols] loop: 128 threads along a row; blocks along x to cover the row,
// along y one per row up to the grid limit (the kernel strides over the rest).
static inline poa_rc_launch poa_rc_geometry(long long rows, int cols)
{
    const unsigned threads = 128;
    unsigned gx = (unsigned) ((cols + threads - 1) / threads);
    if (gx < 1) gx = 1;
    if (gx > 1024) gx = 1024;
    long long gy = rows < 1 ? 1 : rows;
    if (gy > 65535) gy = 65535;
    poa_rc_launch l;
    l.grid = dim3(gx, (unsigned) gy, 1);
    l.block = dim3(threads, 1, 1);
    return l;
}

// for (r, c) over the [rows, cols] view, inside a kernel launched with poa_rc_geometry.
#define POA_RC_LOOP(r, c, rows, cols)                                                              \
    for (long long r = blockIdx.y; r < (long long) (rows); r += gridDim.y)                         \
        for (int c = (int) (blockIdx.x * blockDim.x + threadIdx.x); c < (cols);                    \
             c += (int) (gridDim.x * blockDim.x))

// ---------------------------------------------------------------- deterministic column sums
enum { POA_COLSUM_TILE = 32, POA_COLSUM_LANES = 8, POA_COLSUM_ROWS_PER_CHUNK = 256 };

// Pass 1.  f(r, c) gives the double value of row r, column c (r < rows, c < cols).
template <typename F>
__global__ void poa_colsum_partial_kernel(double *partial, F f, int rows, int cols,
                                          int rows_per_chunk)
{
    __shared__ double lane_sum[POA_COLSUM_LANES][POA_COLSUM_TILE];
    const int c = blockIdx.x * POA_COLSUM_TILE + threadIdx.x;
    const int chunk = blockIdx.y;
    const long long r0 = (long long) chunk * rows_per_chunk;
    const long long r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
    double acc = 0.0;
    if (c < cols)
        for (long long r = r0 + threadIdx.y; r < r1; r += POA_COLSUM_LANES) acc += f((int) r, c);
    lane_sum[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        double s = 0.0;
        for (int k = 0; k < POA_COLSUM_LANES; k++) s += lane_sum[k][threadIdx.x];
        partial[(size_t) chunk * cols + c] = s;
    }
}

// Pass 2: out[c] += (float) Σ_k partial[k, c], k in chunk order.  (A template so that every
// file including this header may instantiate it.)
template <typename Out>
__global__ void poa_colsum_finish_kernel(Out *out, const double *partial, int chunks, int cols)
{
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    double s = 0.0;
    for (int k = 0; k < chunks; k++) s += partial[(size_t) k * cols + c];
    out[c] += (Out) s;
}

// out[c] (fp32, contiguous) += Σ_{r < rows} f(r, c) for c < cols, on the compute stream.
template <typename F>
static void poa_colsum_add(const poa_backend *be, float *out, F f, int rows, int cols)
{
    if (rows <= 0 || cols <= 0) return;
    POA_CHECK((size_t) cols * sizeof(double) <= POA_CUDA_SCRATCH_BYTES,
              "column sum of %d columns: the partials of one chunk exceed the scratch (%zu bytes)",
              cols, (size_t) POA_CUDA_SCRATCH_BYTES);
    int chunks =
        poa_cuda_reduce_chunks(rows, cols, sizeof(double), (int) POA_COLSUM_ROWS_PER_CHUNK);
    const int rows_per_chunk = (rows + chunks - 1) / chunks;
    chunks = (rows + rows_per_chunk - 1) / rows_per_chunk; // no empty chunk
    double *partial = (double *) poa_cuda_impl(be)->scratch;
    const cudaStream_t s = poa_cuda_stream(be);
    const dim3 grid((unsigned) ((cols + POA_COLSUM_TILE - 1) / POA_COLSUM_TILE), (unsigned) chunks);
    const dim3 block(POA_COLSUM_TILE, POA_COLSUM_LANES);
    poa_colsum_partial_kernel<F><<<grid, block, 0, s>>>(partial, f, rows, cols, rows_per_chunk);
    POA_CUDA_LAUNCHED("poa_colsum_partial_kernel");
    poa_colsum_finish_kernel<float>
        <<<(unsigned) ((cols + 255) / 256), 256, 0, s>>>(out, partial, chunks, cols);
    POA_CUDA_LAUNCHED("poa_colsum_finish_kernel");
}

#endif
