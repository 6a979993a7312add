"""Stamping domain: jobs, their states and the rules of a valid submission. No I/O."""
