"""Reads a CSV with pandas' read_csv and prints its MB/s and peak RSS.

The figures pair with the driver's upload figures on the same file:
python3 bench/mixed_table/pandas_read.py table.csv [date,columns]
"""
import os
import resource
import sys
import time

import pandas as pd

path = sys.argv[1]
size = os.path.getsize(path)
rss_idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
dates = sys.argv[2].split(",") if len(sys.argv) > 2 else False
df = pd.read_csv(path, parse_dates=dates)
secs = time.perf_counter() - start
print(f"pandas_rows {len(df)}")
print(f"pandas_seconds {secs:.3f}")
print(f"pandas_mb_per_s {size / 1e6 / secs:.2f}")
print(f"pandas_rss_idle_kb {rss_idle}")
print(f"pandas_peak_rss_kb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
