"""Domain errors: each names a broken rule, with a stable code and a sentence
a clerk can act on. The HTTP layer maps the families to status codes once."""


class CaseError(Exception):
    """A command broke a rule of the case (HTTP 409)."""

    code = "rule_violated"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IllegalTransitionError(CaseError):
    code = "illegal_transition"


class NotAssigneeError(CaseError):
    code = "not_assignee"


class AssigneeNotInGridError(CaseError):
    code = "assignee_not_in_grid"


class NotWhistledError(CaseError):
    code = "department_not_whistled"


class AlreadyReportedError(CaseError):
    code = "department_already_reported"


class NoWhistleError(CaseError):
    code = "no_whistle"


class LeadDepartmentNotWhistledError(CaseError):
    code = "lead_department_not_whistled"


class NotHardCaseError(CaseError):
    code = "not_a_hard_case"


class DeadlinePassedError(CaseError):
    code = "deadline_passed"


class DeadlineNotLaterError(CaseError):
    code = "deadline_not_later"


class VerificationRequiredError(CaseError):
    code = "verification_required"


class AlreadyRatedError(CaseError):
    code = "already_rated"


class CaseClosedError(CaseError):
    code = "case_closed"


class NotInAreaError(CaseError):
    code = "not_in_area"


class ActorNotAllowedError(CaseError):
    """The acting role may never do this (HTTP 403)."""

    code = "actor_not_allowed"


# --- second handling, transfers and approvals (issue 17) -------------------


class ReopenNotWarrantedError(CaseError):
    code = "reopen_not_warranted"


class SameAssigneeError(CaseError):
    code = "same_assignee"


class AlreadyOnCaseError(CaseError):
    code = "department_already_on_case"


class ApprovalRequiredError(CaseError):
    code = "approval_required"


class RequestPendingError(CaseError):
    code = "request_pending"


class RequestNotFoundError(CaseError):
    code = "request_not_found"


class RequestDecidedError(CaseError):
    code = "request_already_decided"


class RequestOutdatedError(CaseError):
    code = "request_outdated"


# --- duplicates (重复件 / 并案) ------------------------------------------------


class LinkedAsDuplicateError(CaseError):
    """A linked duplicate follows its main case: only feedback, rating and unlinking act on it alone."""

    code = "linked_as_duplicate"


class AlreadyLinkedError(CaseError):
    code = "already_linked"


class NotLinkedError(CaseError):
    code = "not_a_duplicate"


class DuplicateOfItselfError(CaseError):
    code = "duplicate_of_itself"


class MainIsDuplicateError(CaseError):
    code = "main_case_is_duplicate"


class HasDuplicatesError(CaseError):
    code = "case_has_duplicates"


class MainCaseClosedError(CaseError):
    code = "main_case_closed"


class MainNotInAreaError(CaseError):
    code = "main_case_not_in_area"
