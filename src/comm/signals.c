/* signals.c — see signals.h. */
#define _GNU_SOURCE
#include "comm/signals.h"
#include "common/poa_error.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const int handled[] = {SIGUSR1, SIGTERM, SIGINT};
#define N_HANDLED ((int) (sizeof handled / sizeof handled[0]))

/* Written only by the handler (and clear); volatile sig_atomic_t is what a handler may set. */
static volatile sig_atomic_t first_signal;
static volatile sig_atomic_t signal_count;
static volatile sig_atomic_t sigint_seen;
static struct sigaction previous[N_HANDLED];
static int installed; /* install calls not yet matched by a restore */

/* Async-signal-safe: stores, and sigaction/raise (both on POSIX's async-signal-safe list). */
static void on_signal(int sig)
{
    if (sig == SIGINT && sigint_seen) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(SIGINT, &dfl, NULL);
        raise(SIGINT);
        return;
    }
    if (sig == SIGINT) sigint_seen = 1;
    if (first_signal == 0) first_signal = sig;
    if (signal_count < 1000000) signal_count = signal_count + 1;
}

void poa_signals_install(void)
{
    if (installed++) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    /* Block the other handled signals while one handler runs: the updates stay consistent. */
    for (int i = 0; i < N_HANDLED; i++) sigaddset(&sa.sa_mask, handled[i]);
    for (int i = 0; i < N_HANDLED; i++)
        POA_CHECK(sigaction(handled[i], &sa, &previous[i]) == 0, "sigaction(%s) failed",
                  poa_signal_name(handled[i]));
}

void poa_signals_restore(void)
{
    if (!installed || --installed > 0) return;
    for (int i = 0; i < N_HANDLED; i++) sigaction(handled[i], &previous[i], NULL);
}

int poa_signal_pending(void)
{
    return first_signal;
}

int poa_signal_count(void)
{
    return signal_count;
}

void poa_signal_clear(void)
{
    first_signal = 0;
    signal_count = 0;
    sigint_seen = 0;
}

int poa_signal_agree(poa_comm *d)
{
    return poa_comm_max_int(d, poa_signal_pending());
}

const char *poa_signal_name(int sig)
{
    static char other[32];
    switch (sig) {
    case SIGUSR1:
        return "SIGUSR1";
    case SIGTERM:
        return "SIGTERM";
    case SIGINT:
        return "SIGINT";
    default:
        snprintf(other, sizeof other, "signal %d", sig);
        return other;
    }
}
