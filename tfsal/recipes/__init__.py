"""Recipes: whole workflows made of the other stages (``tfsal train all``: train, check, evaluate, model card)."""
