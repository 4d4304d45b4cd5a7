"""The closed vocabularies of a case: values that code branches on.

Channels, categories, units and departments are open reference data an
operator edits (see `reference/`); these sets change only with the code.
"""

from enum import StrEnum


class HandlingType(StrEnum):
    IMMEDIATE = "immediate"  # 即办件
    SUPPLEMENT = "supplement"  # 补办件
    COMMITTED = "committed"  # 承诺件
    SUGGESTION = "suggestion"  # 建议件
    ESCALATED = "escalated"  # 上报件


class Tier(StrEnum):
    SMALL = "small"  # 小事立马办
    BIG = "big"  # 大事联动会商办
    HARD = "hard"  # 难事包案重点办


class Role(StrEnum):
    INTAKE_CLERK = "intake_clerk"
    GRID_LEADER = "grid_leader"
    TOWNSHIP = "township"
    DEPARTMENT = "department"
    LEADER = "leader"
    SUPERVISION = "supervision"
    RESIDENT = "resident"
    ADMIN = "admin"
    AUDITOR = "auditor"  # reads streams and projections; personal data only with the `pii` grant
    INTEGRATOR = "integrator"  # another system: the same reads, and manages webhooks
    METRICS = "metrics"  # a monitoring system: GET /metrics only


class Status(StrEnum):
    REGISTERED = "registered"
    CLASSIFIED = "classified"
    ASSIGNED = "assigned"
    RETURNED = "returned"
    IN_PROGRESS = "in_progress"
    RECTIFYING = "rectifying"
    RECTIFIED = "rectified"
    VERIFIED = "verified"
    CLOSED = "closed"


class FeedbackMethod(StrEnum):
    HOME_VISIT = "home_visit"  # 上门答复
    ON_SITE = "on_site"  # 现场咨询
    ONLINE = "online"  # 网络平台
    HOTLINE_CALLBACK = "hotline_callback"  # 热线回访
    WRITTEN_REPLY = "written_reply"  # 书面函复
    MEETING = "meeting"  # 召集会议


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"


class SuggestionOutcome(StrEnum):
    ADOPTED = "adopted"
    ANSWERED = "answered"


STATUS_LABELS = {
    Status.REGISTERED: "已登记",
    Status.CLASSIFIED: "已分类",
    Status.ASSIGNED: "已派单",
    Status.RETURNED: "已退单",
    Status.IN_PROGRESS: "办理中",
    Status.RECTIFYING: "整改中",
    Status.RECTIFIED: "已整改",
    Status.VERIFIED: "检验通过",
    Status.CLOSED: "已销号",
}

# The Chinese names exports, reports and pages show for each code.
HANDLING_TYPE_LABELS = {
    HandlingType.IMMEDIATE: "即办件",
    HandlingType.SUPPLEMENT: "补办件",
    HandlingType.COMMITTED: "承诺件",
    HandlingType.SUGGESTION: "建议件",
    HandlingType.ESCALATED: "上报件",
}
TIER_LABELS = {Tier.SMALL: "小事", Tier.BIG: "大事", Tier.HARD: "难事"}
FEEDBACK_METHOD_LABELS = {
    FeedbackMethod.HOME_VISIT: "上门答复",
    FeedbackMethod.ON_SITE: "现场咨询",
    FeedbackMethod.ONLINE: "网络平台",
    FeedbackMethod.HOTLINE_CALLBACK: "热线回访",
    FeedbackMethod.WRITTEN_REPLY: "书面函复",
    FeedbackMethod.MEETING: "召集会议",
}
SATISFACTION_LABELS = {
    Satisfaction.SATISFIED: "满意",
    Satisfaction.BASICALLY_SATISFIED: "基本满意",
    Satisfaction.DISSATISFIED: "不满意",
}
SUGGESTION_OUTCOME_LABELS = {SuggestionOutcome.ADOPTED: "已采纳", SuggestionOutcome.ANSWERED: "已答复"}
