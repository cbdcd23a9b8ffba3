"""Users, roles and scopes, API tokens, the audit log and the database scope (no Flask here)."""

from gridsvc.accounts.scope import app_database_url, apply_scope
from gridsvc.accounts.users import ROLES, User, create_user, get_user

__all__ = [
    "ROLES",
    "User",
    "app_database_url",
    "apply_scope",
    "create_user",
    "get_user",
]
