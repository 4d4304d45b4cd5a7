"""Chinese labels for what the pages show; status and event labels come from the domain."""

HANDLING_TYPES = {
    "immediate": "即办件", "supplement": "补办件", "committed": "承诺件", "suggestion": "建议件", "escalated": "上报件",
}  # fmt: skip
TIERS = {"small": "小事立马办", "big": "大事联动办", "hard": "难事包案办"}
COLOURS = {"red": "红灯", "yellow": "黄灯", "green": "绿灯"}
CHECKPOINTS = {"deployed": "1日内部署", "progress": "3日内反馈", "resolved": "7/10日办结", "cleared": "跟踪销号"}
CHECKPOINT_STATES = {"pending": "未到期", "met_on_time": "按时完成", "met_late": "超时完成", "overdue": "已逾期"}
LEVELS = ("district", "street", "community", "grid")
LEVEL_LABELS = {"district": "区县", "street": "镇街", "community": "社区", "grid": "网格", "department": "部门"}
DEADLINES = {"accept": "签收时限", "progress": "进展时限", "resolve": "办结时限", "supervision": "督办时限"}
HOLDERS = {
    "intake": "受理中心", "grid_leader": "网格长", "department": "牵头部门", "leader": "包案领导",
    "main": "随主件办理",
}  # fmt: skip
SATISFACTION = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}
FEEDBACK_METHODS = {
    "home_visit": "上门答复", "on_site": "现场咨询", "online": "网络平台", "hotline_callback": "热线回访",
    "written_reply": "书面函复", "meeting": "召集会议",
}  # fmt: skip
SUGGESTION_OUTCOMES = {"adopted": "采纳", "answered": "答复"}
LISTS = {"problems": "问题清单", "responsibilities": "责任清单", "rectifications": "整改清单"}
REPORTS = {"monthly": "月度通报", "quarterly": "季度公示", "yearly": "年度总结"}
FIELDS = {
    "handling_type": "办理类型", "tier": "分级", "assignee": "网格长工号", "reason": "理由", "progress": "进展情况",
    "departments": "吹哨部门（多个用逗号分隔）", "outcome": "会商结果", "lead_department": "牵头部门",
    "measures": "整改措施", "responsible_unit": "责任单位", "responsible_person": "责任人", "deadline": "整改期限",
    "new_due": "新时限", "summary": "情况说明", "passed": "检验通过", "suggestion_outcome": "建议件结果",
    "method": "反馈方式", "content": "反馈内容", "reached": "已联系上诉求人", "satisfaction": "满意度",
    "comment": "评价", "notice": "督办意见", "deadlines": "时限",
    # second handling, transfers and approvals (issue 17)
    "resolved": "问题已解决", "note": "回访记录", "to_department": "转办给部门", "from_department": "转出部门",
    "request_no": "申请编号", "approved": "批准", "grounds": "重办依据", "reopen_no": "第几次重办",
    "previous_assignee": "原网格长", "whistle_nos": "吹哨批次", "lead": "牵头", "kind": "申请类别",
    "current_due": "原办结时限", "previous_deadline": "原时限",
    "main_case": "主件（编号或标识）", "main_number": "主件编号", "main_status": "主件状态",
    "duplicate_case": "重复件标识", "duplicate_number": "重复件编号", "status": "状态",
    "stage": "附件类别", "name": "文件名", "sha256": "文件哈希（SHA-256）", "content_type": "文件类型",
    "size": "大小（字节）",
    "location_removed": "已去除位置信息", "url": "来源链接",
    # Notices to residents (docs/notices.md)
    "kind_label": "通知类型", "sender": "发送方式", "attempt": "第几次发送", "code": "网关应答码", "text": "短信内容",
    "final": "已停止重试", "stop_reason_label": "未发送原因",
}  # fmt: skip
STAGES = {"registration": "登记材料", "progress": "办理进展", "before": "整改前", "after": "整改后",
          "verification": "居民检验"}  # fmt: skip
REQUEST_KINDS = {"extension": "延期", "return": "退单"}
REOPEN_GROUNDS = {"dissatisfied": "评议不满意", "follow_up": "回访未解决"}
# Places (issue 18): the locate form.
COORDINATE_SYSTEMS = {"wgs84": "WGS-84（GPS、奥维等）", "gcj02": "GCJ-02（高德、腾讯地图取点）"}
FIELDS |= {"latitude": "纬度", "longitude": "经度", "coordinate_system": "坐标系"}
CHOICES = {
    "handling_type": HANDLING_TYPES, "tier": TIERS, "satisfaction": SATISFACTION, "method": FEEDBACK_METHODS,
    "suggestion_outcome": SUGGESTION_OUTCOMES, "kind": REQUEST_KINDS, "grounds": REOPEN_GROUNDS,
    "coordinate_system": COORDINATE_SYSTEMS, "stage": STAGES,
}  # fmt: skip


def holder(value: str | None) -> str:
    if not value:
        return "—"
    kind, _, who = value.partition(":")
    return f"{HOLDERS.get(kind, kind)} {who}".strip()


def duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} 分钟"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} 小时"
    return f"{seconds / 86400:.1f} 天"


def percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{100 * ratio:.1f}%"
