"""The corrections people send when a drawing is read wrong: store keeps them (SQLite or
PostgreSQL) and exports them for training; rate_limit caps how many one client saves."""
