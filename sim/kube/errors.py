"""API errors of the Kubernetes API emulator, rendered as `Status` objects.

Role: one typed exception (`ApiError`) that every layer of the emulator raises, plus constructors that
use the apiserver's reasons and message wording (reference bolt-and-kube-emulation.md section 3.2:
"Error bodies must be `Status` objects ... Use the apiserver's reason and message wording").

Must never: do I/O, or produce an error body without `code` (the client's leader election reads
`json.loads(exc.body)['code']` and creates the Lease only if it equals 404).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer of the API server: HTTP `code`, Status `reason`, `message` and `details`."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        """The `Status` object the apiserver would send for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(plural: str, group: str) -> str:
    """`leases.coordination.k8s.io` for a grouped resource, `pods` for a core one."""
    return f"{plural}.{group}" if group else plural


def _details(plural: str, group: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = plural
    return details


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified(plural, group)} "{name}" not found', _details(plural, group, name)
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    msg = f'{qualified(plural, group)} "{name}" already exists'
    return ApiError(409, "AlreadyExists", msg, _details(plural, group, name))


def conflict(plural: str, group: str, name: str) -> ApiError:
    msg = (
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": '
        "the object has been modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", msg, _details(plural, group, name))


def forbidden(plural: str, group: str, name: str, err: str) -> ApiError:
    """403 as apierrors.NewForbidden builds it: `<resource>[.<group>] ["<name>"] is forbidden: <err>`,
    details with the non-empty of name, group and kind (the resource)."""
    what = f'{qualified(plural, group)} "{name}"' if name else qualified(plural, group)
    details = {k: v for k, v in (("name", name), ("group", group), ("kind", plural)) if v}
    return ApiError(403, "Forbidden", f"{what} is forbidden: {err}", details)


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid. `causes` holds (field, cause reason, message) triples, e.g.
    ("metadata.resourceVersion", "FieldValueInvalid", "Invalid value: 0x0: must be specified for an update").
    """
    gk = f"{kind}.{group}" if group else kind
    joined = ", ".join(f"{field}: {message}" for field, _, message in causes)
    if len(causes) > 1:
        joined = f"[{joined}]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": r, "message": m, "field": f} for f, r, m in causes]
    return ApiError(422, "Invalid", f'{gk} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(requested: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(verb: str) -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({verb})"
    )


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415, "UnsupportedMediaType", f'the body of the request was in an unknown format - "{content_type}"'
    )


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def generic(code: int, message: str = "") -> ApiError:
    """An error for a code chosen by a test (fault injection), with the apiserver's reason for it."""
    reason = REASONS.get(code, "Unknown")
    return ApiError(code, reason, message or f"emulator: injected {code} {reason}")
