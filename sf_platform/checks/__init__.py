"""Check logic the table hops evaluate in their own step: row-count reconciliation (drift checks are
``core.drift`` plus each hop's view of its target)."""
