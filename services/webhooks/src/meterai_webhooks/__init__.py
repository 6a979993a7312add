"""Webhooks: signed job and batch events pushed to resellers ' HTTPS endpoints."""
