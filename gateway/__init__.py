"""The HTTP/JSON gateway in front of the four gRPC services."""
