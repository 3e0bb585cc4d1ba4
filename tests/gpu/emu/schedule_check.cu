// schedule_check.cu — checks the emulator's own schedule (README.md, "Races"), on which the
// race-finding of run-checks.sh rests: kernels with a deliberately missing __syncthreads, whose
// outcome the schedule decides.  Emulator only: on a GPU these outcomes are undefined.
//   forward (default): the warps of a block run first to last, each as far as it goes (through
//            its shuffles) before the next starts, and the blocks of a grid first to last;
//   reverse (POA_EMU_SCHEDULE=reverse): last to first, both.
// Exit status 0 when every outcome is the one the schedule in effect promises, 1 otherwise.
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Warp `writer` stores 1 + lane into s, the other warp reads s with no barrier between: it
// sees the store only if the writer ran first.  seen[lane] = what reader lane `lane` saw.
__global__ void publish(int *seen, int writer, int with_barrier)
{
    __shared__ int s[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (warp == 0) s[lane] = 0;
    __syncthreads();
    if (warp == writer) {
        // a shuffle first: the writer runs on through its warp barriers before the reader starts
        const int me = (int) __shfl_xor_sync(0xffffffffu, (float) (lane ^ 1), 1); // = lane
        s[me] = 1 + me;
    }
    if (with_barrier) __syncthreads();
    if (warp != writer) seen[lane] = s[lane];
}

// Every block appends its index to order[] (one block runs at a time in the emulator).
__global__ void block_order(int *order, int *count)
{
    if (threadIdx.x == 0) order[(*count)++] = (int) blockIdx.x;
}

static int failures;
static void expect(bool ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    failures += !ok;
}

// Runs publish and returns how many reader lanes saw the writer's values.
static int run_publish(int *d_seen, int writer, int with_barrier)
{
    int seen[32];
    publish<<<1, 64, 0, 0>>>(d_seen, writer, with_barrier);
    cudaMemcpy(seen, d_seen, sizeof seen, cudaMemcpyDeviceToHost);
    int n = 0;
    for (int i = 0; i < 32; i++) n += seen[i] == 1 + i;
    return n;
}

int main()
{
    const char *mode = getenv("POA_EMU_SCHEDULE");
    const bool rev = mode && strcmp(mode, "reverse") == 0;
    printf("schedule: %s\n", rev ? "reverse" : "forward");
    int *d_seen, *d_order, *d_count;
    if (cudaMalloc((void **) &d_seen, 32 * sizeof(int)) != cudaSuccess ||
        cudaMalloc((void **) &d_order, 8 * sizeof(int)) != cudaSuccess ||
        cudaMalloc((void **) &d_count, sizeof(int)) != cudaSuccess) {
        printf("FAIL cudaMalloc\n");
        return 1;
    }
    // forward: warp 0 runs before warp 1; reverse: warp 1 before warp 0
    expect(run_publish(d_seen, 0, 0) == (rev ? 0 : 32),
           rev ? "no barrier, warp 0 writes: warp 1 reads first, sees nothing"
               : "no barrier, warp 0 writes: it runs first, warp 1 sees all");
    expect(run_publish(d_seen, 1, 0) == (rev ? 32 : 0),
           rev ? "no barrier, warp 1 writes: it runs first, warp 0 sees all"
               : "no barrier, warp 1 writes: warp 0 reads first, sees nothing");
    expect(run_publish(d_seen, 0, 1) == 32 && run_publish(d_seen, 1, 1) == 32,
           "with the barrier: the reader sees every value");

    int order[8], zero = 0;
    cudaMemcpy(d_count, &zero, sizeof zero, cudaMemcpyHostToDevice);
    block_order<<<8, 32, 0, 0>>>(d_order, d_count);
    cudaMemcpy(order, d_order, sizeof order, cudaMemcpyDeviceToHost);
    bool in_order = true;
    for (int i = 0; i < 8; i++) in_order &= order[i] == (rev ? 7 - i : i);
    expect(in_order, rev ? "blocks run last to first" : "blocks run first to last");
    printf("%s\n", failures ? "schedule_check: FAILED" : "schedule_check: all passed");
    return failures ? 1 : 0;
}
