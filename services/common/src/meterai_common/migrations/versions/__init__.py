"""Migration scripts, hand-written DDL with ``op.*`` that never imports service packages."""
