"""The dashboard-facing HTTP service (port 3003): session list, replay events, funnel CRUD and results.

Two APIs over the same queries: ``/api`` answers the original Bard dashboard on its own contract, ``/v1`` is the
documented one (``/v1/openapi.json``). Both sit behind the dashboard credential (see :mod:`replayer_api.auth`).
"""
