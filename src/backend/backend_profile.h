/* backend_profile.h — where a step's time goes, op by op, on any backend (benchmarks:
 * bench_step --profile, bench_model --profile; src/backend/README.md, "Profiling").
 *
 * poa_profile_attach() puts timing wrappers in front of every op of a backend's tables (the
 * layer and train ops, and the interface's copy and zero): each call is timed between two
 * events recorded on the compute stream around it, so on a GPU the figures are device time of
 * the op's kernels, on the CPU wall time (its events are timestamps).  The events come from a
 * pool created at attach time: nothing is allocated inside a step.  After a step,
 * poa_profile_collect() waits for the device and adds the pairs' times to the op's totals; a
 * step with more ops than the pool holds times the first ones and counts the rest as untimed.
 *
 * With a host clock instead (poa_profile_attach's `clock`, for backends whose ops run before
 * they return), each call is timed on that clock directly: bench_model's thread-CPU-time mode.
 *
 * One profiled backend at a time per process; ops must be called from one thread.  The tables
 * are restored by poa_profile_detach().  GEMMs are also kept per shape (transposes, M, N, K,
 * kind) for their TFLOP/s.
 */
#ifndef POA_BACKEND_PROFILE_H
#define POA_BACKEND_PROFILE_H

#include "backend/backend.h"

#include <stdio.h>

typedef struct poa_profile poa_profile;

/* Wraps be's tables.  events: the pool's size in op calls per step (0: 16384); clock: NULL for
 * events, else a host clock in seconds.  Fatal if a backend is already profiled. */
poa_profile *poa_profile_attach(poa_backend *be, int events, double (*clock)(void));
/* Ends a profiled step: synchronises the backend, adds the recorded times, frees the pool for
 * the next step.  steps counts the calls. */
void poa_profile_collect(poa_profile *p);
/* The table: per op, calls and milliseconds per step, share of `step_seconds` (the mean step
 * time measured by the caller; 0: share of the ops' sum), TFLOP/s of the GEMMs; then the
 * `top_shapes` GEMM shapes that took longest (0: none); then what the ops leave of the step
 * ("outside ops": host gaps, waits for communication, what no op covers). */
void poa_profile_report(const poa_profile *p, FILE *out, double step_seconds, int top_shapes);
/* Milliseconds per step of one op by name (its table entry's name, e.g. "act_gemm_bias"); -1
 * for an unknown name.  For tests and short summaries. */
double poa_profile_op_ms(const poa_profile *p, const char *op);
/* Op calls per step that were timed, and those past the pool's size that were not. */
double poa_profile_calls_per_step(const poa_profile *p);
long long poa_profile_untimed(const poa_profile *p);
/* Restores the backend's tables and frees everything. */
void poa_profile_detach(poa_profile *p);

#endif
