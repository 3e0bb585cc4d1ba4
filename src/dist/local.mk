# dist/: see README.md, "Source layout".  (Sources are added by the issues that build this layer.)
