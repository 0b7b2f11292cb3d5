"""Asset checks built from the registry: schema drift at every hop and row-count reconciliation."""
