"""Moving datasets in and out: annotation import and dataset export."""
