"""Projects and what they hold: labels, stored images, ingest, splits and dataset health."""
