"""Slices a Binance spot capture (hftbacktest's raw format) into the paper venue's replay file.

Input: gzipped lines `<local_ts_ns> <raw websocket JSON>` with depth@100ms, trade and
bookTicker streams and one REST depth snapshot (../shared/data/hft/raw/spot, from
nkaz001/hftbacktest, MIT). Output: services/exchange/data/paper/<name>.txt.gz, one
event per line, prices and sizes exactly as Binance sent them (trailing zeros dropped):

    B <price> <size>              snapshot bid level (the REST snapshot, best first)
    A <price> <size>              snapshot ask level
    D <time_ms> b<price>:<size> a<price>:<size> ...   depth update (absolute size, 0 removes)
    T <time_ms> <price> <size> <b|s>                   trade; b: the buyer took liquidity

bookTicker lines are dropped (the book carries the same information); depth updates
older than the snapshot and levels outside the snapshot's price band are dropped.

    python scripts/slice_paper_data.py SOURCE.gz \\
        services/exchange/data/paper/binance-spot-btcusdt-20240808.txt.gz
"""

from __future__ import annotations

import gzip
import json
import sys
from decimal import Decimal


def _plain(text: str) -> str:
    return f"{Decimal(text).normalize():f}"


def convert(source: str) -> list[str]:
    lines: list[str] = []
    snapshot_id: int | None = None
    low = high = Decimal(0)
    with gzip.open(source, "rt") as feed:
        for line in feed:
            message = json.loads(line.split(" ", 1)[1])
            if "lastUpdateId" in message:
                snapshot_id = message["lastUpdateId"]
                low, high = Decimal(message["bids"][-1][0]), Decimal(message["asks"][-1][0])
                lines += [f"B {_plain(p)} {_plain(q)}" for p, q in message["bids"]]
                lines += [f"A {_plain(p)} {_plain(q)}" for p, q in message["asks"]]
                continue
            if snapshot_id is None or message["stream"].endswith("bookTicker"):
                continue
            event = message["data"]
            if event["e"] == "trade":
                taker = "s" if event["m"] else "b"
                lines.append(f"T {event['T']} {_plain(event['p'])} {_plain(event['q'])} {taker}")
            elif event["u"] > snapshot_id:
                levels = [
                    f"{side}{_plain(price)}:{_plain(size)}"
                    for side in ("b", "a")
                    for price, size in event[side]
                    if low <= Decimal(price) <= high
                ]
                if levels:
                    lines.append(f"D {event['E']} " + " ".join(levels))
    return lines


def main() -> None:
    source, target = sys.argv[1:3]
    data = ("\n".join(convert(source)) + "\n").encode()
    with open(target, "wb") as out:
        out.write(gzip.compress(data, 9, mtime=0))


if __name__ == "__main__":
    main()
