"""What a recipe is made of: the schema, and the optimizer, schedule, loss and penalties built from it."""
