# bench-train (see README.md, Performance)
