# CPU layer ops (issue #3).  Tests of these ops are declared here too.
CPU_NN_SOURCES = src/backend/cpu/cpu_nn.c
