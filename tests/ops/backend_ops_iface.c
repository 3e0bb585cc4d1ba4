/* backend_ops_iface.c — the device interface (poa_backend_iface) in tests/ops/test_backend_ops:
 * identity, memory, copies, the activation conversions, the transfer stream and events.  Every
 * other test goes through alloc / upload / download; these check the entries themselves at odd
 * offsets and sizes, with guards around what they write. */
#include "backend_ops.h"

#include "common/bf16.h"
#include "common/poa_error.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* describe: one line starting with the backend's name, always terminated within n. */
void bo_check_describe(bo_ctx *c)
{
    poa_backend *be = c->be;
    bo_case k;
    bo_case_begin(&k, c, "describe: the backend's name first, terminated within the buffer");
    char buf[512], small[8];
    memset(buf, 'x', sizeof buf);
    memset(small, 'x', sizeof small);
    be->iface->describe(be, buf, sizeof buf);
    be->iface->describe(be, small, sizeof small);
    if (!memchr(buf, 0, sizeof buf) || !memchr(small, 0, sizeof small))
        bo_fail(&k, "describe does not terminate its output within n");
    else if (strncmp(buf, be->name, strlen(be->name)) != 0)
        bo_fail(&k, "describe gives \"%s\": it should start with \"%s\"", buf, be->name);
    else
        bo_note(&k, "%s", buf);
    bo_case_end(&k);
}

void bo_check_mem_info(bo_ctx *c)
{
    poa_backend *be = c->be;
    bo_case k;
    bo_case_begin(&k, c, "mem_info: 0 < free <= total");
    size_t fr = 0, tot = 0;
    be->iface->mem_info(be, &fr, &tot);
    if (!(tot > 0 && fr > 0 && fr <= tot))
        bo_fail(&k, "free %zu total %zu", fr, tot);
    else
        bo_note(&k, "free %.2f GiB of %.2f GiB", fr / 1073741824.0, tot / 1073741824.0);
    bo_case_end(&k);
}

/* A second backend of the same kind, used and destroyed while this one lives on. */
void bo_check_destroy(bo_ctx *c)
{
    bo_case k;
    bo_case_begin(&k, c,
                  "destroy (through poa_backend_destroy): a second %s backend, used and "
                  "destroyed; this one still works",
                  c->name);
    char err[256];
    poa_backend *b2 = bo_backend_create(c->name, &c->opts, err, sizeof err);
    if (!b2) {
        bo_fail(&k, "a second backend could not be created: %s", err);
        bo_case_end(&k);
        return;
    }
    float x[5] = {1, 2, 3, 4, 5}, y[5] = {0};
    float *d = b2->iface->alloc(b2, sizeof x);
    b2->iface->upload(b2, d, x, sizeof x);
    b2->nn->scale(b2, d, 2.0f, 5);
    b2->iface->download(b2, y, d, sizeof y);
    b2->iface->free(b2, d);
    poa_backend_destroy(b2);
    for (int i = 0; i < 5; i++)
        if (y[i] != 2 * x[i]) bo_fail(&k, "the second backend's scale gave %g for %g", y[i], x[i]);
    poa_backend *be = c->be;
    float *e = be->iface->alloc(be, sizeof x);
    be->iface->upload(be, e, x, sizeof x);
    be->iface->download(be, y, e, sizeof y);
    be->iface->free(be, e);
    if (memcmp(x, y, sizeof x) != 0) bo_fail(&k, "this backend's memory broke");
    bo_case_end(&k);
}

/* alloc: 256-byte aligned, distinct, each keeping what was written to all of its bytes. */
void bo_check_alloc(bo_ctx *c)
{
    poa_backend *be = c->be;
    bo_case k;
    bo_case_begin(&k, c, "alloc/free: 256-byte aligned, disjoint (sizes 1 B ... 4 MiB + 3)");
    const size_t sizes[] = {1, 3, 255, 256, 257, 4096, 1 << 20, (4 << 20) + 3};
    enum { NS = sizeof sizes / sizeof *sizes };
    unsigned char *dev[NS], *pat[NS], *back = poa_xmalloc((4 << 20) + 3);
    for (int i = 0; i < NS; i++) {
        dev[i] = be->iface->alloc(be, sizes[i]);
        if ((uintptr_t) dev[i] % 256)
            bo_fail(&k, "alloc(%zu) = %p: not 256-byte aligned", sizes[i], (void *) dev[i]);
        pat[i] = poa_xmalloc(sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++) pat[i][j] = (unsigned char) (j * 131 + i * 7 + 1);
        be->iface->upload(be, dev[i], pat[i], sizes[i]);
    }
    for (int i = 0; i < NS; i++) {
        be->iface->download(be, back, dev[i], sizes[i]);
        if (memcmp(back, pat[i], sizes[i]) != 0)
            bo_fail(&k, "allocation %d (%zu bytes) did not keep its bytes", i, sizes[i]);
        be->iface->free(be, dev[i]);
        free(pat[i]);
    }
    free(back);
    bo_case_end(&k);
}

void bo_check_host_alloc(bo_ctx *c)
{
    poa_backend *be = c->be;
    bo_case k;
    bo_case_begin(&k, c, "host_alloc/host_free: writable host memory (1 B, 1 MiB + 5)");
    const size_t sizes[] = {1, (1 << 20) + 5};
    for (int i = 0; i < 2; i++) {
        unsigned char *h = be->iface->host_alloc(be, sizes[i]);
        if (!h) {
            bo_fail(&k, "host_alloc(%zu) returned NULL", sizes[i]);
            continue;
        }
        memset(h, 0x5a, sizes[i]);
        for (size_t j = 0; j < sizes[i]; j += 4093)
            if (h[j] != 0x5a) bo_fail(&k, "host memory does not keep a byte");
        be->iface->host_free(be, h);
    }
    bo_case_end(&k);
}

/* upload / download / copy / zero at odd offsets and sizes; bytes around the target keep
 * theirs. */
void bo_check_copies(bo_ctx *c)
{
    poa_backend *be = c->be;
    const poa_backend_iface *io = be->iface;
    const size_t N = (1 << 20) + 64;
    const size_t cases[][3] = {/* offset, bytes, copy destination offset */
                               {0, 1, 5},
                               {1, 7, 64},
                               {3, 1000, 2001},
                               {13, (1 << 19) + 3, (1 << 19) + 17}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const size_t off = cases[i][0], n = cases[i][1], dst = cases[i][2];
        bo_case k;
        bo_case_begin(&k, c,
                      "upload/download/copy/zero: %zu bytes at offset %zu, copy to offset "
                      "%zu",
                      n, off, dst);
        unsigned char *h = poa_xmalloc(N), *src = poa_xmalloc(n), *back = poa_xmalloc(N);
        for (size_t j = 0; j < N; j++) h[j] = (unsigned char) (j * 29 + 3);
        for (size_t j = 0; j < n; j++) src[j] = (unsigned char) (j * 71 + 11);
        unsigned char *d = io->alloc(be, N);
        io->upload(be, d, h, N);
        io->upload(be, d + off, src, n); /* h with src at off */
        memcpy(h + off, src, n);
        io->download(be, back, d, N);
        if (memcmp(back, h, N)) bo_fail(&k, "upload at offset %zu: memory differs", off);
        io->download(be, back, d + off, n);
        if (memcmp(back, src, n)) bo_fail(&k, "download at offset %zu differs", off);
        io->copy(be, d + dst, d + off, n);
        memmove(h + dst, h + off, n);
        io->download(be, back, d, N);
        if (memcmp(back, h, N)) bo_fail(&k, "copy %zu -> %zu: memory differs", off, dst);
        io->zero(be, d + off + 1, n > 2 ? n - 2 : 0);
        if (n > 2) memset(h + off + 1, 0, n - 2);
        io->download(be, back, d, N);
        if (memcmp(back, h, N)) bo_fail(&k, "zero at offset %zu: memory differs", off + 1);
        io->free(be, d);
        free(h), free(src), free(back);
        bo_case_end(&k);
    }
}

/* act_upload rounds to nearest even (bf16: exactly poa_bf16_from_f32's bits in memory),
 * act_download gives the values back exactly; both at unaligned element offsets. */
void bo_check_act_transfer(bo_ctx *c)
{
    poa_backend *be = c->be;
    const poa_backend_iface *io = be->iface;
    const size_t ns[] = {1, 16, 1001, 100003};
    for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
        const size_t n = ns[t], off = t % 2 ? 3 : 0;
        bo_case k;
        bo_case_begin(&k, c,
                      "act_upload/act_download n=%zu at element %zu (nearest even; ties, "
                      "Inf, NaN, subnormals, FLT_MAX)",
                      n, off);
        float *x = poa_xmalloc(sizeof(float) * n), *y = poa_xmalloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) x[i] = (float) sin(0.7 * (double) i + 0.3) * 1000;
        const float sp[] = {1 + 0x1p-8f, 1 + 3 * 0x1p-8f, -0.0f,       INFINITY, -INFINITY, NAN,
                            1e-40f,      FLT_MAX,         0x1.fep127f, 65504.0f, 1e-3f,     -7.0f};
        for (size_t i = 0; i < n && i < sizeof sp / sizeof *sp; i++) x[i] = sp[i];
        poa_act *d = io->alloc(be, poa_act_bytes(be, n + off + 1));
        io->act_upload(be, poa_act_at(be, d, off), x, n);
        io->act_download(be, y, poa_act_at(be, d, off), n);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < n; i++) {
            const double want = bo_round_act(c, x[i]);
            const int same =
                isnan(want) ? isnan(y[i]) : y[i] == want && !signbit(y[i]) == !signbit(want);
            if (!same && !bad++) first = i;
        }
        if (bad)
            bo_fail(&k,
                    "%zu values differ from the rounded input; the first [%zu]: %.9g -> %.9g, "
                    "want %.9g",
                    bad, first, x[first], y[first], bo_round_act(c, x[first]));
        /* the storage format: bf16 bits or fp32 bits */
        unsigned char *raw = poa_xmalloc(poa_act_bytes(be, n));
        io->download(be, raw, poa_act_at(be, d, off), poa_act_bytes(be, n));
        for (size_t i = 0; i < n; i++) {
            if (be->act_dtype == POA_DT_BF16) {
                uint16_t u;
                memcpy(&u, raw + 2 * i, 2);
                if (u != poa_bf16_from_f32(x[i])) {
                    bo_fail(&k, "element %zu stored as 0x%04x, want 0x%04x (bf16 of %.9g)", i, u,
                            poa_bf16_from_f32(x[i]), x[i]);
                    break;
                }
            } else if (memcmp(raw + 4 * i, &x[i], 4) != 0) {
                bo_fail(&k, "element %zu not stored as its fp32 bits", i);
                break;
            }
        }
        io->free(be, d);
        free(x), free(y), free(raw);
        bo_case_end(&k);
    }
}

/* upload_async → stream_wait → an op reads it; an op → download_async sees its result;
 * act_download after an upload_async ordered by the event. */
void bo_check_async(bo_ctx *c)
{
    poa_backend *be = c->be;
    const poa_backend_iface *io = be->iface;
    const size_t n = (1 << 18) + 3;
    bo_case k;
    bo_case_begin(&k, c,
                  "upload_async/download_async n=%zu floats with events: stream_wait "
                  "orders an op after the upload, download_async after the op",
                  n);
    float *h = io->host_alloc(be, sizeof(float) * n), *back = io->host_alloc(be, sizeof(float) * n);
    for (size_t i = 0; i < n; i++) h[i] = (float) i;
    float *d = io->alloc(be, sizeof(float) * n), *e = io->alloc(be, sizeof(float) * n);
    poa_event *up = io->event_create(be), *down = io->event_create(be);
    io->zero(be, d, sizeof(float) * n);
    io->upload_async(be, d, h, sizeof(float) * n, up);
    io->stream_wait(be, up);
    be->nn->scale(be, d, 2.0f, n); /* reads the uploaded values */
    io->copy(be, e, d, sizeof(float) * n);
    be->nn->axpy(be, e, 1.0f, d, n); /* e = 4 x */
    io->download_async(be, back, e, sizeof(float) * n, down);
    io->event_synchronize(be, down);
    io->event_synchronize(be, up);
    for (size_t i = 0; i < n; i++)
        if (back[i] != 4.0f * (float) i) {
            bo_fail(&k, "element %zu: got %g want %g", i, back[i], 4.0 * i);
            break;
        }
    /* the host buffer may be rewritten once the upload's event completed */
    for (size_t i = 0; i < n; i++) h[i] = 1.0f;
    io->upload_async(be, d, h, sizeof(float) * n, up);
    io->stream_wait(be, up);
    io->download_async(be, back, d, sizeof(float) * n, down);
    io->event_synchronize(be, down);
    for (size_t i = 0; i < n; i++)
        if (back[i] != 1.0f) {
            bo_fail(&k, "second round, element %zu: got %g want 1", i, back[i]);
            break;
        }
    io->synchronize(be);
    io->event_destroy(be, up), io->event_destroy(be, down);
    io->free(be, d), io->free(be, e);
    io->host_free(be, h), io->host_free(be, back);
    bo_case_end(&k);
}

/* event_elapsed: finite, ≥ 0, and larger around more work. */
void bo_check_events(bo_ctx *c)
{
    poa_backend *be = c->be;
    const poa_backend_iface *io = be->iface;
    bo_case k;
    bo_case_begin(&k, c,
                  "event_create/record/synchronize/elapsed/destroy, synchronize: "
                  "elapsed finite, >= 0, larger around 50 GEMMs than around none");
    const int n = 256;
    float *a = io->alloc(be, sizeof(float) * n * n), *b = io->alloc(be, sizeof(float) * n * n);
    io->zero(be, a, sizeof(float) * n * n);
    poa_event *t0 = io->event_create(be), *t1 = io->event_create(be), *t2 = io->event_create(be);
    io->event_record(be, t0);
    io->event_record(be, t1);
    for (int i = 0; i < 50; i++)
        be->nn->gemm(be, POA_NO_TRANS, POA_NO_TRANS, n, n, n, 1.0f, a, n, a, n, 0.0f, b, n);
    io->event_record(be, t2);
    io->event_synchronize(be, t2);
    const double e0 = io->event_elapsed(be, t0, t1), e1 = io->event_elapsed(be, t1, t2);
    if (!(isfinite(e0) && isfinite(e1) && e0 >= 0 && e1 >= 0 && e1 > e0))
        bo_fail(&k, "elapsed: nothing %.3g s, 50 GEMMs of %d^3 %.3g s", e0, n, e1);
    else
        bo_note(&k, "elapsed: nothing %.3g s, 50 GEMMs of %d^3 %.3g s", e0, n, e1);
    io->synchronize(be);
    io->event_destroy(be, t0), io->event_destroy(be, t1), io->event_destroy(be, t2);
    io->free(be, a), io->free(be, b);
    bo_case_end(&k);
}

/* The comm layer's handle: NULL on a backend whose memory is host memory (the CPU), a stream
 * on a device; is_host says 1 on the CPU backend, and where it says 1 a pointer from alloc
 * reads directly. */
void bo_check_native_stream(bo_ctx *c)
{
    poa_backend *be = c->be;
    bo_case k;
    bo_case_begin(&k, c,
                  "native_stream: NULL exactly on host backends; is_host: 1 on the CPU, "
                  "memory then readable directly");
    const int host = be->iface->is_host(be);
    void *s = be->iface->native_stream(be);
    if (host != (s == NULL)) bo_fail(&k, "native_stream %p with is_host %d", s, host);
    if (!strcmp(be->name, "cpu") && !host) bo_fail(&k, "is_host 0 on the CPU backend");
    if (host) {
        float x = 3.5f, *d = be->iface->alloc(be, sizeof x);
        be->iface->upload(be, d, &x, sizeof x);
        if (*d != 3.5f) bo_fail(&k, "is_host but the uploaded value does not read back directly");
        be->iface->free(be, d);
    }
    bo_case_end(&k);
}

/* ------------------------------------------------------------------------ perf */
typedef struct perf_copy {
    int what; /* 0 upload, 1 download, 2 copy, 3 zero, 4 act_upload, 5 act_download */
    size_t bytes;
    void *d, *e, *h;
} perf_copy;

static void perf_copy_run(poa_backend *be, void *p)
{
    const perf_copy *q = p;
    const poa_backend_iface *io = be->iface;
    const size_t n = q->bytes / 4;
    switch (q->what) {
    case 0:
        io->upload(be, q->d, q->h, q->bytes);
        break;
    case 1:
        io->download(be, q->h, q->d, q->bytes);
        break;
    case 2:
        io->copy(be, q->e, q->d, q->bytes);
        break;
    case 3:
        io->zero(be, q->d, q->bytes);
        break;
    case 4:
        io->act_upload(be, q->d, q->h, n);
        break;
    case 5:
        io->act_download(be, q->h, q->d, n);
        break;
    }
}

/* 64 MiB each way, host side pageable (the synchronous calls' contract). */
static void perf_copy_ops(bo_ctx *c, int first, int last)
{
    static const char *names[] = {"upload", "download",   "copy",
                                  "zero",   "act_upload", "act_download"};
    const size_t bytes = (size_t) 64 << 20;
    perf_copy q = {0, bytes, bo_perf_alloc(c, BO_BYTES, bytes, 0, 0),
                   bo_perf_alloc(c, BO_BYTES, bytes, 0, 0), poa_xcalloc(bytes, 1)};
    const char *op = c->op;
    for (int w = first; w <= last; w++) {
        q.what = w;
        c->op = names[w];
        const double t = bo_time(c, perf_copy_run, &q);
        const double moved = w >= 4 ? (double) bytes / 4 * (4 + c->be->act_size) : (double) bytes;
        bo_perf_line(c, w >= 4 ? "16 Mi fp32 values" : "64 MiB", t, moved, 0);
    }
    c->op = op;
    bo_perf_free(c, q.d), bo_perf_free(c, q.e);
    free(q.h);
}

void bo_perf_copies(bo_ctx *c)
{
    perf_copy_ops(c, 0, 3);
}

void bo_perf_act_transfer(bo_ctx *c)
{
    perf_copy_ops(c, 4, 5);
}
