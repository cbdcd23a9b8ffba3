"""Password hashing (argon2id; older PBKDF2 hashes still verify) and the password policy.

Hashing: argon2id, 32 MiB, 2 passes, 1 lane. OWASP's password storage cheat sheet puts argon2id
at 19 MiB and 2 passes level with PBKDF2-HMAC-SHA256 at 600,000 iterations; we ran PBKDF2 at
1,000,000 (1.67 times that), so argon2id gets 32 MiB (1.68 times the memory, same passes). It
costs about a tenth of PBKDF2's CPU per login (docs/security.md has the figures): a burst of
logins no longer starves the service, and a GPU attacker pays for the memory. A PBKDF2 hash
(``pbkdf2:sha256:...``, from before) still verifies and is replaced on the next good login.

Policy (:func:`password_problems`): at least ``min_length`` characters, not blank, not the user
name nor containing it, not a common password (``data/common_passwords.txt``, 30,000 entries,
also with trailing digits and symbols removed: ``password12``), at least 4 different characters.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from werkzeug.security import check_password_hash

#: argon2id parameters (see the module docstring).
ARGON2_MEMORY_KIB = 32768
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
#: The longest password accepted (hashing work is bounded whatever is posted).
MAX_LENGTH = 256

_HASHER = PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_KIB,
    parallelism=ARGON2_PARALLELISM,
    type=Type.ID,
)
# Checked when the user does not exist, so the answer takes as long as for a real user.
_DUMMY = _HASHER.hash("gridsvc: no such user")
_TRAILING = re.compile(r"[\d\W_]+$")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted, parameters in the string)."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> tuple[bool, bool]:
    """Whether ``password`` matches ``stored``, and whether the hash should be replaced.

    ``stored`` None checks against a dummy hash (same time) and returns no match.
    """
    if stored is None:
        _argon2(_DUMMY, password)
        return False, False
    if stored.startswith("$argon2"):
        ok = _argon2(stored, password)
        return ok, ok and _HASHER.check_needs_rehash(stored)
    ok = check_password_hash(stored, password)  # PBKDF2 from before argon2id
    return ok, ok


def _argon2(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The denylist shipped with the package (lower case)."""
    text = resources.files("gridsvc.accounts").joinpath("data/common_passwords.txt")
    lines = text.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def password_problems(password: str, *, username: str, min_length: int) -> list[str]:
    """Why ``password`` is refused for ``username`` (empty when it is acceptable)."""
    if not password.strip():
        return ["the password is blank"]
    problems = []
    if len(password) < min_length:
        problems.append(f"at least {min_length} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"at most {MAX_LENGTH} characters")
    lowered = password.lower()
    name = username.strip().lower()
    if len(name) >= 3 and (name in lowered or lowered in name):
        problems.append("the password contains the user name")
    stem = _TRAILING.sub("", lowered)
    if lowered in common_passwords() or (len(stem) >= 4 and stem in common_passwords()):
        problems.append("a common password (on the list of the most used passwords)")
    if len(set(password)) < 4:
        problems.append("at least 4 different characters")
    return problems
