# bench-step (see README.md, Performance)
