/* params.c — see params.h. */
#include "tensor/params.h"
#include "common/poa_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void poa_params_init(poa_param_table *t)
{
    memset(t, 0, sizeof *t);
}

void poa_params_free(poa_param_table *t)
{
    free(t->p);
    memset(t, 0, sizeof *t);
}

int poa_params_add(poa_param_table *t, const char *module, const char *name, int ndim,
                   const int64_t *shape, int block, int bucket, poa_init_rule init, double init_arg,
                   unsigned flags, float lr_mult, float wd_mult)
{
    POA_CHECK(ndim >= 1 && ndim <= POA_PARAM_MAX_DIMS, "parameter %s: bad ndim %d", name, ndim);
    POA_CHECK(strlen(name) < POA_PARAM_NAME_MAX, "parameter name too long: %s", name);
    POA_CHECK(poa_params_find(t, name) < 0, "parameter %s declared twice", name);
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->p = poa_xrealloc(t->p, (size_t) t->cap * sizeof *t->p);
    }
    if (t->n > 0)
        POA_CHECK(bucket >= t->p[t->n - 1].bucket,
                  "parameter %s: buckets must be declared in order", name);
    poa_param_desc *d = &t->p[t->n];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    d->module = module;
    d->ndim = ndim;
    d->numel = 1;
    for (int i = 0; i < ndim; i++) {
        POA_CHECK(shape[i] > 0, "parameter %s: dimension %d is %lld", name, i,
                  (long long) shape[i]);
        d->shape[i] = shape[i];
        d->numel *= (size_t) shape[i];
    }
    d->offset =
        (t->total + POA_PARAM_ALIGN_FLOATS - 1) / POA_PARAM_ALIGN_FLOATS * POA_PARAM_ALIGN_FLOATS;
    d->block = block;
    d->bucket = bucket;
    d->init = init;
    d->init_arg = init_arg;
    d->flags = flags;
    d->lr_mult = lr_mult;
    d->wd_mult = wd_mult;
    t->total = d->offset + d->numel;
    if (bucket + 1 > t->n_buckets) t->n_buckets = bucket + 1;
    return t->n++;
}

int poa_params_find(const poa_param_table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->p[i].name, name) == 0) return i;
    return -1;
}

void poa_params_bucket_range(const poa_param_table *t, int bucket, size_t *begin, size_t *end)
{
    size_t b = (size_t) -1, e = 0;
    for (int i = 0; i < t->n; i++) {
        if (t->p[i].bucket != bucket) continue;
        if (t->p[i].offset < b) b = t->p[i].offset;
        if (t->p[i].offset + t->p[i].numel > e) e = t->p[i].offset + t->p[i].numel;
    }
    if (b == (size_t) -1) b = e = 0;
    *begin = b;
    *end = e;
}

void poa_params_shape_str(const poa_param_desc *d, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t) snprintf(buf + k, n - k, "[");
    for (int i = 0; i < d->ndim && k < n; i++)
        k += (size_t) snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long) d->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}
