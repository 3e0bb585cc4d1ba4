# The programs built from src/ (poa-train, later poa-extract and the evaluation tools).
