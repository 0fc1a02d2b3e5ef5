"""GenFX client SDK: camera conventions, EXR frames with camera metadata, and the gRPC client.

Light on purpose (grpcio, protobuf, numpy, openexr): it runs inside Houdini and on farm nodes and never
imports torch.
"""

__version__ = "0.1.0"
