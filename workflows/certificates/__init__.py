"""Certificates: issue once, render the PDF, notify the student."""
