"""Demo data: realistic, reproducible declarations with planted violations, outcomes and controls.

``generate(n, seed)`` yields :class:`DemoRecord` values (a declaration, its clearance outcome, its
controls, and which violation was planted, if any) without touching a database; the same seed
always gives the same records. :mod:`riskengine.demo.output` stores them or writes them as a
customs-service-style CSV export (one row per goods item; see ``docs/ingest.md``).

What is in it:

* goods across the tariff: footwear (6402-6404), clothing (61, 62), phones, laptops, TVs (85),
  LED lamps and diodes, vehicle parts (8708) and general articles (7326, 7318, 3926), steel pipes,
  nails, tiles (anti-dumping goods), organic chemicals and precursors (29), wine, spirits, beer
  (2203-2208), cigarettes (24), toys (9503), appliances, food, fuel, furniture, machinery;
  each with a plausible unit price per kg in UAH, masses, supplementary units, duty and excise;
* origins, exporters and dispatch countries that fit the goods, offices, regimes (import 40,
  export 10, transit 80, customs warehouse 71), transport, currencies;
* traders with very uneven activity; a few percent of them are **repeat offenders** who keep
  using one scheme, so history matters; AEO traders never violate;
* planted violations (a few percent of declarations): undervaluation, misclassification under a
  duty-free heading, false origin of anti-dumping goods, excise evasion, counterfeit brands,
  undeclared goods (masses that do not add up), precursors without a licence, transit diversion;
  most are caught (non-completed clearance with appendix-3 reasons, a control that found the
  violation and assessed revenue), some slip through;
* honest but suspicious-looking goods (cheap plastic footwear, ...), technical non-completions,
  clean documentary controls ordered by profiles, and random controls (the baseline hit rate).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import attrs

from riskengine.declaration import Declaration
from riskengine.store.writer import (
    ControlRecord,
    OutcomeRecord,
)

__all__ = [
    "DEFAULT_END",
    "DEFAULT_START",
    "GOODS",
    "OFFICES",
    "PROFILE_KEYS",
    "DemoRecord",
    "generate",
]

DEFAULT_START = dt.date(2024, 1, 1)
DEFAULT_END = dt.date(2025, 12, 31)

#: Profile keys (from ``profiles/``) that order controls for each violation scheme.
PROFILE_KEYS = {
    "undervaluation": "2A/08/2013/00117-04",
    "misclassification": "3C/10/2022/00031-02",
    "false_origin": "4D/09/2023/00012-01",
    "counterfeit": "5E/14/2012/00009-06",
    "precursor": "6F/12/2014/00021-03",
    "excise": "7G/07/2012/00048-05",
    "transit": "8H/17/2022/00064-02",
    "undeclared": "9K/15/2023/00088-01",
}


@attrs.frozen
class DemoRecord:
    """One generated declaration with what happened to it."""

    declaration: Declaration
    outcome: OutcomeRecord
    controls: tuple[ControlRecord, ...]
    #: The planted violation scheme (a key of :data:`PROFILE_KEYS`), or ``None``.
    violation: str | None = None

    @property
    def item_rows(self) -> int:
        """Rows this declaration takes in a one-row-per-item export."""
        return max(1, len(self.declaration.items))


# --- reference data ---------------------------------------------------------------------------


@attrs.frozen
class _Goods:
    key: str
    codes: tuple[str, ...]
    descriptions: tuple[str, ...]
    price: tuple[float, float]  # UAH per kg of net mass
    mass: tuple[float, float]  # net kg per item, log-uniform
    unit: str | None  # supplementary unit code
    unit_kg: float  # net kg per supplementary unit
    duty: float
    excise: float
    origins: tuple[tuple[str, float], ...]
    weight: float
    brands: tuple[str, ...] = ()
    packing: float = 1.12  # gross / net


_ASIA = (("CN", 0.55), ("VN", 0.15), ("TR", 0.1), ("IN", 0.1), ("BD", 0.1))
_WORLD = (("CN", 0.35), ("TR", 0.1), ("DE", 0.12), ("PL", 0.12), ("IT", 0.06), ("US", 0.05),
          ("IN", 0.05), ("KR", 0.05), ("JP", 0.03), ("FR", 0.04), ("CZ", 0.03))  # fmt: skip
_STEEL = (("CN", 0.3), ("TR", 0.25), ("PL", 0.2), ("DE", 0.15), ("IN", 0.1))

GOODS: tuple[_Goods, ...] = (
    _Goods("footwear_leather", ("6403990000", "6403919800", "6403511900"),
           ("Leather footwear for men", "Women's leather boots", "Leather shoes"),
           (900, 2200), (80, 3000), "715", 0.9, 10, 0,
           (("CN", 0.35), ("VN", 0.25), ("IT", 0.1), ("TR", 0.15), ("IN", 0.15)), 6,
           ("Ecco", "Clarks", "Nike", "Geox")),
    _Goods("footwear_textile", ("6404110000", "6404199000"),
           ("Sports shoes with textile uppers", "Textile sneakers"),
           (600, 1500), (80, 2500), "715", 0.6, 10, 0, _ASIA, 4, ("Adidas", "Puma", "Nike")),
    _Goods("footwear_plastic", ("6402999800", "6402201000"),
           ("Rubber slippers", "Plastic beach sandals"),
           (330, 900), (100, 4000), "715", 0.4, 10, 0, _ASIA, 3),
    _Goods("knitwear", ("6109100000", "6110203000", "6110309900"),
           ("Cotton T-shirts", "Knitted sweaters", "Cotton pullovers"),
           (1000, 2400), (50, 2000), "796", 0.3, 12, 0, _ASIA, 7,
           ("Lacoste", "Nike", "Adidas", "Zara")),
    _Goods("clothing", ("6203423100", "6204620000", "6203431900"),
           ("Men's cotton trousers", "Women's jeans", "Men's trousers"),
           (600, 1600), (50, 2000), "796", 0.5, 12, 0, _ASIA, 6, ("Levi's", "Gucci", "Zara")),
    _Goods("phones", ("8517130000",), ("Smartphones", "Mobile phones"),
           (20000, 45000), (5, 300), "796", 0.3, 0, 0, (("CN", 0.7), ("VN", 0.2), ("IN", 0.1)),
           3, ("Apple", "Samsung", "Xiaomi")),
    _Goods("laptops", ("8471300000",), ("Portable computers", "Laptops"),
           (9000, 20000), (10, 800), "796", 2.0, 0, 0, (("CN", 0.85), ("TW", 0.15)), 2),
    _Goods("tv", ("8528721000",), ("LED television receivers",),
           (1200, 2500), (100, 4000), "796", 12.0, 14, 0, (("CN", 0.6), ("KR", 0.2), ("PL", 0.2)),
           2, ("Samsung", "LG")),
    _Goods("audio", ("8518220000", "8518300000"), ("Loudspeakers", "Headphones"),
           (2000, 6000), (10, 500), "796", 0.5, 0, 0, (("CN", 0.8), ("VN", 0.2)), 1.5,
           ("JBL", "Sony")),
    _Goods("led_lamps", ("9405420039", "9405110090"), ("LED lamps E27", "LED ceiling luminaires"),
           (400, 1000), (50, 3000), "796", 0.1, 10, 0, (("CN", 0.9), ("PL", 0.1)), 2),
    _Goods("diodes", ("8541410000",), ("Light-emitting diodes (LED chips)",),
           (3000, 8000), (5, 200), None, 1.0, 0, 0, (("CN", 0.6), ("TW", 0.2), ("KR", 0.2)), 1),
    _Goods("auto_parts", ("8708301099", "8708801000", "8708913599"),
           ("Brake pads for cars", "Suspension shock absorbers for cars", "Radiators for cars"),
           (250, 700), (50, 3000), None, 1.0, 5, 0, _WORLD, 4),
    _Goods("metal_articles", ("7326909807", "7318159000"),
           ("Articles of iron or steel", "Steel screws and bolts"),
           (80, 250), (100, 5000), None, 1.0, 0, 0, _WORLD, 3),
    _Goods("plastic_articles", ("3926909709",), ("Articles of plastics",),
           (100, 300), (100, 5000), None, 1.0, 0, 0, _WORLD, 3),
    _Goods("steel_pipes", ("7304190000", "7306303000"), ("Seamless steel pipes", "Welded pipes"),
           (35, 70), (2000, 25000), None, 1.0, 5, 0, _STEEL, 2),
    _Goods("nails", ("7317006000",), ("Steel nails",), (40, 70), (1000, 20000), None, 1.0, 5, 0,
           _STEEL, 1),
    _Goods("tiles", ("6907220000",), ("Ceramic floor tiles",), (15, 40), (3000, 24000), None,
           1.0, 7, 0, (("ES", 0.3), ("IT", 0.2), ("CN", 0.2), ("PL", 0.2), ("TR", 0.1)), 2),
    _Goods("acetone", ("2914110000",), ("Acetone",), (35, 70), (200, 10000), None, 1.0, 0, 0,
           (("DE", 0.4), ("PL", 0.3), ("NL", 0.3)), 0.5),
    _Goods("organic_chemicals", ("2933399900", "2905110000", "2917120000"),
           ("Heterocyclic compounds", "Methanol", "Adipic acid"),
           (50, 600), (200, 15000), None, 1.0, 2, 0, (("DE", 0.3), ("CN", 0.4), ("IN", 0.3)), 2),
    _Goods("wine", ("2204217900", "2204219300"), ("Still red wine", "Dry white wine"),
           (100, 400), (300, 8000), "112", 1.0, 10, 0.02, (("IT", 0.3), ("FR", 0.3),
                                                              ("ES", 0.2), ("GE", 0.2)), 2,
           packing=1.5),
    _Goods("spirits", ("2208601100", "2208301100", "2208201200"), ("Vodka 40%", "Whisky", "Cognac"),
           (150, 900), (200, 6000), "112", 1.0, 10, 0.35, (("GB", 0.3), ("FR", 0.3),
                                                             ("PL", 0.2), ("US", 0.2)), 1.5,
           packing=1.4),
    _Goods("beer", ("2203000100",), ("Malt beer",), (30, 80), (1000, 20000), "112", 1.0, 0, 0.01,
           (("DE", 0.5), ("CZ", 0.3), ("PL", 0.2)), 1, packing=1.4),
    _Goods("cigarettes", ("2402209000",), ("Cigarettes containing tobacco",), (2500, 5000),
           (100, 5000), "796", 0.001, 0, 0.4, (("PL", 0.4), ("DE", 0.3), ("TR", 0.3)), 0.5),
    _Goods("toys", ("9503007000", "9503004900"), ("Construction toys", "Plastic toys"),
           (150, 600), (50, 3000), "796", 0.4, 0, 0, (("CN", 0.9), ("DK", 0.1)), 3, ("Lego",)),
    _Goods("appliances", ("8418102001", "8450111100", "8516290099"),
           ("Refrigerators", "Washing machines", "Electric heaters"),
           (150, 600), (200, 8000), "796", 40.0, 10, 0, (("CN", 0.4), ("TR", 0.3), ("PL", 0.3)),
           4),
    _Goods("food", ("0207140000", "1701999000", "0805101000"),
           ("Frozen chicken cuts", "Cane sugar", "Fresh oranges"),
           (20, 120), (2000, 22000), None, 1.0, 10, 0, (("PL", 0.3), ("BR", 0.3), ("TR", 0.2),
                                                      ("EG", 0.2)), 2),
    _Goods("fuel", ("2710194300",), ("Diesel fuel",), (30, 45), (10000, 30000), None, 1.0, 0,
           0.05, (("PL", 0.3), ("LT", 0.3), ("GR", 0.2), ("TR", 0.2)), 2, packing=1.0),
    _Goods("drinks", ("2201101100", "2202100000"), ("Mineral water", "Soft drinks"),
           (8, 25), (2000, 20000), "112", 1.0, 5, 0, (("GE", 0.4), ("PL", 0.3), ("TR", 0.3)),
           1.5, packing=1.2),
    _Goods("furniture", ("9403600000", "9401610000"), ("Wooden furniture", "Upholstered seats"),
           (100, 400), (200, 8000), "796", 15.0, 0, 0, _WORLD, 3),
    _Goods("machinery", ("8479899790", "8428909000"), ("Machines n.e.s.", "Lifting machinery"),
           (500, 3000), (100, 10000), "796", 200.0, 0, 0, _WORLD, 3),
    _Goods("bags", ("4202221000", "4202119000"), ("Handbags", "Suitcases"),
           (800, 2500), (50, 1500), "796", 0.7, 10, 0, _ASIA, 1.5,
           ("Michael Kors", "Louis Vuitton", "Samsonite")),
    _Goods("perfumery", ("3303001000",), ("Perfumes",), (3000, 10000), (10, 500), "796", 0.1,
           6.5, 0, (("FR", 0.6), ("IT", 0.2), ("AE", 0.2)), 0.5, ("Chanel", "Dior")),
)  # fmt: skip

_GOODS_BY_KEY = {g.key: g for g in GOODS}

OFFICES: tuple[tuple[str, float], ...] = (
    ("UA100110", 0.22), ("UA500110", 0.16), ("UA209140", 0.1), ("UA205050", 0.08),
    ("UA305030", 0.08), ("UA408050", 0.07), ("UA110050", 0.07), ("UA400000", 0.06),
    ("UA807000", 0.06), ("UA701000", 0.05), ("UA901000", 0.05),
)  # fmt: skip
EXIT_OFFICES = ("UA500110", "UA209140", "UA205050", "UA305030", "UA408050")
BORDER_OFFICES = ("UA209140", "UA205050", "UA305030", "UA408050", "UA500110")
LICENSED_IMPORTERS = ("00481273", "30725611", "21645908")
AUTHORISED_IMPORTERS = ("35112233", "37654321", "40112358", "41998877")
PROTECTED_BRANDS = ("Nike", "Adidas", "Puma", "Lacoste", "Apple", "Samsung", "JBL", "Lego",
                    "Chanel", "Dior", "Louis Vuitton", "Gucci", "Michael Kors")  # fmt: skip
_CITIES = {
    "CN": ("Guangzhou", "Ningbo", "Shenzhen", "Tianjin", "Zhejiang", "Hebei"),
    "VN": ("Hanoi", "Ho Chi Minh", "Hai Phong"),
    "TR": ("Istanbul", "Izmir", "Bursa"),
    "DE": ("Hamburg", "Bremen", "Munich"),
    "PL": ("Lodz", "Warsaw", "Gdansk"),
}
_COMPANY_WORDS = (
    "Trade", "Import", "Logistic", "Prom", "Invest", "Group", "Service", "Market",
    "Techno", "Agro", "Shoe", "Textile", "Auto", "Chem", "Electro", "Food",
)  # fmt: skip
_OTHER_BRANDS = ("Ecco", "Geox", "Zara", "Xiaomi", "LG", "Sony", "Samsonite", "Decathlon")
_RATES = {"USD": 41.2, "EUR": 44.6, "PLN": 10.3, "UAH": 1.0}

#: Violation schemes: which goods they apply to, the reasons and controls when caught.
_SCHEMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # scheme: (goods keys, reason codes when caught, control procedures that found it)
    "undervaluation": (("footwear_leather", "footwear_textile", "knitwear", "clothing",
                        "appliances"), ("0201",), ("103", "104")),
    "misclassification": (("led_lamps", "auto_parts"), ("0302",), ("102", "302")),
    "false_origin": (("steel_pipes", "nails", "tiles"), ("0702",), ("102", "105")),
    "excise": (("spirits", "cigarettes"), ("0502",), ("102", "201")),
    "counterfeit": (("footwear_textile", "knitwear", "bags", "perfumery"), ("0901",),
                    ("102", "201")),
    "undeclared": (("machinery", "furniture", "plastic_articles", "toys"), ("0602",),
                   ("204", "201")),
    "precursor": (("acetone",), ("1001",), ("106", "301")),
    "transit": (("cigarettes", "spirits", "phones", "fuel"), ("0602",), ("102", "203")),
}  # fmt: skip
_SCHEME_NAMES = tuple(sorted(_SCHEMES))
_PROFILE_KEYS = tuple(sorted(PROFILE_KEYS.values()))


# --- helpers ------------------------------------------------------------------------------------


class _Rng(random.Random):
    """``random.Random`` with cheaper draws for the generator's hot paths (same seed, same data;
    the draws differ from the standard methods', so they are not interchangeable)."""

    def choice(self, seq: Sequence[Any]) -> Any:  # type: ignore[override]
        return seq[int(self.random() * len(seq))]

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))


class _Picker:
    """Weighted choice with precomputed cumulative weights (fast for repeated draws)."""

    def __init__(self, pairs: Sequence[tuple[Any, float]]) -> None:
        self.values = [v for v, _ in pairs]
        self.cum = list(itertools.accumulate(w for _, w in pairs))
        self.total = self.cum[-1]

    def __call__(self, rng: _Rng) -> Any:
        return self.values[bisect.bisect_right(self.cum, rng.random() * self.total)]


def _log_uniform(rng: _Rng, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


@attrs.frozen
class _Trader:
    id: str
    name: str
    aeo: bool
    offender: str | None  # the scheme this trader keeps using
    goods: tuple[str, ...]  # goods keys this trader deals in
    broker: str
    home: str  # usual office
    schemes: tuple[str, ...] = ()  # the schemes that fit the goods (occasional violations)


def _company(rng: _Rng) -> str:
    form = rng.choice(("TOV", "PP", "PrAT", "TOV"))
    return (
        f'{form} "{rng.choice(_COMPANY_WORDS)}-{rng.choice(_COMPANY_WORDS)} {rng.randint(1, 99)}"'
    )


def _traders(rng: _Rng, count: int) -> list[_Trader]:
    goods_picker = _Picker([(g.key, g.weight) for g in GOODS])
    office_picker = _Picker(OFFICES)
    brokers = [f"3555{n:04d}" for n in range(max(5, count // 25))]
    # Traders named in the profiles (licensed precursor importers, brand distributors) are
    # mid-sized firms: they sit in the middle of the activity ranking, one every few ranks.
    special = dict(
        zip(range(count // 4, count, 3), LICENSED_IMPORTERS + AUTHORISED_IMPORTERS, strict=False)
    )
    traders = []
    used: set[str] = set(special.values())
    for n in range(count):
        if n in special:
            ident = special[n]
        else:
            ident = f"{rng.randint(10_000_000, 45_999_999):08d}"
            while ident in used:
                ident = f"{rng.randint(10_000_000, 45_999_999):08d}"
        used.add(ident)
        aeo = rng.random() < 0.05 and n not in special
        offender = None
        # offenders are among the less active traders (the busiest ones are established firms)
        if not aeo and n >= count // 5 and n not in special and rng.random() < 0.07:
            offender = rng.choice(_SCHEME_NAMES)
        goods = {goods_picker(rng) for _ in range(rng.randint(1, 4))}
        if offender is not None:
            goods.add(rng.choice(_SCHEMES[offender][0]))
        if ident in LICENSED_IMPORTERS:
            goods = {"acetone", "organic_chemicals"}
        if ident in AUTHORISED_IMPORTERS:
            goods |= {"footwear_textile", "bags", "phones"}
        traders.append(
            _Trader(
                id=ident,
                name=_company(rng),
                aeo=aeo,
                offender=offender,
                goods=tuple(sorted(goods)),
                broker=rng.choice(brokers),
                home=office_picker(rng),
                schemes=tuple(s for s in _SCHEME_NAMES if goods & set(_SCHEMES[s][0])),
            )
        )
    return traders


def _money(value: float) -> float:
    return round(value, 2)


# --- the generator -------------------------------------------------------------------------


def generate(
    n: int,
    seed: int = 0,
    start: dt.date = DEFAULT_START,
    end: dt.date = DEFAULT_END,
    *,
    violation_rate: float = 0.01,
    offender_rate: float = 0.3,
) -> Iterator[DemoRecord]:
    """Yield ``n`` demo records dated ``start``..``end`` in date order, reproducibly from ``seed``.

    ``violation_rate``: chance that a declaration of an ordinary trader hides a violation;
    ``offender_rate``: the same for a repeat offender (who keeps to one scheme).
    """
    if n <= 0:
        return
    if end < start:
        raise ValueError(f"the date range is empty: {start} .. {end}")
    rng = _Rng(seed)
    traders = _traders(rng, max(40, n // 30))
    # Very uneven activity: a few traders lodge most declarations (Zipf-like weights).
    trader_picker = _Picker([(t, 1.0 / (rank + 1) ** 0.8) for rank, t in enumerate(traders)])
    office_picker = _Picker(OFFICES)
    regime_picker = _Picker((("40", 0.78), ("10", 0.1), ("80", 0.06), ("71", 0.06)))
    currency_picker = _Picker((("USD", 0.55), ("EUR", 0.35), ("PLN", 0.05), ("UAH", 0.05)))
    mode_picker = _Picker((("30", 0.6), ("10", 0.15), ("20", 0.15), ("40", 0.1)))
    items_picker = _Picker(((1, 0.5), (2, 0.22), (3, 0.12), (4, 0.08), (5, 0.05), (8, 0.03)))
    origin_pickers = {g.key: _Picker(g.origins) for g in GOODS}
    days = (end - start).days + 1
    # Dates in order: sorted uniform draws.
    offsets = sorted(int(rng.random() * days) for _ in range(n))
    for seq, offset in enumerate(offsets, start=1):
        date = start + dt.timedelta(days=offset)
        trader = trader_picker(rng)
        yield _declaration(
            rng, seq, date, trader, traders, office_picker, regime_picker, currency_picker,
            mode_picker, items_picker, origin_pickers, violation_rate, offender_rate,
        )  # fmt: skip


def _declaration(
    rng: _Rng,
    seq: int,
    date: dt.date,
    trader: _Trader,
    traders: Sequence[_Trader],
    office_picker: _Picker,
    regime_picker: _Picker,
    currency_picker: _Picker,
    mode_picker: _Picker,
    items_picker: _Picker,
    origin_pickers: dict[str, _Picker],
    violation_rate: float,
    offender_rate: float,
) -> DemoRecord:
    office = trader.home if rng.random() < 0.7 else office_picker(rng)
    regime = regime_picker(rng)
    scheme: str | None = None
    if not trader.aeo:
        if trader.offender is not None and rng.random() < offender_rate:
            scheme = trader.offender
        elif trader.schemes and rng.random() < violation_rate:
            scheme = rng.choice(trader.schemes)
    if scheme == "transit":
        regime = "80"
    elif scheme is not None and regime in ("10", "80"):
        regime = "40"
    direction = {"10": "EX", "80": "TR"}.get(regime, "IM")
    ident = f"{office}-{date.year}-{seq:07d}"
    currency = currency_picker(rng)
    importer = trader if rng.random() < 0.75 else rng.choice(traders)
    if scheme is not None:
        importer = trader  # the scheme is the trader's own
    header: dict[str, Any] = {
        "id": ident,
        "number": ident.replace("-", "/"),
        "date": date,
        "office": office,
        "direction": direction,
        "regime": regime,
        "declarant.id": trader.id,
        "declarant.name": trader.name,
        "declarant.aeo": trader.aeo,
        "importer.id": importer.id,
        "importer.name": importer.name,
        "broker.id": trader.broker,
        "currency": currency,
        "exchange_rate": _RATES[currency],
        "delivery_terms": rng.choice(("FCA", "EXW", "DAP", "CIF", "CPT", "FOB")),
        "transport.mode": mode_picker(rng),
        "border_office": rng.choice(BORDER_OFFICES),
        "destination_country": "UA" if direction != "EX" else rng.choice(("PL", "DE", "MD")),
    }
    count = items_picker(rng)
    goods_keys = list(trader.goods)
    if scheme is not None:
        scheme_goods = [g for g in _SCHEMES[scheme][0] if g in goods_keys] or list(
            _SCHEMES[scheme][0]
        )
        first = rng.choice(scheme_goods)
    else:
        first = rng.choice(goods_keys)
    items: list[dict[str, Any]] = []
    main_origin = origin_pickers[first](rng)
    for number in range(1, count + 1):
        key = first if number == 1 else rng.choice(goods_keys)
        goods = _GOODS_BY_KEY[key]
        # one consignment, one exporter: most items share the main item's origin
        same = number == 1 or rng.random() < 0.8
        origin = main_origin if same else origin_pickers[key](rng)
        items.append(_item(rng, number, goods, origin, scheme if number == 1 else None, importer))
    header["items_count"] = len(items)
    exporter_country = items[0]["origin"]
    dispatch = exporter_country if rng.random() < 0.8 else rng.choice(("PL", "DE", "TR", "AE"))
    if scheme == "false_origin":
        exporter_country = "CN"
        dispatch = rng.choice(("MY", "VN", "TH"))
    city = rng.choice(_CITIES.get(exporter_country, ("Capital",)))
    header["exporter.id"] = f"{exporter_country}{rng.randint(10**9, 10**10 - 1)}"
    header["exporter.name"] = f"{city} {rng.choice(_COMPANY_WORDS)} Co. Ltd"
    header["exporter.country"] = exporter_country
    header["dispatch_country"] = dispatch
    header["trading_country"] = exporter_country if rng.random() < 0.85 else "HK"
    header["transport.nationality"] = rng.choice(("UA", "PL", "UA", "LT", "TR", "MD"))
    if direction == "TR":
        sensitive = scheme == "transit"
        header["destination_office"] = (
            rng.choice(("UA100110", "UA110050", "UA807000"))
            if sensitive
            else rng.choice(EXIT_OFFICES)
        )
        header["destination_country"] = "MD" if not sensitive else rng.choice(("MD", "RO"))
        deadline = date + dt.timedelta(days=rng.randint(3, 10))
        if sensitive and rng.random() < 0.3:
            deadline = date - dt.timedelta(days=1)
        header["transit_deadline"] = deadline
        header["transport.mode"] = "30"
        if sensitive:
            header["transport.nationality"] = rng.choice(("BY", "GE", "AM"))
    invoice = sum(i["invoice_value"] for i in items)
    header["invoice_total"] = _money(invoice)
    declaration = Declaration(header=header, items=tuple(items), id=ident)
    outcome, controls = _aftermath(rng, ident, date, scheme, items)
    outcome = _release_times(outcome, ident, date, controls)
    return DemoRecord(declaration, outcome, controls, scheme)


def _item(
    rng: _Rng,
    number: int,
    goods: _Goods,
    origin: str,
    scheme: str | None,
    importer: _Trader,
) -> dict[str, Any]:
    code = rng.choice(goods.codes)
    description = rng.choice(goods.descriptions)
    net = _log_uniform(rng, *goods.mass)
    price = rng.uniform(*goods.price)
    if scheme is None and rng.random() < 0.03:
        price *= rng.uniform(0.45, 0.75)  # honest but cheap: looks suspicious
    gross = net * goods.packing * rng.uniform(0.97, 1.1)
    duty = goods.duty
    excise = goods.excise
    brand = rng.choice(goods.brands) if goods.brands and rng.random() < 0.3 else None
    if brand in PROTECTED_BRANDS and importer.id not in AUTHORISED_IMPORTERS:
        brand = rng.choice(_OTHER_BRANDS)  # the registered brands come through distributors
    manufacturer: str | None = f"{rng.choice(_CITIES.get(origin, ('General',)))} Manufacturing"
    licence = None
    precursor = None
    ip_registered = None
    preference = "GSP" if origin in ("IN", "BD", "VN") and rng.random() < 0.1 else None
    if number > 1:
        preference = None  # a preference is claimed for the consignment's main goods
    valuation = "1" if rng.random() < 0.95 else rng.choice(("2", "3", "6"))
    if goods.key == "acetone":
        precursor = True
        if importer.id in LICENSED_IMPORTERS:
            licence = f"UA/{rng.randint(2020, 2025)}/{rng.randint(0, 999_999):06d}"
    match scheme:
        case "undervaluation":
            price *= rng.uniform(0.12, 0.35)
            if rng.random() < 0.3:
                valuation = "6"
        case "misclassification":
            if goods.key == "led_lamps":
                code = "8541490000"
                description = rng.choice(("LED lamp E27 10W", "LED tube lamps"))
            else:
                code = rng.choice(("7326909807", "3926909709"))
                description = rng.choice(("Brake discs for cars", "Bumper parts for cars"))
            duty = 0
            net = max(net, rng.uniform(400, 3000))
        case "false_origin":
            origin = rng.choice(("MY", "VN", "TH"))
            manufacturer = f"{rng.choice(_CITIES['CN'])} Steel Manufacturing"
            if rng.random() < 0.5:
                preference = "GSP"
        case "excise":
            if rng.random() < 0.5:
                excise = 0
            else:
                code = "2202100000"
                description = rng.choice(("Vodka 40% 0.5 l", "Spirit drink (whisky type)"))
                excise = 0
        case "counterfeit":
            brand = rng.choice(PROTECTED_BRANDS)
            ip_registered = True
            price *= rng.uniform(0.15, 0.3)
            manufacturer = None
            description = f"{description} {brand}"
        case "undeclared":
            gross = net * rng.uniform(1.9, 3.5)
        case "precursor":
            licence = None
            precursor = rng.random() < 0.3 or None
        case "transit":
            price = max(price, 1600)
    value = net * price
    item: dict[str, Any] = {
        "number": number,
        "hs_code": code,
        "description": description,
        "origin": origin,
        "net_mass": round(net, 3),
        "gross_mass": round(gross, 3),
        "customs_value": _money(value),
        "invoice_value": _money(value / 41.2),
        "duty_rate": duty,
        "excise_rate": excise,
        "valuation_method": valuation,
        "procedure": "4000000" if scheme != "transit" else "8000000",
    }
    packages = max(1, round(gross / rng.uniform(5, 25)))
    if scheme == "undeclared" and rng.random() < 0.5:
        packages = max(1, round(gross / 800))
    item["packages"] = packages
    if gross > 2000 and rng.random() < 0.6:
        item["container"] = (
            f"{rng.choice(('MSC', 'MAE', 'CMA', 'HLX'))}U{rng.randint(0, 9999999):07d}"
        )
    if goods.unit is not None:
        quantity = max(1.0, round(net / goods.unit_kg))
        item["supplementary_quantity"] = quantity
        item["supplementary_unit"] = goods.unit
    for name, extra in (("brand", brand), ("manufacturer", manufacturer), ("licence", licence),
                        ("precursor", precursor), ("ip_registered", ip_registered),
                        ("preference", preference)):  # fmt: skip
        if extra is not None:
            item[name] = extra
    return item


#: Procedure codes of a physical control (the red corridor), as the evaluator's lanes.
_PHYSICAL = frozenset({"201", "202", "203", "204", "301", "302"})
#: Hours from lodgement to release on the day of lodgement, by corridor: (least, most).
_SAME_DAY_HOURS = {"green": (0.05, 1.5), "yellow": (1.0, 5.0), "red": (2.0, 9.0)}


def _release_times(
    outcome: OutcomeRecord, ident: str, date: dt.date, controls: Sequence[ControlRecord]
) -> OutcomeRecord:
    """The outcome with its lodgement time (a working hour of the declaration's date) and, when
    released, its release time (the same day, by corridor, or a working hour of the outcome's
    date). Drawn from a hash of the declaration's id, not from the demo's generator, so that the
    rest of the demo data stays what it was before they existed."""
    digest = hashlib.blake2b(ident.encode(), digest_size=12).digest()
    u1, u2, u3 = (int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in (0, 4, 8))
    lodged = dt.datetime.combine(date, dt.time(8)) + dt.timedelta(minutes=int(u1 * 541))
    if not outcome.completed:
        return attrs.evolve(outcome, lodged_at=lodged)
    if outcome.date > date:
        start = dt.datetime.combine(outcome.date, dt.time(8))
        released = start + dt.timedelta(minutes=int(u2 * 601))
    else:
        corridor = (
            "red" if any(c.procedure in _PHYSICAL for c in controls)
            else "yellow" if controls else "green"
        )  # fmt: skip
        low, high = _SAME_DAY_HOURS[corridor]
        latest = dt.datetime.combine(date, dt.time(23, 59))
        released = min(lodged + dt.timedelta(hours=low + (high - low) * u3), latest)
        released = released.replace(second=0, microsecond=0)  # whole minutes, as exported
    return attrs.evolve(outcome, lodged_at=lodged, released_at=released)


def _aftermath(
    rng: _Rng,
    ident: str,
    date: dt.date,
    scheme: str | None,
    items: Sequence[dict[str, Any]],
) -> tuple[OutcomeRecord, tuple[ControlRecord, ...]]:
    """The clearance outcome and the controls of one declaration."""
    controls: list[ControlRecord] = []
    outcome_date = date + dt.timedelta(days=rng.choice((0, 0, 0, 1, 1, 2)))
    control_date = date + dt.timedelta(days=rng.choice((0, 0, 1)))
    random_control = rng.random() < 0.015
    if scheme is not None:
        _, reasons, procedures = _SCHEMES[scheme]
        caught = rng.random() < (0.9 if random_control else 0.65)
        if caught:
            value = items[0]["customs_value"]
            revenue = Decimal(str(_money(value * rng.uniform(0.3, 1.5))))
            controls.append(
                ControlRecord(
                    ident,
                    procedures[0],
                    control_date,
                    True,
                    None if random_control else PROFILE_KEYS[scheme],
                    random_control,
                    revenue,
                )
            )
            if rng.random() < 0.4:
                controls.append(
                    ControlRecord(
                        ident, procedures[1], control_date, True, PROFILE_KEYS[scheme], False,
                        Decimal(0),
                    )
                )  # fmt: skip
            extra = ("1301",) if rng.random() < 0.3 else ()
            reasons_found = tuple(sorted(set(reasons + extra)))
            outcome = OutcomeRecord(
                ident, False, outcome_date + dt.timedelta(days=rng.randint(0, 3)), reasons_found
            )
            return outcome, tuple(controls)
        if random_control:
            controls.append(ControlRecord(ident, "201", control_date, False, None, True))
        elif rng.random() < 0.3:
            # controlled, but the check missed it: a clean control that is not clean
            controls.append(
                ControlRecord(ident, "102", control_date, False, PROFILE_KEYS[scheme], False)
            )
        return OutcomeRecord(ident, True, outcome_date), tuple(controls)
    if random_control:
        controls.append(ControlRecord(ident, "201", control_date, False, None, True))
    elif rng.random() < 0.06:
        procedure = rng.choice(("102", "103", "204"))
        profile = rng.choice(_PROFILE_KEYS)
        controls.append(ControlRecord(ident, procedure, control_date, False, profile, False))
    if rng.random() < 0.012:
        reasons = tuple(sorted({rng.choice(("0101", "0102", "0107", "0105"))}))
        return OutcomeRecord(ident, False, outcome_date, reasons), tuple(controls)
    return OutcomeRecord(ident, True, outcome_date), tuple(controls)
