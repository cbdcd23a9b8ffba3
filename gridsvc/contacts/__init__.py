"""The red network at work: the contact log, its import and export, cadence and overdue lists."""

from gridsvc.contacts.cadence import (
    OverdueFigures,
    OverdueList,
    OverdueReport,
    overdue,
    overdue_by_community,
)
from gridsvc.contacts.log import CHANNELS, correct_contact, list_contacts, log_contact

__all__ = [
    "CHANNELS",
    "OverdueFigures",
    "OverdueList",
    "OverdueReport",
    "correct_contact",
    "list_contacts",
    "log_contact",
    "overdue",
    "overdue_by_community",
]
