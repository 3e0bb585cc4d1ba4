/* test_signals.c — signal handlers in one process (fork per case): SIGUSR1/SIGTERM/SIGINT are
 * recorded and the process keeps running; a second SIGINT kills (Ctrl-C twice); restore brings
 * back the default actions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "comm/signals.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run fn in a child; return its wait status. */
static int in_child(void (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* Exit codes tell the parent which expectation failed. */
#define EXPECT(cond, code)                                                                         \
    do {                                                                                           \
        if (!(cond)) _exit(code);                                                                  \
    } while (0)

static void record_and_continue(void)
{
    poa_signals_install();
    EXPECT(poa_signal_pending() == 0, 10);
    raise(SIGTERM);
    EXPECT(poa_signal_pending() == SIGTERM, 11);
    raise(SIGUSR1);
    raise(SIGINT);
    EXPECT(poa_signal_pending() == SIGTERM, 12); /* the first one is reported */
    EXPECT(poa_signal_count() == 3, 13);
    poa_signal_clear();
    EXPECT(poa_signal_pending() == 0 && poa_signal_count() == 0, 14);
}

static void test_signals_are_recorded(void **state)
{
    (void) state;
    int st = in_child(record_and_continue);
    if (!WIFEXITED(st)) fail_msg("child killed by %s", strsignal(WTERMSIG(st)));
    if (WEXITSTATUS(st)) fail_msg("child expectation %d failed", WEXITSTATUS(st));
}

static void sigint_twice(void)
{
    poa_signals_install();
    raise(SIGINT);
    EXPECT(poa_signal_pending() == SIGINT, 20);
    raise(SIGINT); /* must not return */
    _exit(21);
}

static void test_second_sigint_kills(void **state)
{
    (void) state;
    int st = in_child(sigint_twice);
    if (WIFEXITED(st)) fail_msg("child survived two SIGINTs (exit %d)", WEXITSTATUS(st));
    assert_int_equal(WTERMSIG(st), SIGINT);
}

static void restore_then_usr1(void)
{
    poa_signals_install();
    poa_signals_restore();
    raise(SIGUSR1); /* default action: terminate */
    _exit(30);
}

static void test_restore_brings_back_defaults(void **state)
{
    (void) state;
    int st = in_child(restore_then_usr1);
    if (WIFEXITED(st))
        fail_msg("SIGUSR1 after restore did not terminate (exit %d)", WEXITSTATUS(st));
    assert_int_equal(WTERMSIG(st), SIGUSR1);
}

/* poa-train installs the handlers in main() and the loop installs them again around itself: the
 * loop's restore must leave main's handlers in place. */
static void nested_install(void)
{
    poa_signals_install();
    poa_signals_install();
    poa_signals_restore();
    raise(SIGTERM); /* still handled: recorded, not fatal */
    EXPECT(poa_signal_pending() == SIGTERM, 40);
    poa_signal_clear();
    poa_signals_restore();
    raise(SIGUSR1); /* default action now: terminate */
    _exit(41);
}

static void test_install_nests(void **state)
{
    (void) state;
    int st = in_child(nested_install);
    if (WIFEXITED(st)) fail_msg("child expectation %d failed", WEXITSTATUS(st));
    assert_int_equal(WTERMSIG(st), SIGUSR1);
}

static void test_names(void **state)
{
    (void) state;
    assert_string_equal(poa_signal_name(SIGUSR1), "SIGUSR1");
    assert_string_equal(poa_signal_name(SIGTERM), "SIGTERM");
    assert_string_equal(poa_signal_name(SIGINT), "SIGINT");
    assert_string_equal(poa_signal_name(64), "signal 64");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signals_are_recorded),
        cmocka_unit_test(test_second_sigint_kills),
        cmocka_unit_test(test_install_nests),
        cmocka_unit_test(test_restore_brings_back_defaults),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("signals", tests, NULL, NULL);
}
