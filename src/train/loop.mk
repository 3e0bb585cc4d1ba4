# The pretraining rank loop (issue #6): sources added to the train archive.
TRAIN_LOOP_SOURCES =
