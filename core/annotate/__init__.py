"""Annotating images: boxes and image attributes saved with their history."""
