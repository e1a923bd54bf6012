"""Online use: the explainer exported as a SavedModel for TF Serving (:mod:`.export`), a
TF-Serving-compatible gRPC server for development and tests (:mod:`.server`), and the client
that explains files through either (:mod:`.client`). Loading this package loads nothing."""
