"""The session ender: moves sessions that went idle from PostgreSQL ``active_sessions`` to ClickHouse
``sessions``, exactly once as readers see it (:mod:`session_ender.ender`), on a schedule
(:mod:`session_ender.service`)."""
