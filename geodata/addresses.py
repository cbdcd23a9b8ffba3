"""Household addresses as communities write them, parsed and matched to buildings. Pure: no I/O.

A roster's address ("翠湖小区3号楼2单元501室", "翠湖小区3栋2-501", "三号楼二单元五〇一") is
normalised (full-width to half-width, spaces and punctuation out, Chinese numerals to Arabic where
they number a building, unit or room), split into its parts (:class:`Address`: compound, building
number, unit, room) and matched against the buildings layer (:class:`BuildingIndex`): by the
compound's exact name, its normalised name (generic words such as 小区 dropped) or a fuzzy match
that is taken only above a threshold and clear of the next candidate; then by building number
inside that compound. Anything else is a :class:`Match` with a reason and no building: the
matcher never places a household in a building the address did not name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from rapidfuzz import fuzz, process

# --- numerals ----------------------------------------------------------------------------------

_DIGIT_VALUES = {
    "〇": 0,
    "○": 0,
    "零": 0,
    "一": 1,
    "壹": 1,
    "二": 2,
    "贰": 2,
    "貳": 2,
    "两": 2,
    "兩": 2,
    "三": 3,
    "叁": 3,
    "參": 3,
    "四": 4,
    "肆": 4,
    "五": 5,
    "伍": 5,
    "六": 6,
    "陆": 6,
    "陸": 6,
    "七": 7,
    "柒": 7,
    "八": 8,
    "捌": 8,
    "九": 9,
    "玖": 9,
}
_UNIT_VALUES = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
NUMERAL_CHARS = "".join(_DIGIT_VALUES) + "".join(_UNIT_VALUES)
_N = f"[0-9{NUMERAL_CHARS}]+"


def parse_numeral(text: str) -> int:
    """The number written in ``text``: Arabic digits, Chinese numerals or both.

    Positional forms (十二, 二十三, 一百零一, 叁拾伍) and digit-by-digit forms (五〇一, 一二〇三)
    are read; 〇/零, 两 and the financial forms (壹贰叁…拾佰仟) are accepted.

    Raises
    ------
    ValueError
        Text that is not a numeral, or a malformed one (十十, 三百百).
    """
    text = text.strip()
    if not text:
        raise ValueError("empty numeral")
    if text.isascii() and text.isdigit():
        return int(text)
    if any(c not in _DIGIT_VALUES and c not in _UNIT_VALUES and not c.isdigit() for c in text):
        raise ValueError(f"not a numeral: {text!r}")
    if not any(c in _UNIT_VALUES for c in text):
        return int("".join(str(_DIGIT_VALUES.get(c, c)) for c in text))
    return _positional(text)


def _positional(text: str) -> int:
    total, current, last_unit, pending_zero = 0, None, 10_000, False
    for char in text:
        if char in _UNIT_VALUES:
            unit = _UNIT_VALUES[char]
            if unit >= last_unit:
                raise ValueError(f"malformed numeral: {text!r}")
            total += (1 if current is None else current) * unit
            current, last_unit, pending_zero = None, unit, False
            continue
        value = _DIGIT_VALUES.get(char)
        value = int(char) if value is None else value
        if value == 0:
            pending_zero = True
            continue
        if current is not None:
            raise ValueError(f"malformed numeral: {text!r}")
        current = value
    if current is not None:
        if not pending_zero and last_unit > 10:
            # 二百五 = 250, 三千二 = 3200: a trailing digit counts in the next lower unit
            current *= last_unit // 10
        total += current
    return total


_DIGITS_ZH = "〇一二三四五六七八九"


def chinese_numeral(n: int, *, style: str = "positional") -> str:
    """Write ``n`` (0-9999) in Chinese: ``positional`` (十二, 一百零一), ``digits`` (五〇一) or
    ``financial`` (壹佰零壹). The inverse of :func:`parse_numeral`, for tests and demo rosters."""
    if not 0 <= n <= 9999:
        raise ValueError(f"out of range: {n}")
    if style == "digits":
        return "".join(_DIGITS_ZH[int(d)] for d in str(n))
    digits = "零壹贰叁肆伍陆柒捌玖" if style == "financial" else "零一二三四五六七八九"
    units = ("", "拾", "佰", "仟") if style == "financial" else ("", "十", "百", "千")
    if n == 0:
        return digits[0]
    out: list[str] = []
    zero = False
    for power in (3, 2, 1, 0):
        d = n // 10**power % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out.append(digits[0])
            zero = False
        out.append(digits[d] + units[power])
    text = "".join(out)
    if style == "positional" and 10 <= n < 20:
        text = text[1:]  # 十二, not 一十二
    return text


# --- normalisation -----------------------------------------------------------------------------

_DASHES = re.compile(r"[‐‑‒–—―−~～_]+")
_DROP = re.compile(r"[\s,，.。、;；:：'\"“”‘’()（）\[\]【】<>《》/\\|·]+")
#: Words that say "compound" and nothing else; dropped for the normalised name.
GENERIC = ("住宅小区", "小区", "社区", "家属院", "家属区", "宿舍区", "宿舍", "大院", "院落", "院")


def normalise(text: str) -> str:
    """Half-width (NFKC), one ``-`` for every dash, no spaces or punctuation, Latin upper case."""
    text = unicodedata.normalize("NFKC", text)
    text = _DASHES.sub("-", text)
    return _DROP.sub("", text).upper()


def compound_key(name: str) -> str:
    """A compound's name for the normalised match: normalised, generic words dropped."""
    key = normalise(name)
    stripped = True
    while stripped:
        stripped = False
        for word in GENERIC:
            if key.endswith(word) and len(key) > len(word):
                key, stripped = key[: -len(word)], True
    return key


# --- parsing -----------------------------------------------------------------------------------

_BUILDING = re.compile(
    rf"第?(?P<b>{_N}[A-Z]?|[A-Z](?:{_N})?)(?P<mark>号楼|号院楼|#楼|栋楼|栋|幢|座|号|#)(?!院)"
)
_TAIL = re.compile(
    rf"-?(?:(?P<u>{_N})(?:单元-?|门-?|-)(?=[0-9{NUMERAL_CHARS}]|$))?(?:(?P<f>{_N})层-?)?"
    rf"(?:(?P<r>{_N}[A-Z]?)(?:室|号|户)?)?"
)
_UNIT_ONLY = re.compile(rf"{_N}(?:单元|门)")
_DASHED = re.compile(r"(?P<b>\d+[A-Z]?)-(?:(?P<u>\d+)-)?(?P<r>\d+[A-Z]?)$")
_ADMIN = (
    re.compile(r"^.{2,8}?(?:省|自治区)"),
    re.compile(r"^.{1,8}?(?:市|自治州|地区|盟)"),
    re.compile(r"^.{1,6}?(?<![小社园校片景])(?:区|县|旗)"),
    re.compile(r"^.{1,8}?(?:街道办事处|街道办|街道|镇|乡)"),
)
_COMMUNITY = re.compile(r"^.{1,10}?(?:社区|居委会|居民委员会|村委会)(?:居民委员会|居委会)?")
_ROAD = re.compile(rf"^.{{1,10}}?(?:路|街|大道|巷|胡同){_N}号")


@dataclass(frozen=True)
class Address:
    """An address split into its parts; ``problem`` says why a part could not be read."""

    text: str
    compound: str | None = None
    building_no: str | None = None
    unit: str | None = None
    room: str | None = None
    community: str | None = None
    problem: str | None = None


def _number_text(token: str | None) -> str | None:
    """A building/unit/room token as stored: integers without leading zeros, letters upper."""
    if not token:
        return None
    letters = "".join(c for c in token if "A" <= c <= "Z")
    body = token.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ").lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if not body:
        return letters
    value = str(parse_numeral(body))
    return value + letters if token[-1:].isalpha() else letters + value


def parse_address(text: str | None) -> Address:
    """Split an address into compound, building number, unit and room.

    Leading province/city/district/street names and a road-and-number prefix are dropped; a
    community name is kept aside (``community``) and is the compound when nothing else is.
    """
    given = "" if text is None else str(text)
    flat = normalise(given)
    if not flat:
        return Address(given, problem="empty address")
    for found in _BUILDING.finditer(flat):
        tail = _TAIL.fullmatch(flat[found.end() :])
        if tail is None:
            continue
        try:
            return _address(given, flat[: found.start()], found.group("b"), tail)
        except ValueError as exc:
            return Address(given, problem=str(exc))
    dashed = _DASHED.search(flat)
    if dashed and not flat[: dashed.start()][-1:].isdigit():
        return _address(given, flat[: dashed.start()], dashed.group("b"), dashed)
    unit = _UNIT_ONLY.search(flat)
    prefix = flat[: unit.start()] if unit else flat.rstrip("0123456789-#")
    return Address(given, *_compound(prefix), problem="no building number")


def _address(given: str, prefix: str, building: str, tail: re.Match[str]) -> Address:
    compound, community = _compound(prefix)
    return Address(
        given,
        compound,
        _number_text(building),
        _number_text(tail.group("u")),
        _number_text(tail.group("r")),
        community,
    )


def _compound(prefix: str) -> tuple[str | None, str | None]:
    """(compound, community) of the text before the building number."""
    rest = prefix.strip("-")
    for pattern in _ADMIN:
        rest = _strip(pattern, rest)
    community = None
    found = _COMMUNITY.match(rest)
    if found:
        community = found.group(0)
        rest = rest[found.end() :] or community
    rest = _strip(_ROAD, rest).strip("-")
    return (rest or None), community


def _strip(pattern: re.Pattern[str], text: str) -> str:
    """``text`` without the leading part ``pattern`` matches, when a name remains after it."""
    found = pattern.match(text)
    if found is None:
        return text
    rest = text[found.end() :]
    return rest if rest and rest not in GENERIC else text


def building_parts(name: str | None) -> tuple[str | None, str | None]:
    """(compound, number) read from a building's name: "3号楼" -> (None, "3"),
    "翠湖小区B座" -> ("翠湖小区", "B"); (None, None) when the name holds no number."""
    if not name:
        return None, None
    flat = normalise(name)
    matches = list(_BUILDING.finditer(flat))
    if not matches:
        return None, None
    found = matches[-1]
    try:
        number = _number_text(found.group("b"))
    except ValueError:
        return None, None
    compound, _ = _compound(flat[: found.start()])
    return compound, number


# --- matching ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Building:
    """A building as the matcher sees it."""

    id: int
    code: str
    name: str | None
    compound: str | None
    number: str | None
    community_id: int | None = None
    community: str | None = None
    community_code: str | None = None


#: Why an address matched no building: the code, and its English text (values by name); pages
#: show the code's label in their language (``why_<code>`` in ``gridsvc.web.i18n``).
REASONS = {
    "empty": "empty address",
    "no_number": "no building number",
    "unreadable": "unreadable number: {value}",
    "no_compound": "no compound named",
    "no_building": "no building {number} in {compound}",
    "no_such_compound": "no such compound",
    "no_such_compound_near": "no such compound (closest {closest}, {score})",
    "no_compounds": "no compound in the buildings layer",
    "ambiguous_compound": (
        "ambiguous compound: {first} ({first_score}) or {second} ({second_score})"
    ),
    "ambiguous_building": "ambiguous building {number} of {compound}: {first} or {second}",
    "community_no_building": "no compound named, and no building {number} in the community",
    "community_ambiguous": "ambiguous: no compound named, and building {number} of the "
    "community is {first} or {second}",
    "no_room": "no room number: a household without a code needs one (门牌) to be told apart",
}
#: A fuzzy candidate below this similarity is not worth naming as the closest.
NAME_CLOSEST = 0.5


@dataclass(frozen=True)
class Match:
    """How one address matched: ``building`` set and ``how`` (``exact``, ``normalised``,
    ``fuzzy`` with ``score``, ``community``), or no building and why (``why``, a code of
    :data:`REASONS`, with its values ``args``; ``reason`` is the English text)."""

    building: Building | None
    how: str | None = None
    score: float | None = None
    why: str | None = None
    args: tuple[tuple[str, str], ...] = ()
    candidates: tuple[Building, ...] = ()

    @property
    def reason(self) -> str | None:
        """Why not, in English (reports, rejects, the CLI)."""
        return None if self.why is None else REASONS[self.why].format(**dict(self.args))


def unmatched(why: str, **args: object) -> Match:
    """A match that found no building, for the reason ``why`` (:data:`REASONS`)."""
    return Match(None, why=why, args=tuple((k, str(v)) for k, v in args.items()))


@dataclass
class _Compound:
    name: str
    key: str
    community_id: int | None
    numbers: dict[str, list[Building]] = field(default_factory=dict)


def _label(b: Building) -> str:
    return f"{b.code} ({b.name or b.number})"


class BuildingIndex:
    """Buildings grouped by compound (per community) and number, for :meth:`match`.

    A building without a compound belongs to its community's name: "3号楼" in 翠湖社区 matches
    "翠湖社区3号楼". Results are cached per (compound, number, community): a roster repeats them.
    """

    def __init__(
        self, buildings: Iterable[Building], *, fuzzy_min: float = 0.85, fuzzy_margin: float = 0.1
    ) -> None:
        self.fuzzy_min = fuzzy_min
        self.fuzzy_margin = fuzzy_margin
        groups: dict[tuple[int | None, str], _Compound] = {}
        self.community_names: set[str] = set()
        self.by_code: dict[str, Building] = {}
        self._community_ids: dict[str, set[int | None]] = {}
        for b in buildings:
            self.by_code[b.code] = b
            compound, number = b.compound, b.number
            if compound is None or number is None:
                derived_compound, derived_number = building_parts(b.name)
                compound = compound or derived_compound or b.community
                number = number or derived_number
            if b.community:
                self.community_names.add(normalise(b.community))
                self._community_ids.setdefault(normalise(b.community), set()).add(b.community_id)
            if not compound or not number:
                continue
            canonical = _compound(normalise(compound))[0] or normalise(compound)
            key = (b.community_id, canonical)
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Compound(compound, compound_key(canonical), b.community_id)
            group.numbers.setdefault(str(number).upper(), []).append(b)
        self._groups = list(groups.values())
        self._exact: dict[str, list[_Compound]] = {}
        self._keyed: dict[str, list[_Compound]] = {}
        for g in self._groups:
            for name in {normalise(g.name), _compound(normalise(g.name))[0]}:
                if name:
                    self._exact.setdefault(name, []).append(g)
            self._keyed.setdefault(g.key, []).append(g)
        self._keys = list(self._keyed)
        self._cache: dict[tuple[str | None, str | None, int | None, str | None], Match] = {}

    def __len__(self) -> int:
        return sum(len(v) for g in self._groups for v in g.numbers.values())

    def match(
        self,
        compound: str | None,
        number: str | None,
        *,
        community_id: int | None = None,
        community: str | None = None,
    ) -> Match:
        """The building named by ``compound`` and ``number`` (``community_id`` narrows)."""
        key = (compound, number, community_id, community)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._match(compound, number, community_id, community)
        return cached

    def _match(
        self,
        compound: str | None,
        number: str | None,
        community_id: int | None,
        community: str | None,
    ) -> Match:
        if not number:
            return unmatched("no_number")
        if community_id is None and community:
            named = self._community_ids.get(normalise(community), set())
            community_id = next(iter(named)) if len(named) == 1 else None
        if not compound:
            compound = community
        if not compound:
            return self._by_community(number, community_id)
        found_groups = self._compounds(normalise(compound), community_id)
        if found_groups.problem is not None:
            return found_groups.problem
        groups, how, score = found_groups.groups, found_groups.how, found_groups.score
        having = [(g, g.numbers[number]) for g in groups if number in g.numbers]
        if not having:
            names = "、".join(sorted({g.name for g in groups}))
            return unmatched("no_building", number=number, compound=names)
        found = [b for _, bs in having for b in bs]
        if len(found) > 1:
            return _ambiguous(found, "ambiguous_building", number=number, compound=groups[0].name)
        return Match(found[0], how, score)

    def _by_community(self, number: str, community_id: int | None) -> Match:
        if community_id is None:
            return unmatched("no_compound")
        found = [
            b
            for g in self._groups
            if g.community_id == community_id
            for b in g.numbers.get(number, [])
        ]
        if not found:
            return unmatched("community_no_building", number=number)
        if len(found) > 1:
            return _ambiguous(found, "community_ambiguous", number=number)
        return Match(found[0], "community")

    def _compounds(self, name: str, community_id: int | None) -> _Found:
        """Compound groups named ``name`` (in ``community_id`` when given)."""
        for candidate in self._names_to_try(name):
            exact = _scoped(self._exact.get(candidate, []), community_id)
            if exact:
                return _Found(exact, "exact")
            keyed = _scoped(self._keyed.get(compound_key(candidate), []), community_id)
            if keyed:
                return _Found(keyed, "normalised")
        return self._fuzzy(compound_key(name), community_id)

    def _names_to_try(self, name: str) -> list[str]:
        """The name, then without a leading community name the index knows."""
        names = [name]
        for known in self.community_names:
            if name.startswith(known) and len(name) > len(known):
                names.append(name[len(known) :])
        return names

    def _fuzzy(self, key: str, community_id: int | None) -> _Found:
        keys = [k for k in self._keys if _scoped(self._keyed[k], community_id)]
        if not keys:
            return _Found([], problem=unmatched("no_compounds"))
        best = process.extract(key, keys, scorer=fuzz.ratio, limit=2)
        top, top_score = best[0][0], best[0][1] / 100
        second = best[1][1] / 100 if len(best) > 1 else 0.0
        name = self._keyed[top][0].name
        if top_score < NAME_CLOSEST:
            return _Found([], problem=unmatched("no_such_compound"))
        if top_score < self.fuzzy_min:
            near = unmatched("no_such_compound_near", closest=name, score=f"{top_score:.2f}")
            return _Found([], problem=near)
        if top_score - second < self.fuzzy_margin:
            problem = unmatched(
                "ambiguous_compound",
                first=name,
                first_score=f"{top_score:.2f}",
                second=self._keyed[best[1][0]][0].name,
                second_score=f"{second:.2f}",
            )
            return _Found([], problem=problem)
        return _Found(_scoped(self._keyed[top], community_id), "fuzzy", round(top_score, 3))


@dataclass(frozen=True)
class _Found:
    """Compound groups found for a name, how, with the fuzzy score; or the problem."""

    groups: list[_Compound]
    how: str | None = None
    score: float | None = None
    problem: Match | None = None


def _scoped(groups: list[_Compound], community_id: int | None) -> list[_Compound]:
    return [g for g in groups if community_id is None or g.community_id == community_id]


def _ambiguous(found: list[Building], why: str, **args: str) -> Match:
    second = _label(found[1]) + (f" (+{len(found) - 2})" if len(found) > 2 else "")
    match = unmatched(why, first=_label(found[0]), second=second, **args)
    return replace(match, candidates=tuple(found))
