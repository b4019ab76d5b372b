"""The alarm-handling loop: lifecycle, escalation and notifications (see ``edge.alarms.manager``)."""

from edge.alarms.manager import (
    AlarmContext,
    AlarmError,
    AlarmManager,
    AlarmNotFound,
    AlarmStateError,
)
from edge.alarms.notify import Notification, Notifier, NotifierWorker, NotifyError, NotifyFilter

__all__ = [
    "AlarmContext",
    "AlarmError",
    "AlarmManager",
    "AlarmNotFound",
    "AlarmStateError",
    "Notification",
    "Notifier",
    "NotifierWorker",
    "NotifyError",
    "NotifyFilter",
]
