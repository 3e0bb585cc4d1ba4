/* timer.h — monotonic wall-clock timers. */
#ifndef POA_COMMON_TIMER_H
#define POA_COMMON_TIMER_H

/* Seconds from an arbitrary origin, CLOCK_MONOTONIC. */
double poa_now(void);

/* Accumulating stopwatch: start/stop pairs add to `total`. */
typedef struct poa_stopwatch {
    double total;
    double t0;
    long count;
} poa_stopwatch;

static inline void poa_stopwatch_start(poa_stopwatch *s)
{
    s->t0 = poa_now();
}
static inline double poa_stopwatch_stop(poa_stopwatch *s)
{
    double dt = poa_now() - s->t0;
    s->total += dt;
    s->count++;
    return dt;
}
static inline void poa_stopwatch_reset(poa_stopwatch *s)
{
    s->total = 0;
    s->count = 0;
}

#endif
