# bench/: benchmarks (make bench-*), never run by make check.
