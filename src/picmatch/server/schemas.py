"""Request and response bodies. Image ids are 63-bit, so they travel as decimal strings."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from picmatch._sys import display_path
from picmatch.errors import NotIndexedError
from picmatch.indexer import IndexReport
from picmatch.results import Hit, LibraryStats
from picmatch.server.http_errors import InvalidRequestError
from picmatch.server.jobs import Job, JobState

MAX_RESULTS = 1000
MAX_IMAGE_ID = 2**63 - 1

ImageId = Annotated[str, Field(pattern=r"^[0-9]{1,19}$", examples=["4611686018427387904"])]
K = Annotated[int, Field(ge=1, le=MAX_RESULTS, description="number of results")]
MinScore = Annotated[
    float | None, Field(ge=-1.0, le=1.0, description="only hits with cosine similarity >= this")
]


def _no_nul(text: str) -> str:
    """Paths go to the operating system, which cannot take a NUL character in a name."""
    if "\x00" in text:
        raise ValueError("a path cannot contain a NUL character")
    return text


PathText = Annotated[str, AfterValidator(_no_nul)]
Folders = Annotated[
    list[PathText],
    Field(max_length=50, description="only hits inside one of these absolute folders"),
]


def parse_image_id(text: str) -> int:
    """An image id from its decimal string; raises NotIndexedError for what no image can have."""
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        raise InvalidRequestError(f"image ids are decimal numbers, not {text[:40]!r}")
    value = int(text)
    if value > MAX_IMAGE_ID:
        raise NotIndexedError(f"no image with id {text} in this library")
    return value


class ErrorBody(BaseModel):
    error: str


class SearchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: K = 10
    min_score: MinScore = None
    folders: Folders = []
    model: str | None = Field(
        None, max_length=1000, description="which model's vectors (default: the library's first)"
    )


class SearchRequest(SearchOptions):
    """Search from an indexed image, by id or by path (uploads use multipart/form-data)."""

    id: ImageId | None = None
    path: PathText | None = Field(None, description="absolute path of an indexed image")
    text: str | None = Field(
        None, min_length=1, max_length=1000, description='a text query ("a red bicycle")'
    )

    @model_validator(mode="before")
    @classmethod
    def _id_as_string(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("id"), int):
            return {**data, "id": str(data["id"])}
        return data

    @model_validator(mode="after")
    def _exactly_one_query(self) -> Self:
        if sum(q is not None for q in (self.id, self.path, self.text)) != 1:
            raise ValueError("give exactly one of 'id', 'path' or 'text' (or upload an image)")
        return self


class SearchHit(BaseModel):
    id: str
    path: str
    score: float
    width: int
    height: int

    @classmethod
    def of(cls, hit: Hit) -> SearchHit:
        return cls(
            id=str(hit.id),
            path=display_path(hit.path),
            score=round(hit.score, 6),
            width=hit.width,
            height=hit.height,
        )


class SearchResponse(BaseModel):
    hits: list[SearchHit]
    took_ms: float


class LibraryResponse(BaseModel):
    path: str
    model: str
    dim: int
    store: str
    images: int
    store_bytes: int
    roots: list[str]
    params: dict[str, str]
    models: list[str] = Field(default=[], description="every model's space, the default first")
    text_models: list[str] = Field(default=[], description="the models that answer text")
    allowed_roots: list[str] = Field(description="folders POST /api/index may index")
    max_upload_bytes: int
    version: str

    @classmethod
    def of(cls, stats: LibraryStats, **extra: Any) -> LibraryResponse:
        return cls(
            path=stats.path,
            model=stats.model,
            store=stats.store,
            images=stats.images,
            store_bytes=stats.store_bytes,
            roots=[display_path(r) for r in stats.roots],
            params=stats.params,
            models=list(stats.models),
            text_models=list(stats.text_models),
            **extra,
        )


class HealthResponse(BaseModel):
    status: str = "ok"
    version: str


class IndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: PathText = Field(description="absolute path of a folder (or file) inside an allowed root")


class JobCreated(BaseModel):
    job_id: str
    url: str


class SkippedFile(BaseModel):
    path: str
    reason: str


class IndexReportBody(BaseModel):
    added: int
    unchanged: int
    updated: int
    removed: int
    moved: int
    embedded: int
    skipped: list[SkippedFile]
    seconds: float
    total_indexed: int

    @classmethod
    def of(cls, report: IndexReport) -> IndexReportBody:
        return cls(
            added=report.added,
            unchanged=report.unchanged,
            updated=report.updated,
            removed=report.removed,
            moved=report.moved,
            embedded=report.embedded,
            skipped=[
                SkippedFile(path=display_path(p), reason=display_path(r)) for p, r in report.skipped
            ],
            seconds=round(report.seconds, 3),
            total_indexed=report.total_indexed,
        )


class JobResponse(BaseModel):
    id: str
    path: str
    state: JobState
    phase: str | None
    done: int
    total: int
    report: IndexReportBody | None
    error: str | None
    created_at: float
    finished_at: float | None

    @classmethod
    def of(cls, job: Job) -> JobResponse:
        return cls(
            id=job.id,
            path=display_path(job.path),
            state=job.state,
            phase=job.phase,
            done=job.done,
            total=job.total,
            report=IndexReportBody.of(job.report) if job.report else None,
            error=display_path(job.error) if job.error else None,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )
