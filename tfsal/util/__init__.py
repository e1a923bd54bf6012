"""Small shared helpers that belong to no stage: atomic writes, quiet imports, argument checks and
the locations of the shipped files. Imports nothing from the stages."""
