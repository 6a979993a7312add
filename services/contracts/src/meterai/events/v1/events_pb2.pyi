from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QuotaCredited(_message.Message):
    __slots__ = ("order_id", "reseller_id", "quantity", "payment_reference")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    RESELLER_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    reseller_id: str
    quantity: int
    payment_reference: str
    def __init__(self, order_id: _Optional[str] = ..., reseller_id: _Optional[str] = ..., quantity: _Optional[int] = ..., payment_reference: _Optional[str] = ...) -> None: ...

class DigestSigned(_message.Message):
    __slots__ = ("job_id", "serial", "cms", "trace_context")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CMS_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    serial: str
    cms: bytes
    trace_context: _containers.ScalarMap[str, str]
    def __init__(self, job_id: _Optional[str] = ..., serial: _Optional[str] = ..., cms: _Optional[bytes] = ..., trace_context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SigningFailed(_message.Message):
    __slots__ = ("job_id", "reason", "trace_context")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    trace_context: _containers.ScalarMap[str, str]
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ..., trace_context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SigningAnswers(_message.Message):
    __slots__ = ("signed", "failed")
    SIGNED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    signed: _containers.RepeatedCompositeFieldContainer[DigestSigned]
    failed: _containers.RepeatedCompositeFieldContainer[SigningFailed]
    def __init__(self, signed: _Optional[_Iterable[_Union[DigestSigned, _Mapping]]] = ..., failed: _Optional[_Iterable[_Union[SigningFailed, _Mapping]]] = ...) -> None: ...

class DocumentStamped(_message.Message):
    __slots__ = ("job_id", "serial", "reseller_id", "document_digest")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    RESELLER_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    serial: str
    reseller_id: str
    document_digest: str
    def __init__(self, job_id: _Optional[str] = ..., serial: _Optional[str] = ..., reseller_id: _Optional[str] = ..., document_digest: _Optional[str] = ...) -> None: ...

class StampFailed(_message.Message):
    __slots__ = ("job_id", "serial", "reseller_id", "failure_code", "failure_reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    RESELLER_ID_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CODE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    serial: str
    reseller_id: str
    failure_code: str
    failure_reason: str
    def __init__(self, job_id: _Optional[str] = ..., serial: _Optional[str] = ..., reseller_id: _Optional[str] = ..., failure_code: _Optional[str] = ..., failure_reason: _Optional[str] = ...) -> None: ...
