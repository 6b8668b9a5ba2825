"""Pydantic models of Meta's catalog answers (catalog.md §3-§6), as CatalogApi returns them.

    status = BatchStatus.model_validate(answer["data"][0])
    status.is_final, status.errors[0].id, status.ids_of_invalid_requests

Every model tolerates fields it does not know (`extra="allow"`): Meta adds fields, and a new one
must not break a sync. Read-side `price` strings are kept as Meta sends them and never parsed
into money (their format is unconfirmed); prices are compared through what metasync sent.
"""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _MetaModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class BatchState(StrEnum):
    SCHEDULED = "scheduled"
    DISPATCHED = "dispatched"
    STARTED = "started"
    FINISHED = "finished"
    CANCELED = "canceled"
    ERROR = "error"


FINAL_BATCH_STATES = frozenset({BatchState.FINISHED, BatchState.CANCELED, BatchState.ERROR})


class BatchMessage(_MetaModel):
    """One `{line, id, message}` of a handle's errors or warnings; `line` indexes `requests`."""

    line: int | None = None
    id: str = ""
    message: str = ""


class ValidationStatus(_MetaModel):
    retailer_id: str = ""
    errors: list[BatchMessage] = Field(default_factory=list)
    warnings: list[BatchMessage] = Field(default_factory=list)


class ItemsBatchResult(_MetaModel):
    handles: list[str] = Field(default_factory=list)
    validation_status: list[ValidationStatus] = Field(default_factory=list)


class BatchStatus(_MetaModel):
    handle: str = ""
    status: str
    errors: list[BatchMessage] = Field(default_factory=list)
    errors_total_count: int = 0
    warnings: list[BatchMessage] = Field(default_factory=list)
    warnings_total_count: int = 0
    ids_of_invalid_requests: list[str] = Field(default_factory=list)

    @field_validator("status")
    @classmethod
    def _lowercase(cls, value: str) -> str:
        # Docs name the states "Finished", samples say "finished": compare lowercased.
        return value.lower()

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_BATCH_STATES

    @property
    def failed_whole(self) -> bool:
        """The handle ended in error or was cancelled: treat every record as not applied."""
        return self.status in (BatchState.ERROR, BatchState.CANCELED)


class UploadErrorSample(_MetaModel):
    row_number: int | None = None
    retailer_id: str = ""
    id: str = ""


class UploadError(_MetaModel):
    id: int | str
    summary: str = ""
    description: str = ""
    severity: str = ""
    total_count: int | None = None
    samples: list[UploadErrorSample] = Field(default_factory=list)

    @field_validator("samples", mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        return value.get("data", []) if isinstance(value, dict) else value

    @property
    def is_fatal(self) -> bool:
        return self.severity.lower() == "fatal"


class UploadSession(_MetaModel):
    id: str
    start_time: str | None = None
    end_time: str | None = None
    num_detected_items: int | None = None
    num_invalid_items: int | None = None
    num_persisted_items: int | None = None
    num_deleted_items: int | None = None
    error_count: int | None = None
    warning_count: int | None = None
    filename: str | None = None
    url: str | None = None
    input_method: str | None = None

    @property
    def is_done(self) -> bool:
        # Unconfirmed but consistent with Meta's samples: a session has end_time once it ends.
        return bool(self.end_time)


class ProductFeed(_MetaModel):
    id: str
    name: str = ""
    product_count: int | None = None


class ItemIssue(_MetaModel):
    error_type: str = ""
    error_priority: str = ""
    title: str = ""
    description: str = ""
    call_to_action: str | None = None


class ProductItem(_MetaModel):
    """A catalog item as Graph reads it back (ProductItem vocabulary, §2.1)."""

    id: str
    retailer_id: str | None = None
    name: str | None = None
    description: str | None = None
    url: str | None = None
    image_url: str | None = None
    price: str | None = None  # display string; never parsed into money
    sale_price: str | None = None
    currency: str | None = None
    availability: str | None = None
    condition: str | None = None
    brand: str | None = None
    quantity_to_sell_on_facebook: int | None = None
    retailer_product_group_id: str | None = None
    visibility: str | None = None
    review_status: str | None = None
    errors: list[ItemIssue] = Field(default_factory=list)

    @field_validator("errors", mode="before")
    @classmethod
    def _unwrap(cls, value: Any) -> Any:
        return value.get("data", []) if isinstance(value, dict) else value or []


class Diagnostic(_MetaModel):
    type: str = ""
    title: str | None = None
    description: str | None = None
    call_to_action: str | None = None
    number_of_affected_items: int | None = None
    sample_affected_items: list[dict[str, Any]] = Field(default_factory=list)


class DiagnosticGroup(_MetaModel):
    type: str
    severity: str = ""
    title: str | None = None
    subtitle: str | None = None
    error_code: int | None = None
    number_of_affected_items: int | None = None
    diagnostics: list[Diagnostic] = Field(default_factory=list)


class ProductSet(_MetaModel):
    id: str
    name: str = ""
    filter: str | None = None
    product_count: int | None = None
    retailer_id: str | None = None
