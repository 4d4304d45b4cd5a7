"""Errors of the application layer (not rules of the case itself)."""


class CaseNotFoundError(LookupError):
    code = "case_not_found"

    def __init__(self, case_id: object) -> None:
        super().__init__(f"没有编号或标识为 {case_id} 的案件。")
        self.message = str(self.args[0])


class StaleVersionError(Exception):
    """If-Match named a version that is no longer current (HTTP 412)."""

    code = "stale_version"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"案件已被他人更新（您看到的是第 {expected} 版，当前为第 {actual} 版），请刷新后重试。")
        self.message = str(self.args[0])
        self.actual = actual


class InvalidInputError(ValueError):
    """One field of the input is wrong: HTTP 422 naming the field, with a Chinese reason.
    The one such error of every layer (a query, a period, a cursor, a reference)."""

    code = "invalid_query"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.message = reason


class InvalidReferenceError(InvalidInputError):
    """Input names something the reference data does not know."""

    code = "invalid_reference"


class IdempotencyKeyReusedError(InvalidReferenceError):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("Idempotency-Key", "这个幂等键已用于另一条不同的请求；每条新请求请使用新的键。")


class ConcurrentUpdateError(Exception):
    """Retries were exhausted by concurrent writers on one case (HTTP 409)."""

    code = "concurrent_update"

    def __init__(self) -> None:
        super().__init__("案件正被多人同时办理，请稍后重试。")
        self.message = str(self.args[0])
