import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SerialStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERIAL_STATUS_UNSPECIFIED: _ClassVar[SerialStatus]
    SERIAL_STATUS_ISSUED: _ClassVar[SerialStatus]
    SERIAL_STATUS_VOID: _ClassVar[SerialStatus]
    SERIAL_STATUS_PENDING: _ClassVar[SerialStatus]
    SERIAL_STATUS_UNKNOWN: _ClassVar[SerialStatus]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_GENUINE: _ClassVar[Verdict]
    VERDICT_MODIFIED: _ClassVar[Verdict]
    VERDICT_NOT_GENUINE: _ClassVar[Verdict]

class Change(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_UNSPECIFIED: _ClassVar[Change]
    CHANGE_FORM_FILLING: _ClassVar[Change]
    CHANGE_ANNOTATIONS: _ClassVar[Change]
    CHANGE_SIGNATURES: _ClassVar[Change]
    CHANGE_CONTENT: _ClassVar[Change]
    CHANGE_VALIDATION_DATA: _ClassVar[Change]
SERIAL_STATUS_UNSPECIFIED: SerialStatus
SERIAL_STATUS_ISSUED: SerialStatus
SERIAL_STATUS_VOID: SerialStatus
SERIAL_STATUS_PENDING: SerialStatus
SERIAL_STATUS_UNKNOWN: SerialStatus
VERDICT_UNSPECIFIED: Verdict
VERDICT_GENUINE: Verdict
VERDICT_MODIFIED: Verdict
VERDICT_NOT_GENUINE: Verdict
CHANGE_UNSPECIFIED: Change
CHANGE_FORM_FILLING: Change
CHANGE_ANNOTATIONS: Change
CHANGE_SIGNATURES: Change
CHANGE_CONTENT: Change
CHANGE_VALIDATION_DATA: Change

class VerifySerialRequest(_message.Message):
    __slots__ = ("serial",)
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    serial: str
    def __init__(self, serial: _Optional[str] = ...) -> None: ...

class SerialVerification(_message.Message):
    __slots__ = ("serial", "status", "stamped_at", "document_digest", "document_type", "reseller_id", "reseller_name", "trusted_time")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STAMPED_AT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESELLER_ID_FIELD_NUMBER: _ClassVar[int]
    RESELLER_NAME_FIELD_NUMBER: _ClassVar[int]
    TRUSTED_TIME_FIELD_NUMBER: _ClassVar[int]
    serial: str
    status: SerialStatus
    stamped_at: _timestamp_pb2.Timestamp
    document_digest: str
    document_type: str
    reseller_id: str
    reseller_name: str
    trusted_time: _timestamp_pb2.Timestamp
    def __init__(self, serial: _Optional[str] = ..., status: _Optional[_Union[SerialStatus, str]] = ..., stamped_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., document_digest: _Optional[str] = ..., document_type: _Optional[str] = ..., reseller_id: _Optional[str] = ..., reseller_name: _Optional[str] = ..., trusted_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VerifyDocumentRequest(_message.Message):
    __slots__ = ("pdf", "password")
    PDF_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    pdf: bytes
    password: str
    def __init__(self, pdf: _Optional[bytes] = ..., password: _Optional[str] = ...) -> None: ...

class SealVerification(_message.Message):
    __slots__ = ("serial", "field_name", "signature_valid", "trusted", "coverage_ok", "serial_status", "digest_matches", "signing_time", "problem", "level", "timestamp_time", "verdict", "changes_after", "reasons", "stamped_revision_length")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_VALID_FIELD_NUMBER: _ClassVar[int]
    TRUSTED_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_OK_FIELD_NUMBER: _ClassVar[int]
    SERIAL_STATUS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_MATCHES_FIELD_NUMBER: _ClassVar[int]
    SIGNING_TIME_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_TIME_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    CHANGES_AFTER_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    STAMPED_REVISION_LENGTH_FIELD_NUMBER: _ClassVar[int]
    serial: str
    field_name: str
    signature_valid: bool
    trusted: bool
    coverage_ok: bool
    serial_status: SerialStatus
    digest_matches: bool
    signing_time: _timestamp_pb2.Timestamp
    problem: str
    level: str
    timestamp_time: _timestamp_pb2.Timestamp
    verdict: Verdict
    changes_after: _containers.RepeatedScalarFieldContainer[Change]
    reasons: _containers.RepeatedScalarFieldContainer[str]
    stamped_revision_length: int
    def __init__(self, serial: _Optional[str] = ..., field_name: _Optional[str] = ..., signature_valid: _Optional[bool] = ..., trusted: _Optional[bool] = ..., coverage_ok: _Optional[bool] = ..., serial_status: _Optional[_Union[SerialStatus, str]] = ..., digest_matches: _Optional[bool] = ..., signing_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., problem: _Optional[str] = ..., level: _Optional[str] = ..., timestamp_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., changes_after: _Optional[_Iterable[_Union[Change, str]]] = ..., reasons: _Optional[_Iterable[str]] = ..., stamped_revision_length: _Optional[int] = ...) -> None: ...

class DocumentVerification(_message.Message):
    __slots__ = ("genuine", "seals", "problem", "verdict", "other_signatures")
    GENUINE_FIELD_NUMBER: _ClassVar[int]
    SEALS_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    OTHER_SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    genuine: bool
    seals: _containers.RepeatedCompositeFieldContainer[SealVerification]
    problem: str
    verdict: Verdict
    other_signatures: int
    def __init__(self, genuine: _Optional[bool] = ..., seals: _Optional[_Iterable[_Union[SealVerification, _Mapping]]] = ..., problem: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., other_signatures: _Optional[int] = ...) -> None: ...
