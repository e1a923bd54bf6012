"""``tfsal explain-batch``: archives explained by an Apache Beam pipeline. Loading this package
loads nothing; Beam is imported by :mod:`.pipeline`."""
