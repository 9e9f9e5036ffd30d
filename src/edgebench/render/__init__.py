"""Presentation: rich renderables, Markdown, HTML and JUnit, reading the typed model."""
