"""``faceanim batch``: many portraits × many drivers, resumable, on a local process pool or a Ray cluster."""
