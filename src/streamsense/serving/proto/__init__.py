"""Protocol buffers of the gRPC API. ``decide.proto`` is the source; ``decide_pb2.py`` and
``decide_pb2.pyi`` are generated from it and checked in, so serving needs only the protobuf
runtime (no compiler at import). Regenerate after editing the .proto (command in its header);
tests/unit/test_grpc_service.py fails when the checked-in code no longer matches it."""
