"""Enrollment: initialize progress, record analytics, activate, welcome the student."""
