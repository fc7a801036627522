"""The HTTP edge: request context, dependencies, error rendering, templates and pages."""
