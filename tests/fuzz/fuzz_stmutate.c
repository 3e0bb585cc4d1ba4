/* fuzz_stmutate.c — see fuzz_stmutate.h.  Built into fuzz_extracted_st of a fuzzing build only. */
#include "fuzz_stmutate.h"
#include "fuzz_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SPANS 4096

/* A run of bytes of the header: a number or the inside of a string literal. */
typedef struct span {
    size_t at, len;
} span;

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t) (v >> (8 * i));
}

/* Runs of decimal digits (numbers, and the digits inside names such as "blocks.0.norm1"). */
static int find_numbers(const uint8_t *h, size_t n, span *out)
{
    int k = 0;
    for (size_t i = 0; i < n && k < MAX_SPANS; i++) {
        if (h[i] < '0' || h[i] > '9') continue;
        size_t j = i;
        while (j < n && h[j] >= '0' && h[j] <= '9') j++;
        out[k++] = (span){i, j - i};
        i = j;
    }
    return k;
}

/* The insides of the string literals (between the quotes; escapes skipped over). */
static int find_strings(const uint8_t *h, size_t n, span *out)
{
    int k = 0;
    for (size_t i = 0; i < n && k < MAX_SPANS; i++) {
        if (h[i] != '"') continue;
        size_t j = i + 1;
        while (j < n && h[j] != '"') j += h[j] == '\\' ? 2 : 1;
        if (j >= n) break;
        out[k++] = (span){i + 1, j - i - 1};
        i = j;
    }
    return k;
}

/* A boundary value, or a neighbour of the number at s, as decimal text. */
static void number_text(fuzz_rng *r, const uint8_t *s, size_t len, char *out, size_t cap)
{
    static const char *const fixed[] = {"0",
                                        "1",
                                        "2",
                                        "3",
                                        "7",
                                        "8",
                                        "16",
                                        "17",
                                        "32",
                                        "64",
                                        "127",
                                        "128",
                                        "129",
                                        "32767",
                                        "32768",
                                        "32769",
                                        "65536",
                                        "2147483647",
                                        "2147483648",
                                        "4294967295",
                                        "4294967296",
                                        "100000000",
                                        "100000001",
                                        "9223372036854775807",
                                        "9223372036854775808",
                                        "18446744073709551615",
                                        "18446744073709551616",
                                        "99999999999999999999999",
                                        "-1",
                                        "-0",
                                        "00",
                                        "1e3",
                                        "0.5",
                                        "1.0",
                                        ""};
    if (fuzz_rng_below(r, 2)) {
        snprintf(out, cap, "%s", fixed[fuzz_rng_below(r, sizeof fixed / sizeof fixed[0])]);
        return;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 20; i++) v = v * 10 + (uint64_t) (s[i] - '0');
    static const int64_t step[] = {1, -1, 4, -4, 8, -8};
    switch (fuzz_rng_below(r, 4)) {
    case 0:
        v *= 2;
        break;
    case 1:
        v /= 2;
        break;
    default: /* wrapping on purpose */
        v += (uint64_t) step[fuzz_rng_below(r, sizeof step / sizeof step[0])];
    }
    snprintf(out, cap, "%" PRIu64, v);
}

/* A name the format or poa uses, or another string of the same header. */
static void string_text(fuzz_rng *r, const uint8_t *h, const span *strings, int n, char *out,
                        size_t cap)
{
    static const char *const words[] = {"F32",
                                        "F16",
                                        "BF16",
                                        "F64",
                                        "I64",
                                        "U8",
                                        "BOOL",
                                        "F8_E4M3",
                                        "",
                                        "__metadata__",
                                        "dtype",
                                        "shape",
                                        "data_offsets",
                                        "format",
                                        "pt",
                                        "poa_format",
                                        "poa-extracted-model",
                                        "poa-checkpoint",
                                        "poa_format_version",
                                        "embed_dim",
                                        "depth",
                                        "num_heads",
                                        "head_dim",
                                        "patch_size",
                                        "img_size",
                                        "blocks",
                                        "ln_eps",
                                        "source_depth",
                                        "config_yaml",
                                        "cls_token",
                                        "pos_embed",
                                        "norm.weight",
                                        "blocks.0.attn.qkv.weight",
                                        "0,0",
                                        "0,1,2",
                                        "nan",
                                        "inf",
                                        "1e-300",
                                        "\\u0000",
                                        "\\ud800",
                                        "\\u00e9"};
    if (n > 0 && fuzz_rng_below(r, 3) == 0) { /* another string of the header: duplicates */
        const span *o = &strings[fuzz_rng_below(r, (uint64_t) n)];
        size_t len = o->len < cap - 1 ? o->len : cap - 1;
        memcpy(out, h + o->at, len);
        out[len] = '\0';
        return;
    }
    snprintf(out, cap, "%s", words[fuzz_rng_below(r, sizeof words / sizeof words[0])]);
}

/* header[0..n) with [at, at + len) replaced by text, into out (cap bytes); the new length, or
 * 0 when it does not fit. */
static size_t splice(const uint8_t *h, size_t n, span s, const char *text, uint8_t *out, size_t cap)
{
    size_t t = strlen(text), m = n - s.len + t;
    if (m > cap) return 0;
    memcpy(out, h, s.at);
    memcpy(out + s.at, text, t);
    memcpy(out + s.at + t, h + s.at + s.len, n - s.at - s.len);
    return m;
}

/* A new header for the image: libFuzzer's bytes, a number or a string replaced.  Returns its
 * length (0: no mutation). */
static size_t new_header(fuzz_rng *r, const uint8_t *h, size_t n, uint8_t *out, size_t cap)
{
    static span spans[MAX_SPANS];
    char text[256];
    switch (fuzz_rng_below(r, 3)) {
    case 0: {
        /* LLVMFuzzerMutate needs room (with none it writes one byte and returns 1) */
        if (n > cap || cap == 0) return 0;
        memcpy(out, h, n);
        const size_t m = LLVMFuzzerMutate(out, n, cap);
        return m <= cap ? m : 0;
    }
    case 1: {
        int k = find_numbers(h, n, spans);
        if (k == 0) return 0;
        span s = spans[fuzz_rng_below(r, (uint64_t) k)];
        number_text(r, h + s.at, s.len, text, sizeof text);
        return splice(h, n, s, text, out, cap);
    }
    default: {
        int k = find_strings(h, n, spans);
        if (k == 0) return 0;
        span s = spans[fuzz_rng_below(r, (uint64_t) k)];
        string_text(r, h, spans, k, text, sizeof text);
        return splice(h, n, s, text, out, cap);
    }
    }
}

/* The header length field set to a boundary value; the bytes stay. */
static void new_length(fuzz_rng *r, uint8_t *data, size_t size, uint64_t n)
{
    const uint64_t v[] = {n + 1,     n - 1,     n + 8,      n - 8,        0,
                          1,         7,         size - 8,   size - 7,     size,
                          100000000, 100000001, 1ull << 32, (1ull << 63), UINT64_MAX};
    put_le64(data, v[fuzz_rng_below(r, sizeof v / sizeof v[0])]);
}

/* The data buffer [at, size) cut short, lengthened or changed; returns the new size. */
static size_t new_data(fuzz_rng *r, uint8_t *data, size_t at, size_t size, size_t max_size)
{
    size_t body = size - at;
    switch (fuzz_rng_below(r, 3)) {
    case 0: /* cut: by one element, by a few, or to nothing */
        if (body == 0) return size;
        return size - (fuzz_rng_below(r, 2) ? 1 + fuzz_rng_below(r, body) : body < 4 ? body : 4);
    case 1: { /* longer */
        size_t add = 1 + fuzz_rng_below(r, 64);
        if (size + add > max_size) return size;
        for (size_t i = 0; i < add; i++) data[size + i] = (uint8_t) fuzz_rng_next(r);
        return size + add;
    }
    default:
        for (int k = (int) fuzz_rng_below(r, 4) + 1; k > 0 && body > 0; k--)
            data[at + fuzz_rng_below(r, body)] ^= (uint8_t) (1 + fuzz_rng_below(r, 255));
        return size;
    }
}

size_t fuzz_st_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
    const char *raw = getenv("POA_FUZZ_RAW");
    if (raw && raw[0] == '1') return LLVMFuzzerMutate(data, size, max_size);
    fuzz_rng r = {0x9e3779b97f4a7c15ull ^ seed};
    if (size < 8) return LLVMFuzzerMutate(data, size, max_size);
    uint64_t n = get_le64(data);
    if (n > size - 8) { /* not a safetensors image (any more): its bytes, or its length field */
        if (fuzz_rng_below(&r, 2)) return LLVMFuzzerMutate(data, size, max_size);
        put_le64(data, size - 8);
        return size;
    }
    switch (fuzz_rng_below(&r, 8)) {
    case 0:
        new_length(&r, data, size, n);
        return size;
    case 1:
    case 2:
        return new_data(&r, data, 8 + (size_t) n, size, max_size);
    default: {
        size_t body = size - 8 - (size_t) n, cap = max_size - 8 - body;
        uint8_t *h = malloc(cap + 1);
        size_t m = new_header(&r, data + 8, (size_t) n, h, cap);
        if (m > 0) {
            memmove(data + 8 + m, data + 8 + n, body);
            memcpy(data + 8, h, m);
            put_le64(data, m);
            size = 8 + m + body;
        }
        free(h);
        return size;
    }
    }
}
