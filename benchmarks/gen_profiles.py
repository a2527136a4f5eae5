"""Generate N realistic risk profiles as source text, and declarations to score with them.

Reusable by every benchmark: ``profile_sources(n, seed)`` gives ``{file name: text}`` (valid
profiles that pass the checks), ``declarations(n, seed)`` plain-data declarations.

The spread follows how profile sets look in practice: most profiles target goods (HS headings
or subheadings among a few hundred sensitive headings), often combined with origins, regimes,
offices or traders; some target traders or offices; a small share (about 0.5 %) are generic
(mass or value ratios on every item) and must be evaluated for every declaration. Declarations
draw HS codes from about 1,200 headings with a skewed (Zipf-like) popularity, 1-5 items each.

Run ``python benchmarks/gen_profiles.py N DIR`` to write N profiles into DIR (10 per file).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

__all__ = ["HEADINGS", "declarations", "profile_sources", "write_profiles"]

_RNG_HEADINGS = random.Random(1)
#: About 1,200 four-digit HS headings (chapters 01-97, 12 headings each, some gaps).
HEADINGS: list[str] = [
    f"{chapter:02d}{heading:02d}"
    for chapter in range(1, 98)
    if chapter != 77
    for heading in range(1, 14)
    if _RNG_HEADINGS.random() < 0.95
]
#: The sensitive headings profiles concentrate on.
SENSITIVE: list[str] = _RNG_HEADINGS.sample(HEADINGS, 400)
COUNTRIES = ["CN", "VN", "TR", "PL", "DE", "US", "IN", "MY", "TH", "BD", "KH", "PK", "ID", "KR",
             "TW", "AE", "IT", "FR", "ES", "GB", "NL", "BE", "CZ", "SK", "HU", "RO", "MD", "GE",
             "AM", "KZ", "UZ", "BY", "JP", "BR", "AR", "CL", "MX", "CA", "EG", "MA"]  # fmt: skip
CHEAP_ORIGINS = ["CN", "VN", "BD", "KH", "PK", "MY", "TH", "ID", "IN", "TR"]
OFFICES = [f"UA{100 + 20 * k:03d}000" for k in range(30)]
REGIMES = ["40", "40", "40", "40", "10", "31", "51", "71", "80"]
REASONS = ["0201", "0203", "0301", "0302", "0402", "0502", "0602", "0702", "0703", "1101", "1301"]
PREFERENCES = ["MFN", "GSP", "FTA"]
GROUPS = ["2A", "3C", "4D", "5E", "6F", "7G", "8H", "9K", "1A", "0B"]


def _zipf_weights(n: int, s: float = 1.05) -> list[float]:
    return [1.0 / (k + 1) ** s for k in range(n)]


_HEADING_WEIGHTS = _zipf_weights(len(HEADINGS))
_ORDER = random.Random(2).sample(HEADINGS, len(HEADINGS))  # popularity order


def _passport(rng: random.Random, k: int, name: str, spheres: str) -> str:
    unit = rng.choice(["01", "07", "08", "09", "10", "12", "14", "15", "17"])
    return f"""profile {GROUPS[k % len(GROUPS)]}/{unit}/2023/{k:05d}-01 "{name}" {{
    approved 2023-06-01
    in force 2023-07-01 .. 2030-12-31
    filling central by "Central risk unit"
    module declaration
    spheres {spheres}
"""


def _history(rng: random.Random) -> str:
    reasons = "  ".join(f"{r}: {rng.choice(['1.0', '0.8', '0.5', '0.3'])}"
                        for r in rng.sample(REASONS, 3))  # fmt: skip
    return f"""    history per declaration.declarant.id over 365 days {{
        negative max 30 per case 10 {{ {reasons} }}
        positive max 10 per clean control 2
    }}
"""


def _quoted(values: list[str]) -> str:
    return "(" + ", ".join(f'"{v}"' for v in values) + ")"


def _goods(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return _quoted(rng.sample(SENSITIVE, rng.randint(1, 3)))
    return _quoted([h + f"{rng.randint(10, 99)}" for h in rng.sample(SENSITIVE, rng.randint(1, 3))])


def _undervaluation(rng: random.Random, k: int) -> str:
    floor = rng.choice([50, 120, 310, 420, 800, 1500])
    hist = rng.random() < 0.5
    return (
        _passport(rng, k, f"Undervaluation #{k}", "101, 203, 301")
        + f"""    indicators {{
        goods "Goods": item.hs_code starts with {_goods(rng)}
        origin "Low-price origin": item.origin in {_quoted(rng.sample(CHEAP_ORIGINS, 4))}
        cheap "Unit price under {floor} UAH/kg": item.customs_value / item.net_mass < {floor}
            unless item.preference == "GSP"
        method "Fall-back valuation": item.valuation_method != "1"
    }}
    exceptions {{ aeo "AEO": declaration.declarant.aeo }}
    degree = 40 * (goods and cheap) + 20 * (goods and origin) + 10 * (goods and method){
            " + negative_history - positive_history" if hist else ""
        }
    message "Check the value of {{item.hs_code}} from {{item.origin}}: {{item.customs_value}} \
UAH for {{item.net_mass}} kg; degree {{degree}}"
    controls {{
        103 "Verification of the customs value against the price database" mandatory from 40
        104 "Request for additional documents" mandatory when origin from 60
        202 "Partial physical inspection" if necessary from 80
    }}
{_history(rng) if hist else ""}}}
"""
    )


def _misclassification(rng: random.Random, k: int) -> str:
    word = rng.choice(["lamp", "diode", "parts", "toy", "bag", "fabric", "tool"])
    return (
        _passport(rng, k, f"Misclassification #{k}", "101, 201, 301")
        + f"""    indicators {{
        heading "Declared heading": item.hs_code starts with {_goods(rng)}
        words "Description names other goods": item.description matches "(?i).*{word}.*"
        zero "Zero duty": item.duty_rate == 0
    }}
    degree = 50 * (heading and words) + 20 * (heading and zero)
    message "Check the classification of {{item.hs_code}} ({{item.description}})"
    controls {{
        102 "Documentary check" mandatory from 50
        302 "Taking samples for a classification expertise" mandatory when zero from 70
    }}
}}
"""
    )


def _origin(rng: random.Random, k: int) -> str:
    return (
        _passport(rng, k, f"False origin #{k}", "101, 202, 303")
        + f"""    indicators {{
        goods "Anti-dumping goods": item.hs_code starts with {_goods(rng)}
        origin "Transshipment country": item.origin in {_quoted(rng.sample(COUNTRIES, 5))}
        dispatch "Dispatched elsewhere": declaration.dispatch_country != item.origin
    }}
    degree = 50 * (goods and origin) + 25 * dispatch
    message "Verify the origin of {{item.hs_code}} declared as {{item.origin}}"
    controls {{
        105 "Verification of the certificate of origin" mandatory from 50
        201 "Physical inspection" if necessary from 75
    }}
}}
"""
    )


def _office(rng: random.Random, k: int) -> str:
    chapters = _quoted(rng.sample(SENSITIVE, 3))
    return (
        _passport(rng, k, f"Office monitoring #{k}", "101, 205")
        + f"""    indicators {{
        office "Monitored office": declaration.office in {_quoted(rng.sample(OFFICES, 2))}
        goods "Monitored headings": item.hs_code starts with {chapters}
        regime "Release for free circulation": declaration.regime == "40"
        heavy "Large consignment": item.gross_mass > 20000
    }}
    degree = 40 * office + 30 * (office and goods) + 10 * regime + 20 * heavy
    message "Office monitoring: {{item.hs_code}} at {{declaration.office}}"
    controls {{
        203 "Inspection with scanning equipment" mandatory when goods from 70
        204 "Weighing of the goods" if necessary from 90
    }}
}}
"""
    )


def _trader(rng: random.Random, k: int) -> str:
    ids = _quoted([f"{rng.randint(30000000, 30049999)}" for _ in range(rng.randint(3, 12))])
    return (
        _passport(rng, k, f"Risky traders #{k}", "101, 204")
        + f"""    indicators {{
        trader "Listed trader": declaration.declarant.id in {ids}
        broker "No broker": declaration.broker.id is missing
        value "High value": item.customs_value > 500000
    }}
    degree = 60 * trader + 10 * broker + 20 * value
    message "Listed trader {{declaration.declarant.id}}"
    controls {{
        102 "Documentary check" mandatory from 60
        201 "Physical inspection" mandatory when value from 80
    }}
}}
"""
    )


def _generic(rng: random.Random, k: int) -> str:
    ratio = rng.choice([0.7, 0.8, 0.9])
    return (
        _passport(rng, k, f"Mass ratio #{k}", "204")
        + f"""    indicators {{
        light "Net mass close to gross": item.net_mass / item.gross_mass > {ratio}
        packages "Few packages": item.packages < 2
        no_container "No container": item.container is missing
    }}
    degree = 40 * light + 30 * packages + 30 * no_container
    message "Mass check of {{item.hs_code}}"
    controls {{ 204 "Weighing of the goods" mandatory from 100 }}
}}
"""
    )


_KINDS = [
    (_undervaluation, 0.40), (_misclassification, 0.20), (_origin, 0.20), (_office, 0.07),
    (_trader, 0.125), (_generic, 0.005),
]  # fmt: skip


def profile_sources(n: int, seed: int = 0, per_file: int = 10) -> dict[str, str]:
    """``n`` profiles as ``{file name: text}``, ``per_file`` profiles per file."""
    rng = random.Random(seed)
    makers = [k for k, _ in _KINDS]
    weights = [w for _, w in _KINDS]
    texts: list[str] = []
    for k in range(n):
        maker = _generic if k == 0 and n >= 100 else rng.choices(makers, weights)[0]
        texts.append(maker(rng, k + 1))
    return {
        f"generated_{start // per_file:04d}.rp": "\n".join(texts[start : start + per_file])
        for start in range(0, n, per_file)
    }


def write_profiles(n: int, folder: Path, seed: int = 0) -> list[Path]:
    """Write the profiles of :func:`profile_sources` into ``folder``; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in profile_sources(n, seed).items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        out.append(path)
    return out


def declarations(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` plain-data import declarations with 1-5 goods items."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        items = []
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 5])):
            heading = rng.choices(_ORDER, _HEADING_WEIGHTS)[0]
            mass = round(rng.lognormvariate(6, 1.5), 1)
            items.append({
                "hs_code": heading + f"{rng.randint(0, 999999):06d}",
                "origin": rng.choice(CHEAP_ORIGINS + COUNTRIES),
                "customs_value": round(mass * rng.lognormvariate(7.5, 1.2), 2),
                "net_mass": mass,
                "gross_mass": round(mass * rng.uniform(1.0, 1.3), 1),
                "packages": rng.randint(1, 200),
                "preference": rng.choice(PREFERENCES),
                "valuation_method": rng.choice(["1", "1", "1", "1", "2", "6"]),
                "duty_rate": rng.choice([0, 0, 5, 10, 12]),
                "description": rng.choice(["LED lamps", "men's shoes", "spare parts", "toys",
                                           "cotton fabric", "hand tools", "bags"]),
            })  # fmt: skip
        out.append({
            "id": f"UA-2024-{k:07d}",
            "date": "2024-04-02",
            "office": rng.choice(OFFICES),
            "regime": rng.choice(REGIMES),
            "dispatch_country": rng.choice(COUNTRIES),
            "declarant": {"id": str(rng.randint(30000000, 30049999)),
                          "aeo": rng.random() < 0.05},
            "broker": {"id": str(rng.randint(35000000, 35000300))} if rng.random() < 0.7 else None,
            "items": items,
        })  # fmt: skip
    return out


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("generated_profiles")
    files = write_profiles(count, target)
    print(f"wrote {count} profiles in {len(files)} files to {target}")
