/* log.c — see log.h. */
#include "common/log.h"
#include "common/timer.h"

#include <stdarg.h>
#include <unistd.h>

static int log_rank = 0, log_size = 1, log_all = 0;
static poa_log_level log_level = POA_LOG_INFO;

void poa_log_init(int rank, int world_size, int all_ranks_verbose)
{
    log_rank = rank;
    log_size = world_size;
    log_all = all_ranks_verbose;
}

void poa_log_set_level(poa_log_level level)
{
    log_level = level;
}
int poa_log_rank(void)
{
    return log_rank;
}
int poa_log_world_size(void)
{
    return log_size;
}
int poa_log_speaks(void)
{
    return log_rank == 0 || log_all;
}

void poa_log(poa_log_level level, const char *fmt, ...)
{
    if (level > log_level) return;
    if (level >= POA_LOG_INFO && !poa_log_speaks()) return;
    FILE *f = level <= POA_LOG_WARN ? stderr : stdout;
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    const char *tag = level == POA_LOG_ERROR ? "error: " : level == POA_LOG_WARN ? "warning: " : "";
    if (log_size > 1 && (log_all || level <= POA_LOG_WARN))
        fprintf(f, "[rank %d] %s%s\n", log_rank, tag, buf);
    else
        fprintf(f, "%s%s\n", tag, buf);
    fflush(f);
}

void poa_progress_begin(poa_progress *p, const char *what, long long total, double period_s)
{
    p->what = what;
    p->total = total;
    p->t_start = p->t_last = poa_now();
    p->period_s = period_s > 0 ? period_s : 10.0;
    p->tty = isatty(STDOUT_FILENO);
}

static void progress_print(poa_progress *p, long long done, const char *extra, int final)
{
    double el = poa_now() - p->t_start;
    double rate = el > 0 ? done / el : 0;
    double frac = p->total > 0 ? (double) done / p->total : 0;
    double eta = rate > 0 && p->total > 0 ? (p->total - done) / rate : 0;
    if (p->tty) {
        int w = 30, fill = (int) (frac * w + 0.5);
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = '\0';
        printf("\r%s [%s] %lld/%lld %.1f/s ETA %.0fs %s%s", p->what, bar, done, p->total, rate, eta,
               extra ? extra : "", final ? "\n" : "");
    } else {
        printf("%s: %lld/%lld (%.1f%%) %.1f/s elapsed %.0fs ETA %.0fs %s\n", p->what, done,
               p->total, 100 * frac, rate, el, eta, extra ? extra : "");
    }
    fflush(stdout);
}

void poa_progress_update(poa_progress *p, long long done, const char *extra)
{
    if (!poa_log_speaks()) return;
    double now = poa_now();
    double period = p->tty ? 0.2 : p->period_s;
    if (now - p->t_last < period) return;
    p->t_last = now;
    progress_print(p, done, extra, 0);
}

void poa_progress_end(poa_progress *p, long long done, const char *extra)
{
    if (!poa_log_speaks()) return;
    progress_print(p, done, extra, 1);
}
