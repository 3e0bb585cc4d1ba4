/* log.h — rank-aware logging.  Rank 0 speaks by default; --verbose makes every rank speak
 * (lines are then prefixed with the rank).  Warnings and errors are printed by any rank. */
#ifndef POA_COMMON_LOG_H
#define POA_COMMON_LOG_H

#include <stdio.h>

typedef enum { POA_LOG_ERROR = 0, POA_LOG_WARN, POA_LOG_INFO, POA_LOG_DEBUG } poa_log_level;

/* Set by the programs after MPI_Init (defaults: rank 0 of 1, info level, quiet ranks). */
void poa_log_init(int rank, int world_size, int all_ranks_verbose);
void poa_log_set_level(poa_log_level level);
int poa_log_rank(void);
int poa_log_world_size(void);
/* Whether this rank prints info-level lines. */
int poa_log_speaks(void);

void poa_log(poa_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define poa_info(...)  poa_log(POA_LOG_INFO, __VA_ARGS__)
#define poa_warn(...)  poa_log(POA_LOG_WARN, __VA_ARGS__)
#define poa_error(...) poa_log(POA_LOG_ERROR, __VA_ARGS__)
#define poa_debug(...) poa_log(POA_LOG_DEBUG, __VA_ARGS__)

/* Progress for long work: a redrawn bar on a TTY, a line every `period_s` seconds otherwise.
 * Only rank 0 (or every rank when verbose) prints. */
typedef struct poa_progress {
    const char *what;
    long long total;
    double t_start, t_last;
    double period_s;
    int tty;
} poa_progress;
void poa_progress_begin(poa_progress *p, const char *what, long long total, double period_s);
void poa_progress_update(poa_progress *p, long long done, const char *extra);
void poa_progress_end(poa_progress *p, long long done, const char *extra);

#endif
