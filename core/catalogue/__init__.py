"""The catalogue check: sellers' listings read against a vocabulary and compared with a tags model's predictions.

``vocabulary`` (phrases -> tag values, tokens), ``claims`` (what a listing claims), ``importer``
(the catalogue CSV), ``check`` (the comparison, the job, the threshold), ``decisions`` (review,
ground truth, export), ``settings`` (a project's vocabulary and thresholds), ``cli``
(``python -m core catalogue ...``).
"""
