# bench-loader (see README.md, Performance)
