"""Settings shared by the gRPC server and its clients (light: imports neither side)."""

from __future__ import annotations

__all__ = ["GRPC_OPTIONS", "MAX_MESSAGE_BYTES"]

MAX_MESSAGE_BYTES = 512 * 1024 * 1024
"""gRPC message limit both ways: mammograms at full size in float32 exceed gRPC's 4 MB default."""

GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
"""Channel and server options with :data:`MAX_MESSAGE_BYTES`."""
