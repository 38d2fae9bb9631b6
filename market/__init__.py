"""Local market simulator: a seeded population of synthetic finance apps served in real store formats."""
