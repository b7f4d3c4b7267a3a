"""Storage: URL -> Optuna storage (SQLite default, server databases, journal files, a gRPC proxy), the study lock,
artifacts, and the one module that touches Optuna's private names."""
