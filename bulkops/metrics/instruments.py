"""The counters, histograms and gauges each process keeps. Under `serve --processes N` they
live in files of `PROMETHEUS_MULTIPROC_DIR` (set before the processes start, see
`bulkops.metrics.processes`), and a scrape of any process adds up every process's."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

accepted = Counter(
    "bulkops_operations_accepted",
    "Operations accepted (committed open, to be processed), by topic.",
    ["topic"],
)
finished = Counter(
    "bulkops_operations_finished",
    "Operations made final (results recorded, or marked failed when open too long), by topic "
    "and final status (1 complete, 2 retriably failed, 3 not retriably failed).",
    ["topic", "status"],
)
handler_seconds = Histogram(
    "bulkops_handler_duration_seconds",
    "Time a worker's handler took for one operation, by topic.",
    ["topic"],
)
http_requests = Counter(
    "bulkops_http_requests",
    "HTTP requests answered, by route (its template, or `unmatched`), method and status code.",
    ["route", "method", "code"],
)
http_seconds = Histogram(
    "bulkops_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route and method.",
    ["route", "method"],
)
# Per process (a `pid` label under several); a process gone takes its values with it.
pool_checked_out = Gauge(
    "bulkops_database_pool_checked_out",
    "Database connections in use (checked out of the process's pool).",
    multiprocess_mode="liveall",
)
pool_size = Gauge(
    "bulkops_database_pool_size",
    "Connections the process's pool keeps (more may open beyond it under load).",
    multiprocess_mode="liveall",
)
event_listeners = Gauge(
    "bulkops_event_listeners",
    "Clients following a bulk's server-sent events (`GET /V1/bulk/:bulkUuid/events`).",
    multiprocess_mode="livesum",
)
