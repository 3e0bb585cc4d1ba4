/* data_test_util.h — helpers of the data tests: scratch folders under the build tree, the
 * source tree location, small synthetic images. */
#ifndef POA_TESTS_DATA_UTIL_H
#define POA_TESTS_DATA_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static inline const char *test_build_dir(void)
{
    const char *b = getenv("POA_TOP_BUILDDIR");
    return b && *b ? b : ".";
}

static inline const char *test_src_dir(void)
{
    const char *s = getenv("POA_TOP_SRCDIR");
    return s && *s ? s : "..";
}

static inline void test_mkdir_p(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0777);
            *p = '/';
        }
    mkdir(buf, 0777);
}

/* "<build>/tests/out/data/<name>", created. */
static inline void test_scratch(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/tests/out/data/%s", test_build_dir(), name);
    test_mkdir_p(buf);
}

/* A smooth, colourful w×h RGB test picture with some texture (deterministic). */
static inline void test_picture(uint8_t *rgb, int w, int h, unsigned seed)
{
    uint32_t s = seed * 2654435761u + 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            s = s * 1664525u + 1013904223u;
            int noise = (int) (s >> 28) - 8;
            int r = (x * 255) / (w > 1 ? w - 1 : 1) + noise;
            int g = (y * 255) / (h > 1 ? h - 1 : 1) - noise;
            int b = ((x + y) * 4 + (int) seed * 37) % 256;
            if ((x / 8 + y / 8) % 2) b = 255 - b;
            uint8_t *p = rgb + 3 * ((size_t) y * w + x);
            p[0] = (uint8_t) (r < 0 ? 0 : r > 255 ? 255 : r);
            p[1] = (uint8_t) (g < 0 ? 0 : g > 255 ? 255 : g);
            p[2] = (uint8_t) b;
        }
}

#endif
