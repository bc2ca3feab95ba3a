"""Catalogue by audience, course and lesson pages, progress heartbeats, content import."""
