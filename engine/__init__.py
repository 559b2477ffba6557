"""dllab engine: datasets, models, recipes, the training loop, the runner and the run store."""
