from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetCertificateChainRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CertificateChain(_message.Message):
    __slots__ = ("certificates", "signature_size")
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_SIZE_FIELD_NUMBER: _ClassVar[int]
    certificates: _containers.RepeatedScalarFieldContainer[bytes]
    signature_size: int
    def __init__(self, certificates: _Optional[_Iterable[bytes]] = ..., signature_size: _Optional[int] = ...) -> None: ...
