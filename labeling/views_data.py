"""Admin pages to import and export a project's data (needs labeling.manage_project).

The upload view caps the request *before* Django parses it: it is
csrf_exempt on the outside so that CsrfViewMiddleware does not read the
body first, refuses an over-long Content-Length with 413, installs an
upload handler that streams the file to IMPORT_UPLOAD_DIR and stops at the
cap, and only then runs the real view under csrf_protect (the pattern in
Django's docs for custom upload handlers), so CSRF is still enforced.
Whatever the answer, a stored file that did not become a job's upload is
deleted before the response leaves: a refused upload leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labeling import exporting, import_jobs, selectors
from lib.errors import NotFound, ServiceError
from preferences import writers
from preferences.formats import FORMATS
from preferences.label_models import LABEL_MODELS
from preferences.readers import UPLOAD_SUFFIXES

# Room for the multipart boundaries and the small form fields around the file.
_MULTIPART_SLACK = 64 * 1024
EXPORT_FILE_TYPES = ("jsonl", "csv", "parquet")


class UploadTooLarge(Exception):
    pass


class StoredUpload(UploadedFile):
    """An upload already written to its final place; `path` is where."""

    def __init__(self, path: Path, name: str, size: int):
        super().__init__(file=None, name=name, size=size)
        self.path = path


class CappedUploadHandler(FileUploadHandler):
    """Streams each file part to IMPORT_UPLOAD_DIR and gives up past `cap` bytes."""

    def __init__(self, request: HttpRequest, *, cap: int, directory: Path):
        super().__init__(request)
        self.cap = cap
        self.directory = directory
        self.received = 0
        self.fh = None
        self.path: Path | None = None
        self.stored: list[Path] = []  # every file written, to delete those no job took
        self.kept: set[Path] = set()

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.directory.mkdir(parents=True, exist_ok=True)
        # The stored name is ours; only a known suffix is kept from the client's name.
        self.path = self.directory / f"{uuid.uuid4().hex}{upload_suffix(self.file_name) or '.upload'}"
        self.fh = open(self.path, "wb")
        self.stored.append(self.path)
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data: bytes, start: int):
        self.received += len(raw_data)
        if self.received > self.cap:
            self._discard()
            raise UploadTooLarge()
        self.fh.write(raw_data)
        return None

    def file_complete(self, file_size: int):
        self.fh.close()
        return StoredUpload(self.path, self.file_name, file_size)

    def upload_interrupted(self):
        self._discard()

    def _discard(self) -> None:
        if self.fh is not None:
            self.fh.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def discard_unkept(self) -> None:
        """Delete every stored file that did not become a job's upload (CSRF refusal, bad input, an error)."""
        if self.fh is not None and not self.fh.closed:
            self.fh.close()
        for path in self.stored:
            if path not in self.kept:
                path.unlink(missing_ok=True)


def upload_suffix(name: str | None) -> str | None:
    lowered = (name or "").lower()
    return next((s for s in sorted(UPLOAD_SUFFIXES, key=len, reverse=True) if lowered.endswith(s)), None)


def _project(slug: str):
    try:
        return selectors.project_get(slug=slug)
    except NotFound:
        raise Http404("No such project.") from None


def _import_page(request: HttpRequest, project, *, error: str = "", status: int = 200) -> HttpResponse:
    if error and _wants_json(request):
        return JsonResponse({"detail": error}, status=status)
    context = {
        "project": project,
        "formats": FORMATS,
        "suffixes": ", ".join(UPLOAD_SUFFIXES),
        "max_mb": settings.IMPORT_UPLOAD_MAX_BYTES // (1024 * 1024),
        "jobs": import_jobs.import_jobs_recent(project=project),
        "error": error,
    }
    return render(request, "labeling/import.html", context, status=status)


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def _too_large(request: HttpRequest, project) -> HttpResponse:
    limit = settings.IMPORT_UPLOAD_MAX_BYTES
    return _import_page(
        request,
        project,
        status=413,
        error=f"The file is larger than the upload limit of {limit:,} bytes. "
        "Import it with `manage.py import_pairs` on the server instead.",
    )


@csrf_exempt  # checked in _import_post, once the size cap is in place (module docstring)
@require_http_methods(["GET", "POST"])
@permission_required("labeling.manage_project", raise_exception=True)
def project_import(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(slug)
    if request.method == "GET":
        return _import_page(request, project)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > settings.IMPORT_UPLOAD_MAX_BYTES + _MULTIPART_SLACK:
        return _too_large(request, project)
    handler = CappedUploadHandler(request, cap=settings.IMPORT_UPLOAD_MAX_BYTES, directory=settings.IMPORT_UPLOAD_DIR)
    request.upload_handlers = [handler]
    try:
        return _import_post(request, project)
    except UploadTooLarge:
        return _too_large(request, project)
    finally:
        handler.discard_unkept()


@csrf_protect
def _import_post(request: HttpRequest, project) -> HttpResponse:
    upload = request.FILES.get("file")
    fmt = request.POST.get("format", "auto")
    if not isinstance(upload, StoredUpload):
        return _import_page(request, project, error="Choose a file to upload.", status=400)
    if fmt not in FORMATS or upload_suffix(upload.name) is None:
        error = (
            f"Unknown format {fmt!r}."
            if fmt not in FORMATS
            else f"Upload a file ending in one of: {', '.join(UPLOAD_SUFFIXES)}."
        )
        return _import_page(request, project, error=error, status=400)
    job = import_jobs.import_job_create(
        project=project,
        user=request.user,
        upload_path=upload.path,
        file_name=os.path.basename(upload.name),
        file_size=upload.size,
        fmt=fmt,
        skip_invalid=request.POST.get("skip_invalid") == "on",
        gold=request.POST.get("gold") == "on",
    )
    request.upload_handlers[0].kept.add(upload.path)  # the job owns it now (only the one file)
    _start(job)
    return redirect("import-job", job_id=job.pk)


def _start(job) -> None:
    if import_jobs.import_job_runs_inline(job=job):
        import_jobs.import_job_run(job_id=job.pk)  # small and plain: done before the page loads
    else:
        import_jobs.import_job_enqueue(job=job)  # large or gzipped: a worker inflates it, never this request


def _job(job_id: int):
    try:
        return import_jobs.import_job_get(job_id=job_id)
    except NotFound:
        raise Http404("No such import.") from None


def _job_context(job) -> dict:
    return {"job": job, "project": job.project, "waiting": import_jobs.import_job_wait_reason(job=job)}


@require_GET
@permission_required("labeling.manage_project", raise_exception=True)
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    return render(request, "labeling/import_job.html", _job_context(_job(job_id)))


@require_GET
@permission_required("labeling.manage_project", raise_exception=True)
def import_job_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The progress card alone, for HTMX polling; it stops polling once the job ends."""
    return render(request, "labeling/_import_progress.html", _job_context(_job(job_id)))


@require_POST
@permission_required("labeling.manage_project", raise_exception=True)
def import_job_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    """Import a refused file again, skipping the invalid rows its check counted."""
    job = _job(job_id)
    try:
        retry = import_jobs.import_job_retry_skipping_invalid(job=job, user=request.user)
    except ServiceError as exc:
        return render(
            request, "labeling/import_job.html", {**_job_context(job), "retry_error": exc.message}, status=409
        )
    _start(retry)
    return redirect("import-job", job_id=retry.pk)


@require_GET
@permission_required("labeling.manage_project", raise_exception=True)
def project_export(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(slug)
    return render(
        request,
        "labeling/export.html",
        {
            "project": project,
            "formats": exporting.EXPORT_FORMATS,
            "splits": exporting.SPLITS,
            "file_types": EXPORT_FILE_TYPES,
            "label_models": LABEL_MODELS,
        },
    )


@require_GET
@permission_required("labeling.manage_project", raise_exception=True)
def project_export_download(request: HttpRequest, slug: str) -> HttpResponse:
    """The export as a download, streamed (parquet is staged in a temp file: it ends with its index)."""
    project = _project(slug)
    fmt = request.GET.get("format", "")
    split = request.GET.get("split", "all")
    file_type = request.GET.get("file_type", "jsonl")
    label_model = request.GET.get("label_model") or None
    try:
        min_votes = int(request.GET.get("min_votes") or 0)
        exporting.export_validate_options(fmt=fmt, split=split, min_votes=min_votes, label_model=label_model)
        if file_type not in EXPORT_FILE_TYPES:
            raise exporting.ExportFailed(f"file_type must be one of {', '.join(EXPORT_FILE_TYPES)}")
    except ValueError:
        return HttpResponse("min_votes must be a whole number.", status=400, content_type="text/plain")
    except exporting.ExportFailed as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    name = f"{project.slug}-{fmt}-{split}.{file_type}"
    columns, rows = exporting.export_stream(
        project=project, fmt=fmt, split=split, min_votes=min_votes, label_model=label_model
    )
    if file_type == "parquet":
        return _parquet_download(rows, name, fmt=fmt, columns=columns)
    if file_type == "csv":
        body = writers.csv_chunks(rows, writers.columns_of(fmt=fmt, **columns))
        content_type = "text/csv; charset=utf-8"
    else:
        body = writers.jsonl_chunks(rows)
        content_type = "application/x-ndjson; charset=utf-8"
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _parquet_download(rows, name: str, *, fmt: str, columns: dict[str, bool]) -> FileResponse:
    fd, tmp = tempfile.mkstemp(suffix=".parquet", dir=settings.VAR_DIR)
    os.close(fd)
    try:
        writers.write_parquet(rows, Path(tmp), fmt=fmt, **columns)
        fh = open(tmp, "rb")
    finally:
        os.unlink(tmp)  # the open handle keeps the data until the response is sent
    return FileResponse(fh, as_attachment=True, filename=name, content_type="application/vnd.apache.parquet")
