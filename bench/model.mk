# bench-model (see README.md, Performance)
