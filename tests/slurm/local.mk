# tests/slurm/: the Slurm scripts (slurm/*.sbatch, slurm/pipeline.sh).
# `make check` runs the tests that need no Slurm (stand-in scontrol/srun/sbatch); the ones that
# submit real jobs (test_slurm_*) report SKIP there unless a test cluster is running.
# `make check-slurm` starts a private single-node Slurm cluster under the build tree
# (tests/slurm/slurm-up.sh: root; installs slurm-wlm and munge with tools/install-deps.sh slurm
# when they are missing), runs the tests that submit real jobs to it one after the other, and stops
# it again (slurm-down.sh).  Where the machine cannot run the cluster (not root, packages not
# installable) it prints SKIPPED with the reason and succeeds, unless POA_REQUIRE_SLURM=1.
SLURM_TESTS = tests/slurm/test_sbatch_headers.sh tests/slurm/test_slurm_chain.sh \
	tests/slurm/test_slurm_array.sh tests/slurm/test_slurm_requeue.sh
TESTS += tests/slurm/test_sbatch_paths.sh tests/slurm/test_pipeline_cli.sh $(SLURM_TESTS)
EXTRA_DIST += tests/slurm/local.mk tests/slurm/slurm-up.sh tests/slurm/slurm-down.sh \
	tests/slurm/lib.sh tests/slurm/check_headers.py tests/slurm/test_sbatch_paths.sh \
	tests/slurm/test_sbatch_headers.sh tests/slurm/test_pipeline_cli.sh \
	tests/slurm/test_slurm_chain.sh tests/slurm/test_slurm_array.sh \
	tests/slurm/test_slurm_requeue.sh
# Time limit of each check-slurm test (seconds; the harness prints stacks and fails past it).
SLURM_TEST_TIMEOUT = 600
SLURM_CLUSTER_DIR = $(abs_top_builddir)/tests/out/slurm-cluster

check-slurm: all
	@rc=0; $(SHELL) $(top_srcdir)/tests/slurm/slurm-up.sh '$(SLURM_CLUSTER_DIR)' || rc=$$?; \
	if test $$rc = 77; then \
	  if test "$${POA_REQUIRE_SLURM:-0}" = 1; then echo "check-slurm: FAILED (POA_REQUIRE_SLURM=1)"; exit 1; fi; \
	  echo "check-slurm: SKIPPED (the reason is above)"; exit 0; fi; \
	test $$rc = 0 || exit $$rc; \
	t0=$$(date +%s); \
	POA_SLURM_CLUSTER='$(SLURM_CLUSTER_DIR)' POA_TEST_TIMEOUT=$(SLURM_TEST_TIMEOUT) \
	  $(MAKE) $(AM_MAKEFLAGS) -j1 check-TESTS TESTS='$(SLURM_TESTS)' check_PROGRAMS= \
	  TEST_SUITE_LOG=tests/slurm/test-suite-slurm.log || rc=$$?; \
	$(SHELL) $(top_srcdir)/tests/slurm/slurm-down.sh '$(SLURM_CLUSTER_DIR)'; \
	echo "check-slurm: $$(( $$(date +%s) - t0 )) s of tests (load average $$(cut -d' ' -f1-3 /proc/loadavg))"; \
	exit $$rc
.PHONY: check-slurm
