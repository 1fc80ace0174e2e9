"""The teaching notebook ``00_concepts``: measurements of what the paper's changes do, apart from
the notebook's glue (its small trained networks, its figures)."""
