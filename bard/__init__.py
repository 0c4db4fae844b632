"""Bard: session replay and funnel analysis for apps recorded with the bardrr agent."""
