"""A deterministic demo district shaped like the seeds' figures, from one street to a whole city.

One street has 5 communities of about 3,700 households in about 76 residential buildings each
(the seeds' community: 76 buildings, 3,724 households), grids of 300-500 households numbered
west→east, north→south (DB11/T 2157-2023), a few commercial and public buildings, party members
at about 12 % of households (many retirees, some in-service, a share not eligible), about 10
community cadres per community plus street cadres, and 2-3 Red Stations per community. The last
community of every street is in deficit (members at about 3 % of households) so that blind spots
exist. Roads run along every grid edge, and lanes between the building slots of each grid (a gated
compound whose lanes reach the surrounding roads at two gates only), so Red Station reach is
measured by walking distance. ``households`` above one street's worth tiles streets into a city.

:func:`generate_demo` is pure (numpy in memory); :func:`load_demo` writes it with the bulk loader.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection

from geodata.load import load_layer
from geodata.projection import to_lonlat
from gridsvc.settings import Settings

DISTRICT = "530102"  # 昆明市五华区 (GB/T 2260); the demo sits in Kunming's UTM zone.
ORIGIN_LONLAT = (102.70, 25.05)
UTM = 32648
COMMUNITY_HOUSEHOLDS = 3724
BUILDINGS_PER_COMMUNITY = 76
COMMUNITIES_PER_STREET = 5
COMMUNITY_SIDE_M = 640.0
GRID_SIDE = 3  # 3 x 3 grids per community: ~410 households each
SLOTS_X, SLOTS_Y = 3, 4  # building slots per grid (12; lanes run along the slot edges)
LANE_GAP_M = 6.0  # a compound's lanes stop this short of the surrounding roads, except at gates
MEMBER_RATE = 0.12
DEFICIT_MEMBER_RATE = 0.03
KIND_SHARES = {"retired": 0.55, "resident": 0.2, "in_service": 0.2, "mobile": 0.05}
INELIGIBLE_RATE = {"retired": 0.2, "resident": 0.08, "in_service": 0.1, "mobile": 0.4}
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国红梅玉兵文辉")
STREET_NAMES = ["华山", "护国", "大观", "龙翔", "丰宁", "莲华", "红云", "黑林铺", "普吉", "西翥"]
#: The compound (小区) of each of a community's nine grids: 翠湖东苑, 翠湖花园 ...
COMPOUND_SUFFIXES = ("东苑", "西苑", "南苑", "北苑", "花园", "小区", "家园", "新村", "雅居")
COMMUNITY_WORDS = ["翠湖", "文林", "青云", "钱局", "先生坡", "五一", "光华", "福林", "兴苑", "金碧"]


@dataclass(frozen=True)
class DemoDistrict:
    """The generated layers, each a frame ready for :func:`geodata.load.load_layer`."""

    layers: dict[str, gpd.GeoDataFrame]

    def counts(self) -> dict[str, int]:
        """Records per layer."""
        return {name: len(frame) for name, frame in self.layers.items()}


def generate_demo(*, seed: int = 1, households: int | None = None) -> DemoDistrict:
    """Generate the demo district.

    Parameters
    ----------
    seed
        Random seed; the same seed and size always give the same district.
    households
        Total households; default one street (5 x 3,724). Communities stay ~3,700 households.

    Returns
    -------
    DemoDistrict
        Streets, communities, grids, buildings, households, members, cadres, stations and roads.
    """
    rng = np.random.default_rng(seed)
    total = households or COMMUNITIES_PER_STREET * COMMUNITY_HOUSEHOLDS
    n_comm = max(1, round(total / COMMUNITY_HOUSEHOLDS))
    per_comm = _split(total, n_comm, rng)
    comms = _communities(n_comm)
    grids = _grids(comms)
    buildings, residential = _buildings(comms, grids, rng)
    hh = _households(residential, per_comm, rng)
    members = _members(hh, comms, rng)
    layers = {
        "streets": _street_frame(comms, grids),
        "communities": _community_frame(comms, grids),
        "grids": _frame(grids, ["code", "name", "community_code"]),
        "buildings": _frame(
            buildings,
            [
                "code",
                "name",
                "kind",
                "floors",
                "party_org",
                "available_site",
                "compound",
                "number",
                "community_code",
                "grid_code",
            ],
        ),
        "households": _points(
            hh,
            [
                "code",
                "name",
                "phone",
                "size",
                "elderly_alone",
                "disabled",
                "low_income",
                "children",
                "unit",
                "room",
                "building_code",
                "grid_code",
                "community_code",
            ],
        ),
        "members": _points(
            members,
            [
                "code",
                "name",
                "phone",
                "kind",
                "eligible",
                "unit",
                "room",
                "building_code",
                "grid_code",
                "community_code",
            ],
        ),
        "cadres": _points(
            _cadres(comms, rng), ["code", "name", "phone", "level", "street_code", "community_code"]
        ),
        "stations": _points(
            _stations(buildings, rng), ["code", "name", "services", "community_code"]
        ),
        "roads": _frame(_roads(comms, grids), ["code", "name", "kind", "street_code"]),
    }
    return DemoDistrict(layers)


def load_demo(
    conn: Connection,
    *,
    seed: int = 1,
    households: int | None = None,
    progress: bool = False,
    address_rosters: bool = False,
    settings: Settings | None = None,
    rosters_dir: Path | None = None,
) -> dict[str, int]:
    """Generate the demo district and load it in the caller's transaction; return counts.

    With ``address_rosters`` households and members come the way communities keep them: as a
    住户信息表 and a 党员花名册 (XLSX, Chinese headers) that name each person by address only,
    written to ``rosters_dir`` (default a temporary folder) and imported through the importer,
    which resolves every address to its building (:mod:`geodata.rosters`).
    """
    district = generate_demo(seed=seed, households=households)
    counts = {}
    roster_layers = ("households", "members") if address_rosters else ()
    for name, frame in district.layers.items():
        if name in roster_layers:
            continue
        result = load_layer(conn, name, frame, source=f"demo:{name}", progress=progress)
        if result.rejects:  # generated data is valid by construction; fail loudly if not
            raise RuntimeError(f"demo {name}: {result.rejects[0]}")
        counts[name] = result.loaded
    if address_rosters:
        counts.update(_import_rosters(conn, district, seed, settings or Settings(), rosters_dir))
    return counts


def _import_rosters(
    conn: Connection, district: DemoDistrict, seed: int, settings: Settings, folder: Path | None
) -> dict[str, int]:
    from geodata.importer import import_file

    counts = {}
    with tempfile.TemporaryDirectory(prefix="gridsvc-demo-rosters-") as scratch:
        target = Path(folder or scratch)
        target.mkdir(parents=True, exist_ok=True)
        for layer, path in write_rosters(district, target, seed=seed).items():
            result = import_file(conn, layer, path, settings=settings, created_by="demo")
            counts[layer] = result.loaded
    return counts


#: 住户信息表 and 党员花名册 headers, as communities and branch secretaries export them.
HOUSEHOLD_ROSTER = (
    "户主姓名",
    "联系电话",
    "家庭人口",
    "居住地址",
    "独居老人",
    "残疾",
    "低保",
    "儿童",
)
MEMBER_ROSTER = (
    "姓名",
    "性别",
    "出生日期",
    "所在支部",
    "联系电话",
    "居住地址",
    "党员类型",
    "是否可结对",
)
_MEMBER_TYPES = {"retired": "退休", "in_service": "在职", "mobile": "流动党员", "resident": "居民"}


def write_rosters(district: DemoDistrict, folder: Path, *, seed: int = 1) -> dict[str, Path]:
    """The demo's households and members as address rosters (XLSX): ``{layer: path}``.

    Addresses take the forms clerks write: "翠湖东苑3号楼2单元501室", "翠湖东苑3栋2-501",
    "翠湖东苑三号楼二单元五〇一", full-width digits, a leading district and street name.
    """
    from geodata.addresses import chinese_numeral

    rng = np.random.default_rng(seed + 7919)
    buildings = district.layers["buildings"].set_index("code")
    street_frame = district.layers["streets"]
    streets = dict(zip(street_frame["code"], street_frame["name"], strict=True))
    yes = np.array(["否", "是"])

    def addresses(frame: pd.DataFrame) -> list[str]:
        b = buildings.loc[frame["building_code"]]
        forms = rng.integers(0, 5, len(frame))
        full = str.maketrans("0123456789-", "０１２３４５６７８９－")
        out = []
        for c, n, u, r, f, code in zip(
            b["compound"],
            b["number"],
            frame["unit"],
            frame["room"],
            forms,
            frame["community_code"],
            strict=True,
        ):
            out.append(
                (
                    f"{c}{n}号楼{u}单元{r}室",
                    f"{c}{n}栋{u}-{r}",
                    f"{c}{chinese_numeral(int(n))}号楼{chinese_numeral(int(u))}单元"
                    f"{chinese_numeral(int(r), style='digits')}",
                    f"{c}{n}#{u}-{r}".translate(full),
                    f"五华区{streets[code[:9]]}{c} {n} 幢 {u} 单元 {r}",
                )[f]
            )
        return out

    hh = district.layers["households"]
    households = pd.DataFrame(
        {
            HOUSEHOLD_ROSTER[0]: hh["name"],
            HOUSEHOLD_ROSTER[1]: hh["phone"],
            HOUSEHOLD_ROSTER[2]: hh["size"],
            HOUSEHOLD_ROSTER[3]: addresses(hh),
            HOUSEHOLD_ROSTER[4]: yes[hh["elderly_alone"].astype(int)],
            HOUSEHOLD_ROSTER[5]: yes[hh["disabled"].astype(int)],
            HOUSEHOLD_ROSTER[6]: yes[hh["low_income"].astype(int)],
            HOUSEHOLD_ROSTER[7]: yes[hh["children"].astype(int)],
        }
    )
    m = district.layers["members"]
    retired = (m["kind"] == "retired").to_numpy()
    year = np.where(retired, rng.integers(1940, 1963, len(m)), rng.integers(1965, 2001, len(m)))
    births = [
        f"{y}-{mo:02d}-{d:02d}"
        for y, mo, d in zip(
            year, rng.integers(1, 13, len(m)), rng.integers(1, 29, len(m)), strict=True
        )
    ]
    branch = buildings.loc[m["building_code"], "grid_code"].str[-1].map("第{}支部".format)
    members = pd.DataFrame(
        {
            MEMBER_ROSTER[0]: m["name"],
            MEMBER_ROSTER[1]: rng.choice(["男", "女"], len(m)),
            MEMBER_ROSTER[2]: births,
            MEMBER_ROSTER[3]: branch.to_numpy(),
            MEMBER_ROSTER[4]: m["phone"],
            MEMBER_ROSTER[5]: addresses(m),
            MEMBER_ROSTER[6]: m["kind"].map(_MEMBER_TYPES),
            MEMBER_ROSTER[7]: yes[m["eligible"].astype(int)],
        }
    )
    paths = {"households": folder / "住户信息表.xlsx", "members": folder / "党员花名册.xlsx"}
    households.to_excel(paths["households"], index=False)
    members.to_excel(paths["members"], index=False)
    return paths


# --- layout ------------------------------------------------------------------------------------


def _split(total: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """``parts`` sizes near ``total / parts`` (±8 %) summing to ``total``."""
    weights = rng.uniform(0.92, 1.08, parts)
    sizes = np.floor(weights / weights.sum() * total).astype(int)
    sizes[: total - sizes.sum()] += 1
    return sizes


def _communities(n: int) -> pd.DataFrame:
    idx = np.arange(n)
    street = idx // COMMUNITIES_PER_STREET
    streets_per_row = max(1, int(np.ceil(np.sqrt(n / COMMUNITIES_PER_STREET))))
    col = (street % streets_per_row) * COMMUNITIES_PER_STREET + idx % COMMUNITIES_PER_STREET
    row = street // streets_per_row
    x0 = col * COMMUNITY_SIDE_M
    y0 = -row * COMMUNITY_SIDE_M
    street_code = np.array([f"{DISTRICT}{s + 1:03d}" for s in street])
    return pd.DataFrame(
        {
            "street_code": street_code,
            "street_name": [
                f"{STREET_NAMES[s % 10]}街道{'' if s < 10 else s // 10 + 1}" for s in street
            ],
            "code": [
                f"{sc}{i % COMMUNITIES_PER_STREET + 1:03d}"
                for sc, i in zip(street_code, idx, strict=True)
            ],
            "name": [f"{COMMUNITY_WORDS[i % 10]}社区" for i in idx],
            "x0": x0,
            "y0": y0,
            "deficit": idx % COMMUNITIES_PER_STREET == COMMUNITIES_PER_STREET - 1,
        }
    )


def _box(x0: np.ndarray, y0: np.ndarray, w: np.ndarray | float, h: np.ndarray | float):
    """Rectangles with top-left corner (x0, y0) in metres."""
    return shapely.box(x0, y0 - h, x0 + w, y0)


def _grids(comms: pd.DataFrame) -> pd.DataFrame:
    side = COMMUNITY_SIDE_M / GRID_SIDE
    rows = []
    for k in range(GRID_SIDE * GRID_SIDE):  # west→east, north→south
        r, c = divmod(k, GRID_SIDE)
        rows.append(
            pd.DataFrame(
                {
                    "code": comms["code"] + f"{k + 1:03d}",
                    "name": comms["name"] + f"第{k + 1}网格",
                    "community_code": comms["code"],
                    "community_idx": np.arange(len(comms)),
                    "x0": comms["x0"] + c * side,
                    "y0": comms["y0"] - r * side,
                }
            )
        )
    grids = pd.concat(rows, ignore_index=True)
    grids["geometry"] = _box(grids["x0"].to_numpy(), grids["y0"].to_numpy(), side, side)
    return grids.sort_values("code", ignore_index=True)


def _buildings(
    comms: pd.DataFrame, grids: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All buildings, and the residential ones (with their community index)."""
    side = COMMUNITY_SIDE_M / GRID_SIDE
    slots_x, slots_y = SLOTS_X, SLOTS_Y  # 12 slots per grid, 108 per community
    slot_w, slot_h = side / slots_x, side / slots_y
    g = np.repeat(np.arange(len(grids)), slots_x * slots_y)
    s = np.tile(np.arange(slots_x * slots_y), len(grids))
    sx, sy = s % slots_x, s // slots_x
    w = rng.uniform(0.55, 0.8, len(g)) * slot_w
    h = rng.uniform(0.3, 0.55, len(g)) * slot_h
    x0 = grids["x0"].to_numpy()[g] + sx * slot_w + rng.uniform(0.05, 0.95, len(g)) * (slot_w - w)
    y0 = grids["y0"].to_numpy()[g] - sy * slot_h - rng.uniform(0.05, 0.95, len(g)) * (slot_h - h)
    comm_idx = grids["community_idx"].to_numpy()[g]
    # Per community: 76 residential, 5 commercial, 2 public, the remaining slots left empty.
    order = np.lexsort((rng.random(len(g)), comm_idx))
    rank = np.empty(len(g), int)
    starts = np.searchsorted(comm_idx[order], np.arange(len(comms)))
    rank[order] = np.arange(len(g)) - np.repeat(starts, np.bincount(comm_idx[order]))
    kind = np.full(len(g), "", dtype=object)
    kind[rank < BUILDINGS_PER_COMMUNITY] = "residential"
    kind[(rank >= 76) & (rank < 80)] = "commercial"
    kind[rank == 80] = "mixed"
    kind[(rank >= 81) & (rank < 83)] = "public"
    keep = kind != ""
    b = pd.DataFrame(
        {
            "grid_idx": g[keep],
            "community_idx": comm_idx[keep],
            "kind": kind[keep],
            "geometry": _box(x0[keep], y0[keep], w[keep], h[keep]),
        }
    ).sort_values(["community_idx", "grid_idx"], ignore_index=True)
    b["community_code"] = comms["code"].to_numpy()[b["community_idx"]]
    b["grid_code"] = grids["code"].to_numpy()[b["grid_idx"]]
    number = b.groupby("community_idx").cumcount() + 1
    b["code"] = b["community_code"] + "B" + number.map("{:03d}".format)
    b["name"] = number.map("{}号楼".format)
    b["number"] = number.map(str)
    word = comms["name"].str.removesuffix("社区").to_numpy()[b["community_idx"]]
    place = b["grid_code"].str[-3:].astype(int).to_numpy() - 1
    b["compound"] = word + np.asarray(COMPOUND_SUFFIXES, dtype=object)[place % 9]
    b["floors"] = np.where(
        b["kind"] == "residential", rng.integers(6, 19, len(b)), rng.integers(2, 12, len(b))
    )
    commercial = b["kind"].isin(["commercial", "mixed"])
    covered = rng.random(len(b)) < 0.5
    b["party_org"] = np.where(commercial & covered, "楼宇联合党支部", None)
    b["available_site"] = (b["kind"] != "residential") & (rng.random(len(b)) < 0.6)
    return b, b[b["kind"] == "residential"].reset_index(drop=True)


def _households(res: pd.DataFrame, per_comm: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Households: each community's total split evenly over its grids (±8 %), then over each
    grid's residential buildings in proportion to floor area."""
    area = shapely.area(res["geometry"].to_numpy()) * res["floors"].to_numpy()
    grid = res["grid_idx"].to_numpy()
    counts = np.zeros(len(res), int)
    for ci, total in enumerate(per_comm):
        grids = np.unique(grid[res["community_idx"].to_numpy() == ci])
        for g, g_total in zip(grids, _split(total, len(grids), rng), strict=True):
            idx = np.flatnonzero(grid == g)
            counts[idx] = np.floor(area[idx] / area[idx].sum() * g_total).astype(int)
            counts[idx[: g_total - counts[idx].sum()]] += 1
    b = np.repeat(np.arange(len(res)), counts)
    xmin, ymin, xmax, ymax = shapely.bounds(res["geometry"].to_numpy()[b]).T
    x = xmin + rng.uniform(0.1, 0.9, len(b)) * (xmax - xmin)
    y = ymin + rng.uniform(0.1, 0.9, len(b)) * (ymax - ymin)
    hh = pd.DataFrame(
        {
            "building_code": res["code"].to_numpy()[b],
            "grid_code": res["grid_code"].to_numpy()[b],
            "community_code": res["community_code"].to_numpy()[b],
            "x": x,
            "y": y,
        }
    )
    number = hh.groupby("community_code").cumcount() + 1
    hh["code"] = hh["community_code"] + "H" + number.map("{:05d}".format)
    # flats filled unit by unit, two per floor: unit 1 rooms 101, 102, 201 ... then unit 2
    floors = res["floors"].to_numpy()[b]
    j = hh.groupby("building_code").cumcount().to_numpy()
    per_unit = 2 * floors
    hh["unit"] = (j // per_unit + 1).astype(str)
    hh["room"] = ((j % per_unit) // 2 + 1) * 100 + j % 2 + 1
    hh["room"] = hh["room"].astype(str)
    n = len(hh)
    hh["name"] = _names(rng, n)
    hh["phone"] = _phones(rng, n)
    hh["size"] = rng.choice([1, 2, 3, 4, 5], n, p=[0.15, 0.3, 0.3, 0.18, 0.07])
    hh["elderly_alone"] = (hh["size"] == 1) & (rng.random(n) < 0.5)
    hh["disabled"] = rng.random(n) < 0.03
    hh["low_income"] = rng.random(n) < 0.04
    hh["children"] = (hh["size"] >= 3) & (rng.random(n) < 0.6)
    return hh


def _members(hh: pd.DataFrame, comms: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Members living in demo households; the deficit communities have few."""
    deficit = dict(zip(comms["code"], comms["deficit"], strict=True))
    rate = np.where(hh["community_code"].map(deficit), DEFICIT_MEMBER_RATE, MEMBER_RATE)
    m = hh[rng.random(len(hh)) < rate].reset_index(drop=True)
    n = len(m)
    kinds = rng.choice(list(KIND_SHARES), n, p=list(KIND_SHARES.values()))
    ineligible = rng.random(n) < np.vectorize(INELIGIBLE_RATE.get)(kinds)
    number = m.groupby("community_code").cumcount() + 1
    return m.assign(
        code=m["community_code"] + "M" + number.map("{:04d}".format),
        name=_names(rng, n),
        phone=_phones(rng, n),
        kind=kinds,
        eligible=~ineligible,
    )


def _cadres(comms: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """About 10 cadres per community at its office, and 8 street cadres per street office."""
    side = COMMUNITY_SIDE_M
    per = rng.integers(9, 12, len(comms))
    c = np.repeat(np.arange(len(comms)), per)
    number = pd.Series(c).groupby(c).cumcount().to_numpy() + 1
    community = pd.DataFrame(
        {
            "code": comms["code"].to_numpy()[c] + np.char.mod("C%02d", number),
            "level": "community",
            "street_code": comms["street_code"].to_numpy()[c],
            "community_code": comms["code"].to_numpy()[c],
            "x": comms["x0"].to_numpy()[c] + side * 0.5 + rng.normal(0, 5, len(c)),
            "y": comms["y0"].to_numpy()[c] - side * 0.5 + rng.normal(0, 5, len(c)),
        }
    )
    streets = comms.groupby("street_code").agg(x=("x0", "mean"), y=("y0", "first")).reset_index()
    s = np.repeat(np.arange(len(streets)), 8)
    street = pd.DataFrame(
        {
            "code": streets["street_code"].to_numpy()[s]
            + np.char.mod("C%02d", np.tile(np.arange(1, 9), len(streets))),
            "level": "street",
            "street_code": streets["street_code"].to_numpy()[s],
            "community_code": None,
            "x": streets["x"].to_numpy()[s] + side * 0.5 + rng.normal(0, 5, len(s)),
            "y": streets["y"].to_numpy()[s] - side * 0.1 + rng.normal(0, 5, len(s)),
        }
    )
    cadres = pd.concat([street, community], ignore_index=True)
    cadres["name"] = _names(rng, len(cadres))
    cadres["phone"] = _phones(rng, len(cadres))
    return cadres


def _stations(buildings: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """2-3 Red Stations per community, at the door of a random building."""
    services = ["党群服务", "日间照料", "四点半课堂", "助残", "养老服务"]
    rows = []
    for code, group in buildings.groupby("community_code", sort=True):
        k = int(rng.integers(2, 4))
        picks = group.iloc[rng.choice(len(group), k, replace=False)]
        centre = shapely.centroid(picks["geometry"].to_numpy())
        for i, (pt, _) in enumerate(zip(centre, range(k), strict=True)):
            chosen = rng.choice(services, 2, replace=False)
            rows.append(
                {
                    "code": f"{code}S{i + 1}",
                    "name": f"红色驿站{i + 1}号",
                    "services": list(chosen),
                    "community_code": code,
                    "x": shapely.get_x(pt),
                    "y": shapely.get_y(pt),
                }
            )
    return pd.DataFrame(rows)


def _roads(comms: pd.DataFrame, grids: pd.DataFrame) -> pd.DataFrame:
    """Roads on every grid edge (``secondary`` on community boundaries, ``branch`` inside) and,
    in each grid, ``lane`` s along the building slots' edges: a gated compound whose lanes stop
    :data:`LANE_GAP_M` short of the surrounding roads except at two gates (varying by grid).
    Deterministic: no random numbers, so the other layers stay as they were."""
    side = COMMUNITY_SIDE_M / GRID_SIDE
    x0, y0 = grids["x0"].to_numpy(), grids["y0"].to_numpy()
    k = grids["code"].str[-3:].astype(int).to_numpy() - 1  # position in the community
    r, c = divmod(k, GRID_SIDE)
    last = GRID_SIDE - 1
    edges = [  # (x1, y1, x2, y2, on the community boundary)
        (x0, y0, x0 + side, y0, r == 0),
        (x0, y0 - side, x0 + side, y0 - side, r == last),
        (x0, y0, x0, y0 - side, c == 0),
        (x0 + side, y0, x0 + side, y0 - side, c == last),
    ]
    g = np.arange(len(grids))
    lanes = []
    gap, slot_w, slot_h = LANE_GAP_M, side / SLOTS_X, side / SLOTS_Y
    for i in range(1, SLOTS_Y):  # west-east lanes; one of them opens to the west or east road
        gate = g % (SLOTS_Y - 1) == i - 1
        west = np.where(gate & (g % 2 == 0), x0, x0 + gap)
        east = np.where(gate & (g % 2 == 1), x0 + side, x0 + side - gap)
        lanes.append((west, y0 - i * slot_h, east, y0 - i * slot_h))
    for j in range(1, SLOTS_X):  # north-south lanes; one opens to the north or south road
        gate = g % (SLOTS_X - 1) == j - 1
        north = np.where(gate & (g // 2 % 2 == 0), y0, y0 - gap)
        south = np.where(gate & (g // 2 % 2 == 1), y0 - side, y0 - side + gap)
        lanes.append((x0 + j * slot_w, north, x0 + j * slot_w, south))
    street_of = dict(zip(comms["code"], comms["street_code"], strict=True))
    street = grids["community_code"].map(street_of).to_numpy()
    parts = [
        pd.DataFrame(
            {"x1": a, "y1": b, "x2": cx, "y2": d, "street_code": street, "grid": g}
        ).assign(kind=np.where(boundary, "secondary", "branch"))
        for a, b, cx, d, boundary in edges
    ]
    parts += [
        pd.DataFrame({"x1": a, "y1": np.broadcast_to(b, g.shape), "x2": cx, "y2": d}).assign(
            street_code=street, grid=g, kind="lane"
        )
        for a, b, cx, d in lanes
    ]
    roads = pd.concat(parts, ignore_index=True)
    ends = roads[["x1", "y1", "x2", "y2"]].round(2)
    roads = roads[~ends.duplicated()].sort_values(["street_code", "grid"], kind="stable")
    roads = roads.reset_index(drop=True)
    number = roads.groupby("street_code").cumcount() + 1
    roads["code"] = roads["street_code"] + "R" + number.map("{:04d}".format)
    roads["name"] = None
    start = np.column_stack([roads["x1"], roads["y1"]])
    end = np.column_stack([roads["x2"], roads["y2"]])
    roads["geometry"] = shapely.linestrings(np.stack([start, end], axis=1))
    return roads


# --- frames ------------------------------------------------------------------------------------


def _street_frame(comms: pd.DataFrame, grids: pd.DataFrame) -> gpd.GeoDataFrame:
    """Streets as the union of their grids, so boundaries share vertices exactly."""
    street_of = dict(zip(comms["code"], comms["street_code"], strict=True))
    by_street = grids.groupby(grids["community_code"].map(street_of), sort=True)["geometry"]
    geom = [shapely.union_all(g.to_numpy()) for _, g in by_street]
    names = comms.groupby("street_code", sort=True)["street_name"].first()
    frame = pd.DataFrame({"code": names.index, "name": names.to_numpy()})
    return _to_wgs84(frame, np.array(geom, dtype=object))


def _community_frame(comms: pd.DataFrame, grids: pd.DataFrame) -> gpd.GeoDataFrame:
    """Communities as the union of their grids: the grids tile them without gaps or overlaps."""
    by_comm = grids.groupby("community_code", sort=True)["geometry"]
    geom = [shapely.union_all(by_comm.get_group(c).to_numpy()) for c in comms["code"]]
    return _to_wgs84(comms[["code", "name", "street_code"]].copy(), np.array(geom, dtype=object))


def _frame(df: pd.DataFrame, columns: list[str]) -> gpd.GeoDataFrame:
    return _to_wgs84(df[columns].copy(), df["geometry"].to_numpy())


def _points(df: pd.DataFrame, columns: list[str]) -> gpd.GeoDataFrame:
    return _to_wgs84(df[columns].copy(), shapely.points(df["x"], df["y"]))


def _to_wgs84(frame: pd.DataFrame, geoms: np.ndarray) -> gpd.GeoDataFrame:
    """Place metre geometries at the demo origin and convert them to WGS84."""
    ox, oy = _origin()
    coords = shapely.get_coordinates(geoms)
    lon, lat = to_lonlat(coords[:, 0] + ox, coords[:, 1] + oy, epsg=UTM)
    moved = shapely.set_coordinates(np.array(geoms, dtype=object).copy(), np.c_[lon, lat])
    frame = frame.reset_index(drop=True)
    frame["_record"] = np.arange(1, len(frame) + 1)
    return gpd.GeoDataFrame(frame, geometry=moved, crs=4326)


def _origin() -> tuple[float, float]:
    from geodata.projection import to_metres

    x, y, _ = to_metres([ORIGIN_LONLAT[0]], [ORIGIN_LONLAT[1]], epsg=UTM)
    return float(x[0]), float(y[0])


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    s = rng.choice(SURNAMES, n)
    g1 = rng.choice(GIVEN, n)
    g2 = np.where(rng.random(n) < 0.6, rng.choice(GIVEN, n), "")
    return np.char.add(np.char.add(s, g1), g2)


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = rng.choice(["138", "139", "150", "186", "177", "135"], n)
    return np.char.add(prefix, np.char.zfill(rng.integers(0, 10**8, n).astype(str), 8))


# --- six months of contacts ---------------------------------------------------------------------

CHANNEL_SHARES = {"visit": 0.5, "phone": 0.25, "wechat": 0.2, "other": 0.05}
NOTES = [
    "了解近况，身体健康",
    "帮助预约社区医生",
    "询问用水用电，无问题",
    "老人独居，叮嘱注意防滑",
    "反映楼道灯坏了，已报物业",
    "送去社区活动通知",
    "子女在外地，电话问候",
    "协助办理医保手续",
    "",
    "",
]
#: Member habits: share of members, and the gap between contacts as a multiple of the cadence.
HABITS = {"regular": (0.72, 0.55), "sporadic": (0.18, 1.6), "idle": (0.10, None)}
NEVER_REACHED = 0.04


def generate_contacts(
    pairs: pd.DataFrame, *, now: pd.Timestamp, days: int = 182, seed: int = 1
) -> pd.DataFrame:
    """Contacts of the current pairs over the last ``days`` (pure).

    ``pairs`` has ``household_id``, ``member_id``, ``community_id``, ``cadence_days``. Most
    members are regular (a contact every ~0.55 cadence), some sporadic, some idle (nothing in the
    last 100 days); 4 % of households were never reached; vulnerable households, whose cadence
    is shorter, are contacted more often. Times fall between 08:30 and 20:30 Beijing time.
    """
    rng = np.random.default_rng(seed)
    members = pairs["member_id"].unique()
    habit = rng.choice(list(HABITS), size=len(members), p=[v[0] for v in HABITS.values()])
    habit_of = pd.Series(habit, index=members)
    hh = pairs.assign(habit=pairs["member_id"].map(habit_of).to_numpy())
    hh = hh[rng.random(len(hh)) >= NEVER_REACHED]
    factor = hh["habit"].map({k: v[1] or 0.0 for k, v in HABITS.items()}).to_numpy(float)
    idle = (hh["habit"] == "idle").to_numpy()
    span = np.where(idle, days - 100, days).astype(float)
    gap = np.where(idle, 45.0, factor * hh["cadence_days"].to_numpy(float))
    counts = rng.poisson(span / np.maximum(gap, 1.0))
    rows = np.repeat(np.arange(len(hh)), counts)
    start = now - pd.Timedelta(days=days)
    day = np.floor(rng.random(len(rows)) * span[rows])
    minutes = rng.integers(8 * 60 + 30, 20 * 60 + 30, len(rows))
    local = (start.tz_convert("Asia/Shanghai").normalize() + pd.to_timedelta(day, unit="D")
             + pd.to_timedelta(minutes, unit="m"))  # fmt: skip
    at = pd.DatetimeIndex(local).tz_convert("UTC")
    keep = at < now
    picked = hh.iloc[rows[keep]]
    channels = rng.choice(
        list(CHANNEL_SHARES), size=int(keep.sum()), p=list(CHANNEL_SHARES.values())
    )
    return pd.DataFrame(
        {
            "household_id": picked["household_id"].to_numpy(),
            "member_id": picked["member_id"].to_numpy(),
            "community_id": picked["community_id"].to_numpy(),
            "contacted_at": at[keep],
            "channel": channels,
            "note": rng.choice(NOTES, size=int(keep.sum())),
        }
    ).sort_values("contacted_at", ignore_index=True)


def load_demo_contacts(conn: Connection, *, contact_days: int, vulnerable_days: int) -> int:
    """Write six months of demo contacts for the current pairs (once: none when some exist)."""
    from sqlalchemy import text

    if conn.scalar(text("SELECT count(*) FROM contacts WHERE source = 'demo'")):
        return 0
    result = conn.execute(
        text(
            "SELECT p.household_id, p.member_id, h.community_id, CASE WHEN h.elderly_alone "
            "OR h.disabled OR h.low_income OR h.children THEN :v ELSE :d END AS cadence_days "
            "FROM current_household_pairs p JOIN households h ON h.id = p.household_id"
        ),
        {"v": vulnerable_days, "d": contact_days},
    )
    pairs = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if pairs.empty:
        return 0
    frame = generate_contacts(pairs, now=pd.Timestamp.now(tz="UTC"))
    columns = "household_id, member_id, community_id, contacted_at, channel, note, source"
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY contacts ({columns}) FROM STDIN") as copy:
        for r in frame.itertuples(index=False):
            copy.write_row(
                (r.household_id, r.member_id, r.community_id, r.contacted_at.isoformat(),
                 r.channel, r.note or None, "demo")
            )  # fmt: skip
    return len(frame)
