# POA losses (issue #4): loss.c/h composes the backend's training ops; loss_collective.h is the
# collective interface of Sinkhorn-Knopp.
MODEL_LOSS_SOURCES = src/model/loss.c src/model/loss.h src/model/loss_collective.h
