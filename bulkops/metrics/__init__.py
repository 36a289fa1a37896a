"""Prometheus metrics: what the processes count and time (`instruments`), the HTTP requests
(`http`), the database's figures read at scrape time (`figures`), the `/metrics` route
(`endpoint`) and the several processes of one `serve` counted together (`processes`)."""
