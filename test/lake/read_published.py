"""
Reads a dataset a backfill lake published, with DuckDB for Python and nothing of backfill:
the dataset's directory holds one Parquet file per published partition
(`<lake>/<node>/<partition>.parquet`; readers skip the `_`-prefixed paths beside them).

Prints, as JSON:
* rows: every published row, as a reader of the whole dataset sees it (files unioned by name,
  without backfill's `__partition` and `__version` columns);
* partitions: for each published file, its partition (the file's name), its version, its row
  count and its checksum, computed here from the file by the rule backfill's ledger states
  (activities/warehouse/checksum.ts), written anew in Python.
"""

import hashlib
import json
import math
import sys
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote

import duckdb

INTERNAL = ("__partition", "__version")
NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE")


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def js_number(x: float) -> str:
    """A double as JavaScript's String(x) writes it: the shortest digits, in its notation."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x.is_integer():
        return str(int(x))
    sign = "-" if x < 0 else ""
    digits_tuple, exponent = Decimal(repr(abs(x))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_tuple))
    k = len(digits)
    n = exponent + k
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{mantissa}e{'+' if e > 0 else '-'}{abs(e)}"


def kind_of(type_name: str) -> str:
    if type_name in NUMBER_TYPES or type_name.startswith("DECIMAL"):
        return "number"
    if type_name == "BOOLEAN":
        return "boolean"
    return "text"


def canonical(value, kind: str):
    if value is None:
        return None
    if isinstance(value, bool):
        return f"n:{1 if value else 0}"
    if isinstance(value, int):
        return f"n:{value}"
    if isinstance(value, Decimal):
        return f"n:{int(value)}" if value == value.to_integral_value() else f"n:{js_number(float(value))}"
    if isinstance(value, float):
        return f"n:{js_number(value)}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"b:{bytes(value).hex()}"
    if isinstance(value, str):
        return f"s:{value}"
    raise ValueError(f"a value of type {type(value).__name__} ({kind}) that this reader does not canonicalize")


def checksum(columns, kinds, rows):
    total = 0
    for row in rows:
        digest = hashlib.sha256(compact([canonical(v, kinds[i]) for i, v in enumerate(row)]).encode()).hexdigest()
        total = (total + int(digest, 16)) % (1 << 256)
    return hashlib.sha256(f"{compact(columns)}\n{len(rows)}\n{total:x}".encode()).hexdigest()


def plain(value):
    if isinstance(value, Decimal):
        return float(value)
    return value


def main() -> None:
    lake, node = Path(sys.argv[1]), sys.argv[2]
    con = duckdb.connect()
    partitions = []
    for file in sorted((lake / node).glob("*.parquet")):
        schema = con.execute(f"DESCRIBE SELECT * FROM read_parquet(?)", [str(file)]).fetchall()
        columns = sorted(name for name, *_ in schema if name not in INTERNAL)
        types = {name: type_name for name, type_name, *_ in schema}
        listed = ", ".join(f'"{c}"' for c in columns) or "NULL"
        rows = con.execute(f"SELECT {listed} FROM read_parquet(?)", [str(file)]).fetchall() if columns else [() for _ in con.execute("SELECT 1 FROM read_parquet(?)", [str(file)]).fetchall()]
        versions = {v for (v,) in con.execute("SELECT DISTINCT __version FROM read_parquet(?)", [str(file)]).fetchall()}
        partitions.append(
            {
                "partition": unquote(file.stem),
                "version": versions.pop() if len(versions) == 1 else None,
                "rowCount": len(rows),
                "checksum": checksum(columns, [kind_of(types[c]) for c in columns], rows),
            }
        )
    result = con.execute(f"SELECT * EXCLUDE (__partition, __version) FROM read_parquet(?, union_by_name = true)", [str(lake / node / "*.parquet")])
    names = [d[0] for d in result.description]
    rows = [{name: plain(v) for name, v in zip(names, row)} for row in result.fetchall()]
    print(compact({"duckdb": duckdb.__version__, "rows": rows, "partitions": partitions}))


if __name__ == "__main__":
    main()
