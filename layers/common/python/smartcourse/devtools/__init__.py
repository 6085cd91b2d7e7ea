"""Developer tools: template generation, the SMTP sink."""
