import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_ACCEPTED: _ClassVar[JobState]
    JOB_STATE_HELD: _ClassVar[JobState]
    JOB_STATE_PREPARED: _ClassVar[JobState]
    JOB_STATE_SIGNED: _ClassVar[JobState]
    JOB_STATE_DONE: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_DEAD_LETTERED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_ACCEPTED: JobState
JOB_STATE_HELD: JobState
JOB_STATE_PREPARED: JobState
JOB_STATE_SIGNED: JobState
JOB_STATE_DONE: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_DEAD_LETTERED: JobState

class Rect(_message.Message):
    __slots__ = ("x0", "y0", "x1", "y1")
    X0_FIELD_NUMBER: _ClassVar[int]
    Y0_FIELD_NUMBER: _ClassVar[int]
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    x0: float
    y0: float
    x1: float
    y1: float
    def __init__(self, x0: _Optional[float] = ..., y0: _Optional[float] = ..., x1: _Optional[float] = ..., y1: _Optional[float] = ...) -> None: ...

class Placement(_message.Message):
    __slots__ = ("page", "rect")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    RECT_FIELD_NUMBER: _ClassVar[int]
    page: int
    rect: Rect
    def __init__(self, page: _Optional[int] = ..., rect: _Optional[_Union[Rect, _Mapping]] = ...) -> None: ...

class DocumentMetadata(_message.Message):
    __slots__ = ("document_type", "document_number", "document_date", "document_value_idr")
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_DATE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_VALUE_IDR_FIELD_NUMBER: _ClassVar[int]
    document_type: str
    document_number: str
    document_date: str
    document_value_idr: int
    def __init__(self, document_type: _Optional[str] = ..., document_number: _Optional[str] = ..., document_date: _Optional[str] = ..., document_value_idr: _Optional[int] = ...) -> None: ...

class SubmitDocumentRequest(_message.Message):
    __slots__ = ("pdf", "placement", "metadata", "idempotency_key", "filename", "password")
    PDF_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    pdf: bytes
    placement: Placement
    metadata: DocumentMetadata
    idempotency_key: str
    filename: str
    password: str
    def __init__(self, pdf: _Optional[bytes] = ..., placement: _Optional[_Union[Placement, _Mapping]] = ..., metadata: _Optional[_Union[DocumentMetadata, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., filename: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "state", "serial", "filename", "failure_code", "failure_reason", "refunded", "created_at", "updated_at", "queue_position", "expected_wait_ms", "document_digest", "stamped_size", "verify_url", "replayed")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CODE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STAMPED_SIZE_FIELD_NUMBER: _ClassVar[int]
    VERIFY_URL_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    serial: str
    filename: str
    failure_code: str
    failure_reason: str
    refunded: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    queue_position: int
    expected_wait_ms: int
    document_digest: str
    stamped_size: int
    verify_url: str
    replayed: bool
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., serial: _Optional[str] = ..., filename: _Optional[str] = ..., failure_code: _Optional[str] = ..., failure_reason: _Optional[str] = ..., refunded: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., queue_position: _Optional[int] = ..., expected_wait_ms: _Optional[int] = ..., document_digest: _Optional[str] = ..., stamped_size: _Optional[int] = ..., verify_url: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetStampedDocumentRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DocumentChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("idempotency_key", "document")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    document: SubmitDocumentRequest
    def __init__(self, idempotency_key: _Optional[str] = ..., document: _Optional[_Union[SubmitDocumentRequest, _Mapping]] = ...) -> None: ...

class BatchItem(_message.Message):
    __slots__ = ("index", "filename", "job", "error_code", "error_reason", "error_message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    filename: str
    job: Job
    error_code: str
    error_reason: str
    error_message: str
    def __init__(self, index: _Optional[int] = ..., filename: _Optional[str] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., error_code: _Optional[str] = ..., error_reason: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("batch_id", "total", "accepted", "refused", "done", "failed", "complete", "items")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    total: int
    accepted: int
    refused: int
    done: int
    failed: int
    complete: bool
    items: _containers.RepeatedCompositeFieldContainer[BatchItem]
    def __init__(self, batch_id: _Optional[str] = ..., total: _Optional[int] = ..., accepted: _Optional[int] = ..., refused: _Optional[int] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., complete: _Optional[bool] = ..., items: _Optional[_Iterable[_Union[BatchItem, _Mapping]]] = ...) -> None: ...

class GetBatchRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class WatchBatchRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...
