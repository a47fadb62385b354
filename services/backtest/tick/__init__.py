"""The tick engine: hftbacktest over L2 events, imported only inside worker processes."""
