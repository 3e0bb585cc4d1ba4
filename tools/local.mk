# tools/: small operator programs.
