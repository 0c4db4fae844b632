"""Bard's warehouse: schema migrations, the client factory, and the embedded consumer."""
