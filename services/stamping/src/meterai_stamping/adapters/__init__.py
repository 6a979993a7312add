"""Stamping adapters: the jobs table and its repository."""
