"""Training commands' library side: the classifier (and, with issue 4, the inpainter)."""
