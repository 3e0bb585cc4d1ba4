# CPU loss/optimizer/reduction ops (issue #4).  Tests of these ops are declared here too.
CPU_TRAIN_SOURCES = src/backend/cpu/cpu_train.c
