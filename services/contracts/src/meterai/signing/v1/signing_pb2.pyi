from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class SignDigestRequest(_message.Message):
    __slots__ = ("job_id", "serial", "digest", "digest_algorithm")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DIGEST_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    serial: str
    digest: bytes
    digest_algorithm: str
    def __init__(self, job_id: _Optional[str] = ..., serial: _Optional[str] = ..., digest: _Optional[bytes] = ..., digest_algorithm: _Optional[str] = ...) -> None: ...

class SignDigestResponse(_message.Message):
    __slots__ = ("cms",)
    CMS_FIELD_NUMBER: _ClassVar[int]
    cms: bytes
    def __init__(self, cms: _Optional[bytes] = ...) -> None: ...

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
