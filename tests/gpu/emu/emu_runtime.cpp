// emu_runtime.cpp — the CPU emulator of the CUDA runtime (tests/gpu/emu/README.md): kernel
// launches (fibers, one block after another), the runtime API on host memory, and the device
// the emulator pretends to be (POA_EMU_GPUS devices, default 1; compute capability 9.0; 2
// multiprocessors; POA_EMU_MEM_GB of memory, default 16).  Single-threaded: every call runs to
// completion before it returns, so streams and events need no queues.
#include "cuda_runtime.h"

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstring>
#include <map>
#include <mutex>
#include <setjmp.h>
#include <ucontext.h>
#include <vector>

dim3 emu_tid, emu_bid;
unsigned emu_linear;
dim3 emu_bdim, emu_gdim;

static cudaError_t last_error = cudaSuccess;
static std::map<const void *, int> func_smem; // opted-in dynamic shared memory per kernel
static const int SMEM_DEFAULT = 48 * 1024, SMEM_OPTIN = 232448;
static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

void emu_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuda emulator: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (env_int("POA_EMU_ABORT_ON_ERROR", 1)) abort();
}

// Threads are fibers (ucontext) run by one OS thread: the scheduler runs each fiber of a block
// until it reaches a barrier or returns; a barrier opens when every live thread it waits for
// has reached it (returned threads count as arrived, as on the GPU).  Deterministic: the same
// launch runs in the same interleaving every time.  A fiber is made once (thread index t of any
// launch) and runs one block's body after another.  On x86-64 a switch saves the callee-saved
// registers on the fiber's stack and swaps stack pointers (emu_switch: fourteen instructions);
// elsewhere, or with -DPOA_EMU_PORTABLE_SWITCH, ucontext makes a fiber and _setjmp/_longjmp
// switch (glibc's longjmp also runs the cleanup-handler unwinding: the emulated op tests took
// a fifth more CPU time that way).
enum fstate { F_RUN, F_BLOCK, F_WARP, F_DONE };
struct fiber {
#if defined(__x86_64__) && !defined(POA_EMU_PORTABLE_SWITCH)
    void *sp; // the stack pointer saved at its last switch
#else
    ucontext_t ctx; // the first entry only
    jmp_buf jb;     // every later switch
#endif
    fstate st;
    bool started;
};
static const unsigned MAX_THREADS = 1024;
static fiber fibers[MAX_THREADS]; // never moved: a started fiber's context points into itself
struct block_state {
    unsigned threads;
    fiber *f = fibers;
    std::vector<uint64_t> slots;            // two sets of one per thread, for shuffles
    std::vector<unsigned char> shfl_parity; // per thread: the set its last shuffle used
    std::vector<unsigned> warp_done;        // per warp: its threads that have returned
    std::vector<unsigned> warp_waiting;     // per warp: its threads waiting at a warp barrier
    unsigned char *smem = nullptr;
    size_t smem_bytes = 0;
    void (*body)(void *);
    void *body_ctx;
    dim3 bid;
};
static block_state *cur;
static std::vector<char *> stacks;
static const size_t STACK = 512 * 1024; // wmma fragments are 1 KiB each in the emulator
static void fiber_main(unsigned t);

#if defined(__x86_64__) && !defined(POA_EMU_PORTABLE_SWITCH)
// emu_switch(save, to): pushes rbp, rbx, r12-r15, stores rsp in *save, loads `to` and pops them
// back (System V: every other register is the caller's to save; nothing here changes MXCSR or
// the x87 control word).  A new fiber's stack holds six zero registers but r12 = its index, and
// emu_fiber_entry as the return address, which calls fiber_main(r12) on a 16-aligned stack.
extern "C" void emu_switch(void **save, void *to);
extern "C" void emu_fiber_main(unsigned t)
{
    fiber_main(t);
}
asm(".text\n"
    ".globl emu_switch\n"
    ".type emu_switch, @function\n"
    "emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size emu_switch, .-emu_switch\n"
    ".type emu_fiber_entry, @function\n"
    "emu_fiber_entry:\n"
    "  movl %r12d, %edi\n"
    "  call emu_fiber_main\n"
    "  ud2\n"
    ".size emu_fiber_entry, .-emu_fiber_entry\n");
extern "C" char emu_fiber_entry[];
static void *sched_sp;
static void to_scheduler(fiber &f)
{
    emu_switch(&f.sp, sched_sp);
}
static void start_fiber(fiber &f, unsigned t)
{
    // top 16-aligned; after the six pops and the ret, rsp = top (aligned for the call)
    uintptr_t top = ((uintptr_t) stacks[t] + STACK) & ~(uintptr_t) 15;
    void **sp = (void **) (top - 7 * sizeof(void *));
    for (int i = 0; i < 6; i++) sp[i] = nullptr;
    sp[3] = (void *) (uintptr_t) t; // r12
    sp[6] = (void *) emu_fiber_entry;
    f.sp = sp;
    emu_switch(&sched_sp, f.sp);
}
static void resume_fiber(fiber &f)
{
    emu_switch(&sched_sp, f.sp);
}
#else
static ucontext_t sched_ctx;
static jmp_buf sched_jb;
static void to_scheduler(fiber &f)
{
    if (!_setjmp(f.jb)) _longjmp(sched_jb, 1);
}
static void start_fiber(fiber &f, unsigned t)
{
    if (_setjmp(sched_jb)) return;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = stacks[t];
    f.ctx.uc_stack.ss_size = STACK;
    f.ctx.uc_link = nullptr; // fiber_main never returns
    makecontext(&f.ctx, (void (*)()) fiber_main, 1, t);
    swapcontext(&sched_ctx, &f.ctx);
}
static void resume_fiber(fiber &f)
{
    if (!_setjmp(sched_jb)) _longjmp(f.jb, 1);
}
#endif

static void yield_as(fstate s)
{
    fiber &f = cur->f[emu_linear];
    f.st = s;
    if (s == F_WARP) cur->warp_waiting[emu_linear >> 5]++;
    to_scheduler(f);
}
void emu_syncthreads()
{
    yield_as(F_BLOCK);
}
void emu_syncwarp()
{
    yield_as(F_WARP);
}
unsigned char *emu_smem_ptr()
{
    return cur->smem;
}
size_t emu_smem_size()
{
    return cur->smem_bytes;
}

void emu_shfl_exchange(uint64_t mine, uint64_t *out, int partner)
{
    const unsigned w = emu_linear >> 5;
    const unsigned live = std::min(32u, cur->threads - w * 32) - cur->warp_done[w];
    if (live != 32)
        emu_error(
            "__shfl_xor_sync with a full mask in a warp of %u live lanes (block %u,%u,%u warp %u)",
            live, emu_bid.x, emu_bid.y, emu_bid.z, w);
    // Two sets of slots, used in turn: one warp barrier per shuffle suffices, since no lane can
    // write a set again (two shuffles on) before every lane has passed the barrier between.
    const unsigned set = cur->shfl_parity[emu_linear] ^= 1u;
    uint64_t *slots = cur->slots.data() + (size_t) set * cur->threads;
    slots[emu_linear] = mine;
    yield_as(F_WARP);
    *out = slots[(w << 5) + (unsigned) partner];
}

// The scheduler sets the thread's indices before every switch to it (they are the OS thread's,
// shared by all fibers).  Never returns: after a body the fiber waits, DONE, to be resumed for
// the next block or launch (cur then names it).
static void fiber_main(unsigned t)
{
    for (;;) {
        cur->body(cur->body_ctx);
        fibers[t].st = F_DONE;
        cur->warp_done[t >> 5]++;
        to_scheduler(fibers[t]);
    }
}

// POA_EMU_SCHEDULE=reverse runs the threads of a block, between two barriers, from the last to
// the first, and the blocks of a grid from the last to the first (default: forward).  A
// missing barrier between a write and another thread's read of the same location shows in one
// of the two orders whichever thread comes first (README.md, "Races").
static bool schedule_reverse()
{
    static int rev = -1;
    if (rev < 0) {
        const char *v = getenv("POA_EMU_SCHEDULE");
        if (!v || !*v || !strcmp(v, "forward"))
            rev = 0;
        else if (!strcmp(v, "reverse"))
            rev = 1;
        else {
            fprintf(stderr,
                    "cuda emulator: error: POA_EMU_SCHEDULE='%s': expected forward or reverse\n",
                    v);
            exit(2);
        }
    }
    return rev == 1;
}

// Runs fiber t until it reaches a barrier or returns.
static void run_fiber(block_state &b, unsigned t)
{
    emu_linear = t;
    emu_tid = dim3(t % emu_bdim.x, (t / emu_bdim.x) % emu_bdim.y, t / (emu_bdim.x * emu_bdim.y));
    emu_bid = b.bid;
    fiber &f = b.f[t];
    if (f.started) return resume_fiber(f);
    f.started = true;
    start_fiber(f, t);
}

// Runs the block until all its threads are done; opens barriers; reports a deadlock.  One warp
// at a time, as far as it goes: its lanes run in turn to their next barrier, a warp barrier
// opens as soon as every live lane of the warp waits at it, and only when the warp's lanes all
// wait at __syncthreads (or have returned) does the next warp run.  So between two
// __syncthreads every warp runs entirely before or entirely after every other, the two
// extremes of what a GPU may do: a missing __syncthreads shows when the reading warp runs
// before the writing one, or the writing one before a reader of the old value (README.md,
// "Races"; POA_EMU_SCHEDULE=reverse swaps the two cases).
static void schedule(block_state &b)
{
    const unsigned n = b.threads, nw = (n + 31) / 32;
    const bool rev = schedule_reverse();
    for (;;) {
        for (unsigned i = 0; i < nw; i++) {
            const unsigned w = rev ? nw - 1 - i : i, lo = w * 32, hi = std::min(n, lo + 32);
            for (;;) {
                for (unsigned j = 0; j < hi - lo; j++) {
                    const unsigned t = rev ? hi - 1 - j : lo + j;
                    if (b.f[t].st == F_RUN) run_fiber(b, t);
                }
                // no lane of the warp runs now: each waits at a barrier or has returned
                const unsigned waiting = b.warp_waiting[w], live = hi - lo - b.warp_done[w];
                if (!waiting || waiting != live) break;
                for (unsigned t = lo; t < hi; t++)
                    if (b.f[t].st == F_WARP) b.f[t].st = F_RUN;
                b.warp_waiting[w] = 0;
            }
        }
        unsigned done = 0, at_block = 0;
        for (unsigned t = 0; t < n; t++)
            done += b.f[t].st == F_DONE, at_block += b.f[t].st == F_BLOCK;
        if (done == n) return;
        if (at_block != n - done) {
            emu_error("deadlock in block (%u,%u,%u): threads wait at different barriers "
                      "(__syncthreads vs a warp barrier)",
                      b.bid.x, b.bid.y, b.bid.z);
            abort();
        }
        for (unsigned t = 0; t < n; t++)
            if (b.f[t].st == F_BLOCK) b.f[t].st = F_RUN;
    }
}

void emu_run_grid(const emu_launch_cfg &c, const void *kernel, void (*body)(void *), void *ctx)
{
    const unsigned long long threads = (unsigned long long) c.block.x * c.block.y * c.block.z;
    const auto opt = func_smem.find(kernel);
    const size_t smem_max = opt == func_smem.end() ? SMEM_DEFAULT : (size_t) opt->second;
    if (threads == 0 || threads > MAX_THREADS || c.block.z > 64 || c.grid.x == 0 || c.grid.y == 0 ||
        c.grid.z == 0 || c.grid.y > 65535 || c.grid.z > 65535 || c.grid.x > 0x7fffffffu) {
        emu_error("bad launch configuration: grid (%u,%u,%u) block (%u,%u,%u)", c.grid.x, c.grid.y,
                  c.grid.z, c.block.x, c.block.y, c.block.z);
        last_error = cudaErrorInvalidConfiguration;
        return;
    }
    if (c.smem > smem_max) {
        emu_error("dynamic shared memory %zu above the kernel's limit %zu", c.smem, smem_max);
        last_error = cudaErrorInvalidValue;
        return;
    }
    if (threads % 32) emu_error("block of %llu threads: not whole warps", threads);
    while (stacks.size() < threads) stacks.push_back((char *) malloc(STACK));
    emu_gdim = c.grid;
    emu_bdim = c.block;
    block_state b;
    b.threads = (unsigned) threads;
    b.slots.assign(2 * threads, 0);
    b.shfl_parity.assign(threads, 0);
    b.warp_done.assign((threads + 31) / 32, 0);
    b.warp_waiting.assign((threads + 31) / 32, 0);
    b.body = body, b.body_ctx = ctx;
    b.smem_bytes = c.smem;
    b.smem = (unsigned char *) aligned_alloc(256, (c.smem + 256) / 256 * 256);
    cur = &b;
    const bool rev = schedule_reverse();
    for (unsigned iz = 0; iz < c.grid.z; iz++)
        for (unsigned iy = 0; iy < c.grid.y; iy++)
            for (unsigned ix = 0; ix < c.grid.x; ix++) {
                b.bid = rev ? dim3(c.grid.x - 1 - ix, c.grid.y - 1 - iy, c.grid.z - 1 - iz)
                            : dim3(ix, iy, iz);
                memset(b.smem, 0xff, b.smem_bytes);
                for (unsigned t = 0; t < threads; t++) b.f[t].st = F_RUN;
                std::fill(b.warp_done.begin(), b.warp_done.end(), 0u);
                std::fill(b.warp_waiting.begin(), b.warp_waiting.end(), 0u);
                std::fill(b.shfl_parity.begin(), b.shfl_parity.end(), 0);
                schedule(b);
            }
    cur = nullptr;
    free(b.smem);
}

// ------------------------------------------------------------------------- runtime API
static std::mutex mem_lock;
static std::map<const char *, size_t> device_blocks; // emulated device allocations
static size_t device_used;
static int current_device;

static size_t total_memory()
{
    return (size_t) env_int("POA_EMU_MEM_GB", 16) << 30;
}

extern "C" {
cudaError_t cudaGetDeviceCount(int *n)
{
    return *n = env_int("POA_EMU_GPUS", 1), cudaSuccess;
}
cudaError_t cudaGetDevice(int *d)
{
    return *d = current_device, cudaSuccess;
}
cudaError_t cudaSetDevice(int d)
{
    int n;
    cudaGetDeviceCount(&n);
    if (d < 0 || d >= n) return last_error = cudaErrorInvalidDevice;
    current_device = d;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d)
{
    int n;
    cudaGetDeviceCount(&n);
    if (d < 0 || d >= n) return cudaErrorInvalidDevice;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "poa CUDA emulator (CPU)");
    p->totalGlobalMem = total_memory();
    p->major = 9, p->minor = 0;
    p->multiProcessorCount = 2;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int)
{
    *v = a == cudaDevAttrMaxSharedMemoryPerBlockOptin ? SMEM_OPTIN
         : a == cudaDevAttrMultiProcessorCount        ? 2
                                                      : 0;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetStreamPriorityRange(int *least, int *greatest)
{
    if (least) *least = 0;
    if (greatest) *greatest = -5;
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void)
{
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *f, size_t *t)
{
    std::lock_guard<std::mutex> l(mem_lock);
    *t = total_memory();
    *f = *t > device_used ? *t - device_used : 0;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void)
{
    return last_error;
}
const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess:
        return "cudaSuccess";
    case cudaErrorInvalidValue:
        return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
        return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
        return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice:
        return "cudaErrorInvalidDevice";
    case cudaErrorNoKernelImageForDevice:
        return "cudaErrorNoKernelImageForDevice";
    case cudaErrorNotReady:
        return "cudaErrorNotReady";
    default:
        return "cudaErrorUnknown";
    }
}
const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess:
        return "no error";
    case cudaErrorInvalidValue:
        return "invalid argument";
    case cudaErrorMemoryAllocation:
        return "out of memory";
    case cudaErrorInvalidConfiguration:
        return "invalid configuration argument";
    case cudaErrorInvalidDevice:
        return "invalid device ordinal";
    default:
        return "emulated error";
    }
}

cudaError_t cudaMalloc(void **p, size_t n)
{
    std::lock_guard<std::mutex> l(mem_lock);
    if (device_used + n > total_memory()) return *p = NULL, last_error = cudaErrorMemoryAllocation;
    *p = aligned_alloc(256, (n + 255) / 256 * 256 + 256);
    if (!*p) return last_error = cudaErrorMemoryAllocation;
    memset(*p, 0xff, n); // device memory is not zeroed: unwritten floats read as NaN
    device_blocks[(const char *) *p] = n;
    device_used += n;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p)
{
    if (!p) return cudaSuccess;
    std::lock_guard<std::mutex> l(mem_lock);
    auto it = device_blocks.find((const char *) p);
    if (it == device_blocks.end()) return last_error = cudaErrorInvalidValue;
    device_used -= it->second;
    device_blocks.erase(it);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned)
{
    *p = aligned_alloc(256, (n + 255) / 256 * 256 + 256);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaMallocHost(void **p, size_t n)
{
    return cudaHostAlloc(p, n, 0);
}
cudaError_t cudaFreeHost(void *p)
{
    return free(p), cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p)
{
    std::lock_guard<std::mutex> l(mem_lock);
    memset(a, 0, sizeof *a);
    auto it = device_blocks.upper_bound((const char *) p);
    if (it != device_blocks.begin()) {
        --it;
        if ((const char *) p < it->first + it->second) {
            a->type = cudaMemoryTypeDevice;
            a->devicePointer = (void *) p;
            return cudaSuccess;
        }
    }
    a->type = cudaMemoryTypeUnregistered;
    a->hostPointer = (void *) p;
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind)
{
    if (n) memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t)
{
    return cudaMemcpy(d, s, n, k);
}
cudaError_t cudaMemset(void *d, int v, size_t n)
{
    if (n) memset(d, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t)
{
    return cudaMemset(d, v, n);
}

struct CUstream_st {
    int id;
};
struct CUevent_st {
    double t; // host time of the last record, seconds
    int recorded;
};
cudaError_t cudaStreamCreate(cudaStream_t *s)
{
    return *s = new CUstream_st{0}, cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned)
{
    return cudaStreamCreate(s);
}
cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned, int)
{
    return cudaStreamCreate(s);
}
cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    return delete s, cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t)
{
    return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t e, unsigned)
{
    return e ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    return *e = new CUevent_st{0, 0}, cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned)
{
    return cudaEventCreate(e);
}
cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    return delete e, cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t)
{
    if (!e) return cudaErrorInvalidValue;
    e->t =
        std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    e->recorded = 1;
    return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e)
{
    return e ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
    return e ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    if (!a || !b || !a->recorded || !b->recorded) return cudaErrorInvalidValue;
    *ms = (float) ((b->t - a->t) * 1e3);
    return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *f, cudaFuncAttribute a, int v)
{
    if (a == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (v > SMEM_OPTIN) return last_error = cudaErrorInvalidValue;
        func_smem[f] = v;
    }
    return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, const void *)
{
    memset(a, 0, sizeof *a);
    a->binaryVersion = a->ptxVersion = 90;
    a->maxThreadsPerBlock = 1024;
    return cudaSuccess;
}
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, const void *, int, size_t)
{
    return *n = 2, cudaSuccess;
}
} // extern "C"
