"""Slices a Binance spot capture (hftbacktest's raw format) into the paper venue's replay file.

Input: gzipped lines `<local_ts_ns> <raw websocket JSON>` with depth@100ms, trade and
bookTicker streams and one REST depth snapshot (../shared/data/hft/raw/spot, from
nkaz001/hftbacktest, MIT). Output: services/exchange/data/paper/<name>.txt.gz, one
event per line, prices and sizes exactly as Binance sent them (trailing zeros dropped):

    S <lastUpdateId>              the REST snapshot's last update id (first line)
    B <price> <size>              snapshot bid level (best first)
    A <price> <size>              snapshot ask level
    D <time_ms> <U> <u> b<price>:<size> a<price>:<size> ...
                                  depth update: first and final update id, absolute sizes
                                  (0 removes the level)
    T <time_ms> <price> <size> <b|s>   trade; b: the buyer took liquidity

Snapshot and updates are aligned as Binance documents it for a local book: the capture
received the snapshot after the update that straddles it (its local time is later), so
updates seen before the snapshot are kept aside and those whose final id `u` is above the
snapshot's `lastUpdateId` come first; updates with `u <= lastUpdateId` are dropped; the
first update kept must have `U <= lastUpdateId + 1 <= u`, and each next one must start
where the previous ended (`U == previous u + 1`): the script refuses a capture with a gap.
Trades before the snapshot are dropped; bookTicker lines are dropped (the depth updates
carry the same). Every level an update carries is kept, also outside the snapshot's 1,000
levels a side: the price leaves the snapshot's band during the capture.

    python scripts/slice_paper_data.py SOURCE.gz \\
        services/exchange/data/paper/binance-spot-btcusdt-20240808.txt.gz
"""

from __future__ import annotations

import gzip
import json
import sys
from decimal import Decimal
from typing import Any


def _plain(text: str) -> str:
    return f"{Decimal(text).normalize():f}"


def _depth_line(event: dict[str, Any]) -> str:
    levels = [
        f"{side}{_plain(price)}:{_plain(size)}"
        for side in ("b", "a")
        for price, size in event[side]
    ]
    return " ".join(["D", str(event["E"]), str(event["U"]), str(event["u"]), *levels])


def convert(source: str) -> list[str]:
    lines: list[str] = []
    early_updates: list[dict[str, Any]] = []  # received before the snapshot
    snapshot_id: int | None = None
    last_id: int | None = None  # final update id of the last update written

    def add_update(event: dict[str, Any]) -> None:
        nonlocal last_id
        assert snapshot_id is not None
        if event["u"] <= snapshot_id:
            return  # already in the snapshot
        if last_id is None:
            if not event["U"] <= snapshot_id + 1 <= event["u"]:
                raise SystemExit(
                    f"no depth update bridges the snapshot {snapshot_id}: the first one "
                    f"after it spans {event['U']}..{event['u']}"
                )
        elif event["U"] != last_id + 1:
            raise SystemExit(f"depth updates have a gap: {last_id} then {event['U']}")
        last_id = event["u"]
        lines.append(_depth_line(event))

    with gzip.open(source, "rt") as feed:
        for line in feed:
            message = json.loads(line.split(" ", 1)[1])
            if "lastUpdateId" in message:
                if snapshot_id is not None:
                    raise SystemExit("the capture has more than one depth snapshot")
                snapshot_id = message["lastUpdateId"]
                lines.append(f"S {snapshot_id}")
                lines += [f"B {_plain(p)} {_plain(q)}" for p, q in message["bids"]]
                lines += [f"A {_plain(p)} {_plain(q)}" for p, q in message["asks"]]
                for event in early_updates:
                    add_update(event)
                early_updates.clear()
                continue
            if message["stream"].endswith("bookTicker"):
                continue
            event = message["data"]
            if event["e"] == "trade":
                if snapshot_id is not None:
                    taker = "s" if event["m"] else "b"
                    lines.append(
                        f"T {event['T']} {_plain(event['p'])} {_plain(event['q'])} {taker}"
                    )
            elif snapshot_id is None:
                early_updates.append(event)
            else:
                add_update(event)
    if snapshot_id is None:
        raise SystemExit("the capture has no depth snapshot")
    return lines


def main() -> None:
    source, target = sys.argv[1:3]
    data = ("\n".join(convert(source)) + "\n").encode()
    with open(target, "wb") as out:
        out.write(gzip.compress(data, 9, mtime=0))


if __name__ == "__main__":
    main()
