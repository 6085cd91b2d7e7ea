"""SmartCourse shared layer: domain, services, adapters and the composition root."""

__version__ = "0.1.0"
