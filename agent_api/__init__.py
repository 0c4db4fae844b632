"""The agent-facing HTTP service: bardrr's ``GET /authenticate`` and ``POST /record`` (port 3001)."""
