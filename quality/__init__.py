"""Quality gates (Great Expectations suites), statistics, plots and the quality report.

Great Expectations is imported lazily inside `quality.suites`: only the release stage pays
its import time and memory.
"""
