"""Local time of the deployment: limits are counted in China's calendar days."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


def utc_now() -> datetime:
    return datetime.now(UTC)


def local_date(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()


def in_china(moment: datetime) -> datetime:
    """A moment given without a zone is read as China time, as a clerk means it."""
    return moment.replace(tzinfo=CHINA) if moment.tzinfo is None else moment
