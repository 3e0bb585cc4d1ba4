# CPU loss/optimizer/reduction ops (issue #4); tests/ops/test_backend_ops (nn.mk) tests them.
CPU_TRAIN_SOURCES = src/backend/cpu/cpu_train.c src/backend/cpu/cpu_train_sk.c \
	src/backend/cpu/cpu_train_optim.c src/backend/cpu/cpu_train_impl.h
