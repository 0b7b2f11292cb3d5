"""Pure logic, no Dagster: naming, inference, the type system, identifiers, catalog entries, DDL, ledger."""
