"""Training one run: the solo loop, the run ledger every trainer keeps, the evaluation's extra figures."""
