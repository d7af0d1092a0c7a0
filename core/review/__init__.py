"""Reviewing model predictions: the queue and the decisions taken on each image."""
